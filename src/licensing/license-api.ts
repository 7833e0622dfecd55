import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import { sha256Hex } from '../crypto/secret-box.js';
import type { Dialect } from '../db/database.js';
import type { PreparedQueries } from '../db/prepared.js';
import {
  countSeatHolders,
  deleteDevice,
  findDeviceByFingerprint,
  findLicenseContext,
  findLicenseForValidation,
  insertDevice,
  lockLicenseByKeyHash,
  touchLicensesValidated,
  updateDevice,
  type DeviceRow,
  type LicenseRow,
  type ValidationRow,
} from '../db/repositories/licenses.js';
import type { Database, Scope } from '../db/schema.js';
import { DomainError, conflict, permission } from '../errors.js';
import type { EventLog } from '../events/event-log.js';
import { newId } from '../ids.js';
import { hasKeyShape } from './license-key.js';
import { licenseStatus } from './status.js';
import { validateLicense, type ValidationRequest, type Verdict } from './validation.js';
import type { ValidationCache, ValidationInputs } from './validation-cache.js';
import { deviceView, effectiveEntitlements, effectiveMaxDevices, publicLicenseView, type DeviceView, type PublicLicenseView } from './views.js';

export interface ValidationResult extends Verdict {
  license: PublicLicenseView | null;
  device: DeviceView | null;
}

export interface ActivationInput {
  key: string;
  fingerprint: string;
  name?: string | null;
  platform?: string | null;
  metadata?: Record<string, string>;
}

/**
 * sha256Hex() for the validation hot path: the one-shot `crypto.hash()`
 * (Node ≥ 20.12) skips the Hash object sha256Hex() builds per call; same
 * digest, same hex.
 */
const keyHash: (key: string) => string = typeof crypto.hash === 'function' ? (key) => crypto.hash('sha256', key, 'hex') : sha256Hex;

const licenseNotFound = () => new DomainError('not_found', 'license_not_found', 'license key not found', 'key');

/** Licenses per bookkeeping UPDATE: small enough that one never holds SQLite's single connection (and, SQLite being synchronous, the event loop) for long. */
const TOUCH_CHUNK = 100;

/** Lets the event loop serve what is waiting (requests, other queries) before the next chunk. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * "Last validated" is kept to the minute: a license validated again less
 * than this long after its last write is not written again. An app that
 * validates every few seconds would otherwise cost a row write each time.
 */
const LAST_VALIDATED_RESOLUTION_SECONDS = 60;

/**
 * "Last validated" is bookkeeping, not part of the answer, so it stays off
 * the request path: validations are collected in memory and written every
 * few seconds, in small UPDATEs with the event loop served between them, and
 * at most once a minute per license. Losing a few seconds of it in a crash
 * is acceptable.
 */
class ValidationBookkeeping {
  private pending = new Set<string>();
  /** When each license's `last_validated_at` was last written, oldest first (for pruning). */
  private readonly written = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
    private readonly intervalMs: number,
  ) {}

  note(licenseId: string, now: number): void {
    const at = this.written.get(licenseId);
    if (at !== undefined && now >= at && now - at < LAST_VALIDATED_RESOLUTION_SECONDS) return;
    this.pending.add(licenseId);
    this.timer ??= setTimeout(() => void this.flush(), this.intervalMs).unref();
  }

  /** One flush at a time: one asked for while another runs (shutdown during a timed flush) runs after it. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  private async write(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const ids = [...this.pending];
    this.pending = new Set();
    for (let i = 0; i < ids.length; i += TOUCH_CHUNK) {
      if (i > 0) await yieldToEventLoop();
      const chunk = ids.slice(i, i + TOUCH_CHUNK);
      const at = this.now();
      const done = await touchLicensesValidated(this.db, chunk, at).then(
        () => true,
        () => false,
      );
      if (!done) continue;
      for (const id of chunk) {
        // Re-inserted, so the map stays ordered by write time.
        this.written.delete(id);
        this.written.set(id, at);
      }
    }
    this.prune(this.now());
  }

  /** Forgets writes older than the resolution: those licenses are written again at their next validation anyway. */
  private prune(now: number): void {
    for (const [id, at] of this.written) {
      if (now >= at && now - at < LAST_VALIDATED_RESOLUTION_SECONDS) break;
      this.written.delete(id);
    }
  }
}

/**
 * Everything an answer about this license (and presented device) is made
 * from, computed once: the verdict's subject and the public views. It holds
 * until `freshUntil`, the first of the row's future timestamps at which a
 * part derived from the clock changes.
 */
function validationInputs(row: ValidationRow, now: number): ValidationInputs {
  // No device columns at all when no fingerprint was presented; null ones when it is not activated.
  const deviceId = row.device_id ?? null;
  const entitlements = effectiveEntitlements(row);
  return {
    licenseId: row.id,
    subject: {
      revoked_at: row.revoked_at,
      suspended_at: row.suspended_at,
      expires_at: row.expires_at,
      grace_ends_at: row.grace_ends_at,
      product_id: row.product_id,
      product_code: row.product_code,
      perpetual_fallback: row.perpetual_fallback === 1,
      floating: row.floating === 1,
      require_fingerprint: row.require_fingerprint === 1,
      entitlements,
    },
    device: deviceId === null ? null : { lease_expires_at: row.device_lease_expires_at ?? null },
    license: publicLicenseView(row, now, entitlements),
    deviceView:
      deviceId === null
        ? null
        : deviceView({
            id: deviceId,
            license_id: row.id,
            fingerprint: row.device_fingerprint ?? '',
            name: row.device_name ?? null,
            platform: row.device_platform ?? null,
            metadata: row.device_metadata ?? '{}',
            lease_expires_at: row.device_lease_expires_at ?? null,
            last_seen_at: row.device_last_seen_at ?? row.device_created ?? now,
            created: row.device_created ?? now,
          }),
    computedAt: now,
    freshUntil: firstAfter(now, [row.revoked_at, row.suspended_at, row.expires_at, row.grace_ends_at, row.device_lease_expires_at ?? null, row.next_lease_lapse]),
  };
}

/** The earliest of `times` later than `now`; Infinity when there is none. */
function firstAfter(now: number, times: (number | null)[]): number {
  let first = Infinity;
  for (const t of times) if (t !== null && t > now && t < first) first = t;
  return first;
}

/**
 * The public license API: what a vendor's app calls with a license key as its
 * only credential. The key is looked up by its SHA-256 hash; the hash of a key
 * Keymint issued is proof enough, so the hot path verifies no signature.
 */
export class LicenseApiService {
  private readonly bookkeeping: ValidationBookkeeping;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly events: EventLog,
    private readonly now: () => number,
    /** Null: every validation reads the database (PostgreSQL, or turned off). */
    private readonly cache: ValidationCache | null = null,
    /** PostgreSQL: the validation query as a named prepared statement. */
    private readonly prepared: PreparedQueries | null = null,
  ) {
    this.bookkeeping = new ValidationBookkeeping(db, now, 5_000);
  }

  /**
   * The answer to `POST /v1/licenses/validate`. Synchronous when it comes
   * from memory (no promise, no microtask: this is the hot path), a promise
   * when the database must be read.
   */
  validate(key: string, request: ValidationRequest): ValidationResult | Promise<ValidationResult> {
    const now = this.now();
    const fingerprint = request.fingerprint ?? null;
    const inputs = this.cache?.get(key, fingerprint, now);
    if (inputs !== undefined) return this.answer(inputs, request, now);
    return this.validateFromDatabase(key, fingerprint, request, now);
  }

  private async validateFromDatabase(key: string, fingerprint: string | null, request: ValidationRequest, now: number): Promise<ValidationResult> {
    if (!hasKeyShape(key)) return this.answer(null, request, now);
    const generation = this.cache?.generation() ?? 0;
    const row = await findLicenseForValidation(this.db, keyHash(key), fingerprint, now, this.prepared);
    if (!row) return this.answer(null, request, now);
    const inputs = validationInputs(row, now);
    this.cache?.set(key, fingerprint, inputs, generation);
    return this.answer(inputs, request, now);
  }

  /** The answer made from `inputs`; null: no license has this key. */
  private answer(inputs: ValidationInputs | null, request: ValidationRequest, now: number): ValidationResult {
    if (inputs !== null) this.bookkeeping.note(inputs.licenseId, now);
    const { valid, code, message } = validateLicense(inputs?.subject ?? null, inputs?.device ?? null, request, now);
    return { valid, code, message, license: inputs?.license ?? null, device: inputs?.deviceView ?? null };
  }

  /**
   * Activates a device. The license row is locked for the transaction, so
   * concurrent activations on one license are decided one at a time and the
   * device limit holds; a repeated fingerprint returns its existing device.
   */
  async activate(input: ActivationInput): Promise<{ device: DeviceView; created: boolean }> {
    if (!hasKeyShape(input.key)) throw licenseNotFound();
    return this.db.transaction().execute(async (trx) => {
      const { license, scope, now, maxDevices, leaseSeconds } = await this.lockActive(trx, input.key);
      const existing = await findDeviceByFingerprint(trx, license.id, input.fingerprint);
      if (existing && (existing.lease_expires_at === null || existing.lease_expires_at > now)) {
        const changes = { last_seen_at: now, lease_expires_at: leaseSeconds === null ? null : now + leaseSeconds };
        await updateDevice(trx, existing.id, changes);
        return { device: deviceView({ ...existing, ...changes }), created: false };
      }
      // A new device, or a floating device whose lapsed lease must win a seat again.
      const holders = await countSeatHolders(trx, license.id, now, existing?.id);
      if (maxDevices !== null && holders >= maxDevices) {
        throw conflict('device_limit_reached', `this license allows ${maxDevices} device${maxDevices === 1 ? '' : 's'} and all are in use`, 'fingerprint');
      }
      const device: DeviceRow = existing
        ? { ...existing, last_seen_at: now, lease_expires_at: leaseSeconds === null ? null : now + leaseSeconds }
        : {
            id: newId('device'),
            account_id: license.account_id,
            env: license.env,
            license_id: license.id,
            fingerprint: input.fingerprint,
            name: input.name ?? null,
            platform: input.platform ?? null,
            metadata: JSON.stringify(input.metadata ?? {}),
            lease_expires_at: leaseSeconds === null ? null : now + leaseSeconds,
            last_seen_at: now,
            created: now,
          };
      if (existing) await updateDevice(trx, device.id, { last_seen_at: device.last_seen_at, lease_expires_at: device.lease_expires_at });
      else await insertDevice(trx, device);
      const view = deviceView(device);
      await this.events.record(trx, scope, 'device.activated', view);
      return { device: view, created: !existing };
    });
  }

  async deactivate(key: string, fingerprint: string): Promise<{ id: string; object: 'device'; deleted: true }> {
    if (!hasKeyShape(key)) throw licenseNotFound();
    return this.db.transaction().execute(async (trx) => {
      const license = await lockLicenseByKeyHash(trx, this.dialect, sha256Hex(key));
      if (!license) throw licenseNotFound();
      const device = await findDeviceByFingerprint(trx, license.id, fingerprint);
      if (!device) throw new DomainError('not_found', 'device_not_found', 'no device with this fingerprint is activated on this license', 'fingerprint');
      await deleteDevice(trx, device.id);
      await this.events.record(trx, scope(license), 'device.deactivated', deviceView(device));
      return { id: device.id, object: 'device' as const, deleted: true as const };
    });
  }

  /**
   * Renews a device's lease. On a floating license a lapsed lease has already
   * freed its seat, so a late heartbeat must win a seat again like a new
   * activation would.
   */
  async heartbeat(key: string, fingerprint: string): Promise<DeviceView> {
    if (!hasKeyShape(key)) throw licenseNotFound();
    return this.db.transaction().execute(async (trx) => {
      const { license, now, maxDevices, leaseSeconds } = await this.lockActive(trx, key);
      const device = await findDeviceByFingerprint(trx, license.id, fingerprint);
      if (!device) throw new DomainError('not_found', 'device_not_found', 'no device with this fingerprint is activated on this license', 'fingerprint');
      const lapsed = device.lease_expires_at !== null && device.lease_expires_at <= now;
      if (lapsed && maxDevices !== null && (await countSeatHolders(trx, license.id, now, device.id)) >= maxDevices) {
        throw conflict('device_limit_reached', 'the lease lapsed and its seat has been taken by another device', 'fingerprint');
      }
      const changes = { last_seen_at: now, lease_expires_at: leaseSeconds === null ? null : now + leaseSeconds };
      await updateDevice(trx, device.id, changes);
      return deviceView({ ...device, ...changes });
    });
  }

  /** Flushes deferred bookkeeping; called on shutdown. */
  close(): Promise<void> {
    return this.bookkeeping.flush();
  }

  private async lockActive(trx: Kysely<Database>, key: string) {
    const locked = await lockLicenseByKeyHash(trx, this.dialect, sha256Hex(key));
    if (!locked) throw licenseNotFound();
    const now = this.now();
    const license = await findLicenseContext(trx, scope(locked), locked.id, now);
    if (!license) throw licenseNotFound();
    const status = licenseStatus(license, license.perpetual_fallback === 1, now);
    if (status !== 'active') throw permission('license_not_active', `license is ${status}`);
    const leaseSeconds = license.floating === 1 ? (license.heartbeat_interval ?? 600) : null;
    return { license: locked as LicenseRow, scope: scope(locked), now, maxDevices: effectiveMaxDevices(license), leaseSeconds };
  }
}

const scope = (l: Pick<LicenseRow, 'account_id' | 'env'>): Scope => ({ accountId: l.account_id, env: l.env });
