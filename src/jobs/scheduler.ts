import type { FastifyBaseLogger } from 'fastify';
import { sql, type Kysely } from 'kysely';
import type { Db } from '../db/database.js';
import {
  deleteLapsedDevices,
  findLapsedDeviceIds,
  findLicensesExpiringSoon,
  findLicensesLapsed,
  insertNotice,
  listProductSettings,
  type ScheduledLicense,
} from '../db/repositories/schedule.js';
import type { Database, Scope } from '../db/schema.js';
import { parseEmailSettings } from '../delivery/email-settings.js';
import type { EmailService } from '../delivery/emails.js';
import type { EventLog } from '../events/event-log.js';
import type { EventRetention } from '../events/retention.js';
import type { LicenseService } from '../licensing/licenses.js';
import { deviceView } from '../licensing/views.js';

export interface SchedulerOptions {
  /** Time between the end of one run and the start of the next. */
  intervalMs: number;
  /** How far back a missed expiry is still announced (after downtime); older ones stay silent. */
  catchUpSeconds: number;
  /** A floating device whose lease lapsed longer ago than this is deleted. */
  cullLeasesAfterSeconds: number;
  /** Licenses or devices looked up per query (and devices deleted per transaction). */
  batchSize: number;
}

export const DEFAULT_SCHEDULER_OPTIONS: SchedulerOptions = {
  intervalMs: 60_000,
  catchUpSeconds: 7 * 86_400,
  cullLeasesAfterSeconds: 86_400,
  batchSize: 100,
};

export interface SchedulerRun {
  /** False when another replica held the lock and this run did nothing. */
  leader: boolean;
  expiringSoon: number;
  expired: number;
  devicesCulled: number;
}

/** Any 64-bit number no other code uses as an advisory lock key: "kmsched" in ASCII, 0x6b6d7363686564. */
const LEADER_LOCK_KEY = '30238164864492900';

interface SchedulerServices {
  now: () => number;
  events: EventLog;
  licenses: LicenseService;
  emails: EmailService;
  eventRetention: EventRetention;
}

/**
 * Work driven by the clock, run every `intervalMs` by one replica at a time:
 *
 * - `license.expiring_soon`, N days before expiry (the product's
 *   `email.expiring_soon_days`; 0 turns it off), and the reminder email;
 * - `license.expired` when access ends (after any grace period);
 * - deleting floating devices whose lease lapsed more than a day ago
 *   (`device.deactivated`). A lapsed lease frees its seat at once without
 *   this; culling only keeps the device list tidy;
 * - deleting events and webhook delivery logs older than
 *   `KEYMINT_EVENT_RETENTION_DAYS` (events/retention.ts).
 *
 * License status never depends on this: it is derived from timestamps and
 * the clock. The events exist for webhooks and the event log.
 *
 * Leadership: on PostgreSQL each run takes a session advisory lock
 * (`pg_try_advisory_lock`) on a connection held for the run; a replica that
 * does not get it skips the run. The lock dies with its connection, so a
 * crashed leader never blocks the others. On SQLite there is one process.
 * The lock only saves work: every notice is also recorded in
 * `license_notices` (unique per license, kind and expiry) in the transaction
 * that emits its event, so even two runs at once cannot announce an expiry
 * twice.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private current: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly services: SchedulerServices,
    private readonly log: FastifyBaseLogger,
    private readonly options: SchedulerOptions = DEFAULT_SCHEDULER_OPTIONS,
  ) {}

  /** Runs now, then every `intervalMs`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops scheduling and waits for a run in progress. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.current.catch(() => undefined);
  }

  /** One run, after any run in progress (tests call this directly). */
  runOnce(): Promise<SchedulerRun> {
    const run = this.current.catch(() => undefined).then(() => this.lead(() => this.work()));
    this.current = run;
    return run;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.runOnce()
        .catch((err: unknown) => this.log.error({ err }, 'scheduler run failed'))
        .finally(() => {
          if (this.running) this.schedule(this.options.intervalMs);
        });
    }, delayMs);
    this.timer.unref();
  }

  private async lead(work: () => Promise<Omit<SchedulerRun, 'leader'>>): Promise<SchedulerRun> {
    if (this.db.dialect === 'sqlite') return { leader: true, ...(await work()) };
    return this.db.kysely.connection().execute(async (conn) => {
      const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(${sql.raw(LEADER_LOCK_KEY)}::bigint) as locked`.execute(conn);
      if (!rows[0]?.locked) return { leader: false, expiringSoon: 0, expired: 0, devicesCulled: 0 };
      try {
        return { leader: true, ...(await work()) };
      } finally {
        await sql`select pg_advisory_unlock(${sql.raw(LEADER_LOCK_KEY)}::bigint)`.execute(conn);
      }
    });
  }

  private async work(): Promise<Omit<SchedulerRun, 'leader'>> {
    // Each kind of work runs even when another failed: one bad row must not stop the rest.
    const step = async (name: string, fn: () => Promise<number>) => {
      try {
        return await fn();
      } catch (err) {
        this.log.error({ err, step: name }, 'scheduler step failed');
        return 0;
      }
    };
    const run = {
      expiringSoon: await step('expiring_soon', () => this.announceExpiringSoon()),
      expired: await step('expired', () => this.announceExpired()),
      devicesCulled: await step('cull_leases', () => this.cullLapsedLeases()),
    };
    // Housekeeping, not reported: events and delivery logs past KEYMINT_EVENT_RETENTION_DAYS (two indexed deletes when nothing is due).
    await step('event_retention', async () => (await this.services.eventRetention.sweep()).events);
    return run;
  }

  private async announceExpiringSoon(): Promise<number> {
    const now = this.services.now();
    let announced = 0;
    for (const product of await listProductSettings(this.db.kysely)) {
      const days = parseEmailSettings(product.email_settings).expiring_soon_days;
      if (days <= 0) continue;
      const window = days * 86_400;
      for (;;) {
        const batch = await findLicensesExpiringSoon(this.db.kysely, product.id, now, now + window, this.options.batchSize);
        announced += await this.announce(batch, 'expiring_soon', async (trx, scope, license) => {
          if (this.remindsByEmail(license, now, window)) {
            await this.services.emails.enqueueExpiringSoon(trx, scope, license.id, { dedupeKey: `${license.id}:${license.expires_at}` });
          }
        });
        if (batch.length < this.options.batchSize) break;
      }
    }
    return announced;
  }

  /**
   * Whether the expiring-soon reminder goes to the customer. Subscriptions
   * renew by themselves, so only one that is cancelled at period end gets
   * it; a suspended license has a payment problem to solve first; and a
   * license that was issued inside the window (a 3-day trial with a 7-day
   * reminder) would get the reminder with its key — it gets only the event.
   */
  private remindsByEmail(license: ScheduledLicense, now: number, window: number): boolean {
    if (license.suspended_at !== null && license.suspended_at <= now) return false;
    if (license.license_type === 'subscription' && license.cancel_at_period_end !== 1) return false;
    if (license.license_type === 'perpetual') return false;
    return license.expires_at !== null && license.created <= license.expires_at - window;
  }

  private async announceExpired(): Promise<number> {
    const now = this.services.now();
    let announced = 0;
    for (;;) {
      const batch = await findLicensesLapsed(this.db.kysely, now, now - this.options.catchUpSeconds, this.options.batchSize);
      announced += await this.announce(batch, 'expired', async () => undefined);
      if (batch.length < this.options.batchSize) break;
    }
    return announced;
  }

  /**
   * Records each license's notice and event (and `also`) in a transaction of
   * its own; skips those already announced. One license per transaction keeps
   * each short: on SQLite a transaction holds the only connection, and the
   * validation hot path must not wait behind a batch.
   */
  private async announce(
    batch: ScheduledLicense[],
    kind: 'expiring_soon' | 'expired',
    also: (trx: Kysely<Database>, scope: Scope, license: ScheduledLicense) => Promise<void>,
  ): Promise<number> {
    let announced = 0;
    for (const license of batch) {
      const expiresAt = license.expires_at;
      if (expiresAt === null) continue;
      const scope: Scope = { accountId: license.account_id, env: license.env };
      const done = await this.db.kysely.transaction().execute(async (trx) => {
        const view = await this.services.licenses.viewOf(trx, scope, license.id);
        // Renewed since the lookup: a new expiry, announced in its own time.
        if (view.expires_at !== expiresAt) return false;
        if (!(await insertNotice(trx, { license_id: license.id, kind, expires_at: expiresAt, created: this.services.now() }))) return false;
        await this.services.events.record(trx, scope, kind === 'expired' ? 'license.expired' : 'license.expiring_soon', view);
        await also(trx, scope, license);
        return true;
      });
      if (done) announced++;
    }
    return announced;
  }

  private async cullLapsedLeases(): Promise<number> {
    const before = this.services.now() - this.options.cullLeasesAfterSeconds;
    let culled = 0;
    for (;;) {
      const ids = await findLapsedDeviceIds(this.db.kysely, before, this.options.batchSize);
      if (ids.length === 0) break;
      culled += await this.db.kysely.transaction().execute(async (trx) => {
        const deleted = await deleteLapsedDevices(trx, ids, before);
        for (const device of deleted) {
          await this.services.events.record(trx, { accountId: device.account_id, env: device.env }, 'device.deactivated', deviceView(device));
        }
        return deleted.length;
      });
      if (ids.length < this.options.batchSize) break;
    }
    return culled;
  }
}
