import type { Kysely } from 'kysely';
import { sha256Hex } from '../crypto/secret-box.js';
import type { Dialect } from '../db/database.js';
import { findProduct, type PolicyRow } from '../db/repositories/catalog.js';
import {
  deleteDevice,
  findDevice,
  findLicenseByFulfilmentKey,
  findLicenseContext,
  insertLicense,
  listDevices,
  listLicenseContexts,
  lockLicenseById,
  updateLicense,
  type LicenseContextRow,
  type LicenseFilter,
  type LicenseRow,
} from '../db/repositories/licenses.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import type { Database, Scope } from '../db/schema.js';
import type { CustomerInput, CustomerService } from '../customers/customers.js';
import { normalizeEmail } from '../customers/customers.js';
import { conflict, invalidRequest, notFound } from '../errors.js';
import type { EventLog, EventType } from '../events/event-log.js';
import { newId } from '../ids.js';
import type { CatalogService } from './catalog.js';
import { addDuration } from './duration.js';
import { encodeKey } from './license-key.js';
import type { SigningKeyService } from './signing-keys.js';
import { adminLicenseView, deviceView, type AdminLicenseView, type DeviceView } from './views.js';

export interface LicenseInput {
  policy: string;
  customer?: CustomerInput | string | null;
  expires_at?: number | null;
  max_devices?: number | null;
  entitlements?: string[] | null;
  metadata?: Record<string, string>;
}

export type LicenseUpdate = Omit<LicenseInput, 'policy' | 'customer'>;

/** Everything a new license is made from, whoever asks for it (admin API or a Stripe purchase). */
export interface IssueSpec {
  policy: PolicyRow;
  customerId: string | null;
  /** Overrides the policy's expiry. */
  expiresAt?: number | null;
  /** Overrides the policy's duration (a price mapping may). */
  duration?: string | null;
  maxDevices?: number | null;
  entitlements?: string[] | null;
  metadata?: Record<string, string>;
  fulfilmentKey?: string;
  stripe?: { customer?: string | null; checkout_session?: string | null; payment_intent?: string | null; subscription?: string | null; price?: string | null };
}

/**
 * Licenses as the vendor administers them: issue, look up, change, suspend,
 * reinstate, revoke, renew. Every change writes its event in the same
 * transaction.
 */
export class LicenseService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly catalog: CatalogService,
    private readonly customers: CustomerService,
    private readonly signingKeys: SigningKeyService,
    private readonly events: EventLog,
    private readonly now: () => number,
  ) {}

  /** `options.inTransaction` runs in the creating transaction (e.g. to enqueue the delivery email); if it throws, no license is created. */
  async create(
    scope: Scope,
    input: LicenseInput,
    options: { inTransaction?: (trx: Kysely<Database>, license: AdminLicenseView) => Promise<unknown> } = {},
  ): Promise<AdminLicenseView> {
    const policy = await this.catalog.policyRow(this.db, scope, input.policy, 'policy');
    return this.db.transaction().execute(async (trx) => {
      let customerId: string | null = null;
      if (typeof input.customer === 'string') {
        customerId = (await this.customers.row(trx, scope, input.customer, 'customer')).id;
      } else if (input.customer) {
        customerId = (await this.customers.findOrCreate(trx, scope, input.customer)).id;
      }
      const { view } = await this.issue(trx, scope, {
        policy,
        customerId,
        expiresAt: input.expires_at ?? null,
        maxDevices: input.max_devices ?? null,
        entitlements: input.entitlements ?? null,
        metadata: input.metadata,
      });
      await options.inTransaction?.(trx, view);
      return view;
    });
  }

  /**
   * Issues a license inside the caller's transaction. With a fulfilment key
   * (the Stripe objects a purchase came from) at most one license ever exists
   * per key: a second call returns the existing license with `created: false`.
   */
  async issue(trx: Kysely<Database>, scope: Scope, spec: IssueSpec): Promise<{ view: AdminLicenseView; created: boolean }> {
    const { policy } = spec;
    const signingKey = await this.signingKeys.active(scope, trx);
    const now = this.now();
    const id = newId('license');
    const key = encodeKey({ lid: id, pid: policy.product_id, env: scope.env, kid: signingKey.id, iat: now }, signingKey.privateKey);
    const duration = spec.duration ?? policy.duration;
    const expiresAt =
      spec.expiresAt ?? policy.fixed_expires_at ?? (duration && policy.license_type !== 'perpetual' ? addDuration(now, duration) : null);
    if (expiresAt !== null && policy.license_type === 'perpetual') {
      throw invalidRequest('parameter_invalid', 'licenses of a perpetual policy do not expire', 'expires_at');
    }
    const row: LicenseRow = {
      id,
      account_id: scope.accountId,
      env: scope.env,
      product_id: policy.product_id,
      policy_id: policy.id,
      customer_id: spec.customerId,
      key_hash: sha256Hex(key),
      key_kid: signingKey.id,
      key_iat: now,
      expires_at: expiresAt,
      grace_ends_at: expiresAt !== null && policy.grace_period ? addDuration(expiresAt, policy.grace_period) : null,
      maintenance_ends_at: policy.maintenance_period ? addDuration(now, policy.maintenance_period) : null,
      suspended_at: null,
      revoked_at: null,
      max_devices_override: spec.maxDevices ?? null,
      entitlements_override: spec.entitlements ? JSON.stringify([...new Set(spec.entitlements)]) : null,
      metadata: JSON.stringify(spec.metadata ?? {}),
      created: now,
      updated: now,
      fulfilment_key: spec.fulfilmentKey ?? null,
      stripe_customer: spec.stripe?.customer ?? null,
      stripe_checkout_session: spec.stripe?.checkout_session ?? null,
      stripe_payment_intent: spec.stripe?.payment_intent ?? null,
      stripe_subscription: spec.stripe?.subscription ?? null,
      stripe_price: spec.stripe?.price ?? null,
      suspension_reason: null,
      cancel_at_period_end: 0,
    };
    if (!(await insertLicense(trx, row))) {
      const existing = await findLicenseByFulfilmentKey(trx, scope, row.fulfilment_key ?? '');
      if (!existing) throw new Error(`license for ${row.fulfilment_key} vanished after a conflicting insert`);
      return { view: await this.viewOf(trx, scope, existing.id), created: false };
    }
    return { view: await this.recordChange(trx, scope, id, 'license.created', key), created: true };
  }

  async get(scope: Scope, id: string): Promise<AdminLicenseView> {
    const row = await findLicenseContext(this.db, scope, id, this.now());
    if (!row) throw notFound('license', id, 'id');
    return this.view(row);
  }

  async list(scope: Scope, filter: LicenseFilter, page: PageParams) {
    const resolved = { ...filter };
    if (filter.product !== undefined) resolved.product = (await findProduct(this.db, scope, filter.product))?.id ?? filter.product;
    if (filter.email !== undefined) resolved.email = normalizeEmail(filter.email);
    const result = await listLicenseContexts(this.db, scope, resolved, page, this.now());
    return { data: await Promise.all(result.data.map((row) => this.view(row))), has_more: result.has_more };
  }

  async update(scope: Scope, id: string, input: LicenseUpdate): Promise<AdminLicenseView> {
    return this.change(scope, id, 'license.updated', async (license, _now, trx) => {
      const changes: Partial<LicenseRow> = {};
      if (input.expires_at !== undefined) {
        // The grace period runs from the expiry, so it moves with it.
        const policy = await this.catalog.policyRow(trx, scope, license.policy_id);
        if (input.expires_at !== null && policy.license_type === 'perpetual') {
          throw invalidRequest('parameter_invalid', 'licenses of a perpetual policy do not expire', 'expires_at');
        }
        changes.expires_at = input.expires_at;
        changes.grace_ends_at = input.expires_at !== null && policy.grace_period ? addDuration(input.expires_at, policy.grace_period) : null;
      }
      if (input.max_devices !== undefined) changes.max_devices_override = input.max_devices;
      if (input.entitlements !== undefined) {
        changes.entitlements_override = input.entitlements === null ? null : JSON.stringify([...new Set(input.entitlements)]);
      }
      if (input.metadata !== undefined) changes.metadata = JSON.stringify({ ...JSON.parse(license.metadata), ...input.metadata });
      return changes;
    });
  }

  /** Suspending a suspended license is a no-op, not an error; a revoked one cannot be suspended. */
  async suspend(scope: Scope, id: string): Promise<AdminLicenseView> {
    return this.change(scope, id, 'license.suspended', (license, now) => {
      this.refuseIfRevoked(license, now, 'suspend');
      return license.suspended_at !== null && license.suspended_at <= now ? null : { suspended_at: now, suspension_reason: 'manual' as const };
    });
  }

  async reinstate(scope: Scope, id: string): Promise<AdminLicenseView> {
    return this.change(scope, id, 'license.reinstated', (license, now) => {
      this.refuseIfRevoked(license, now, 'reinstate');
      return license.suspended_at === null ? null : { suspended_at: null, suspension_reason: null };
    });
  }

  /** Revocation is final: a revoked license cannot be reinstated or renewed. */
  async revoke(scope: Scope, id: string): Promise<AdminLicenseView> {
    return this.change(scope, id, 'license.revoked', (license, now) =>
      license.revoked_at !== null && license.revoked_at <= now ? null : { revoked_at: now },
    );
  }

  /**
   * Extends a license by `duration` (default: its policy's). The extension
   * starts from the current expiry, or from now if the license has already
   * lapsed, so renewing late does not back-date the new period. A license
   * without an expiry (perpetual) renews its maintenance period instead.
   */
  async renew(scope: Scope, id: string, duration?: string): Promise<AdminLicenseView> {
    return this.change(scope, id, 'license.renewed', async (license, now, trx) => {
      this.refuseIfRevoked(license, now, 'renew');
      const policy = await this.catalog.policyRow(trx, scope, license.policy_id);
      if (license.expires_at !== null) {
        const by = duration ?? policy.duration;
        if (!by) throw invalidRequest('parameter_missing', "this license's policy has no duration; pass one", 'duration');
        const expiresAt = addDuration(Math.max(now, license.expires_at), by);
        return { expires_at: expiresAt, grace_ends_at: policy.grace_period ? addDuration(expiresAt, policy.grace_period) : null };
      }
      const by = duration ?? policy.maintenance_period;
      if (!by) throw invalidRequest('parameter_missing', 'this license does not expire and has no maintenance period; pass a duration', 'duration');
      return { maintenance_ends_at: addDuration(Math.max(now, license.maintenance_ends_at ?? now), by) };
    });
  }

  async listDevices(scope: Scope, licenseId: string, page: PageParams) {
    const license = await findLicenseContext(this.db, scope, licenseId, this.now());
    if (!license) throw notFound('license', licenseId, 'id');
    const result = await listDevices(this.db, scope, licenseId, page);
    return mapPage(result, deviceView);
  }

  async deleteDevice(scope: Scope, deviceId: string): Promise<{ id: string; object: 'device'; deleted: true }> {
    return this.db.transaction().execute(async (trx) => {
      const device = await findDevice(trx, scope, deviceId);
      if (!device) throw notFound('device', deviceId, 'id');
      await deleteDevice(trx, device.id);
      await this.events.record(trx, scope, 'device.deactivated', deviceView(device));
      return { id: device.id, object: 'device' as const, deleted: true as const };
    });
  }

  /** The license key, re-derived: keys are never stored, only their hashes. */
  async keyOf(l: Pick<LicenseRow, 'id' | 'product_id' | 'env' | 'key_kid' | 'key_iat'>, db: Kysely<Database> = this.db): Promise<string> {
    const signingKey = await this.signingKeys.byId(l.key_kid, db);
    return encodeKey({ lid: l.id, pid: l.product_id, env: l.env, kid: l.key_kid, iat: l.key_iat }, signingKey.privateKey);
  }

  async view(row: LicenseContextRow): Promise<AdminLicenseView> {
    return adminLicenseView(row, await this.keyOf(row), this.now());
  }

  /** Puts the key back into a license stored without it (the event log). */
  async reveal(scope: Scope, object: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (object.object !== 'license' || typeof object.id !== 'string') return object;
    const row = await findLicenseContext(this.db, scope, object.id, this.now());
    return row ? { ...object, key: await this.keyOf(row) } : object;
  }

  private refuseIfRevoked(license: LicenseRow, now: number, action: string): void {
    if (license.revoked_at !== null && license.revoked_at <= now) {
      throw conflict('license_revoked', `a revoked license cannot be ${action === 'renew' ? 'renewed' : `${action}d`}`);
    }
  }

  /**
   * Applies `decide`'s changes to a locked license and records `type`;
   * `decide` returns null when the license is already in the wanted state,
   * which makes every admin action idempotent (no change, no event).
   */
  private async change(
    scope: Scope,
    id: string,
    type: EventType,
    decide: (license: LicenseRow, now: number, trx: Kysely<Database>) => Partial<LicenseRow> | null | Promise<Partial<LicenseRow> | null>,
  ): Promise<AdminLicenseView> {
    return this.db.transaction().execute((trx) => this.changeIn(trx, scope, id, type, decide));
  }

  /**
   * Applies `decide`'s changes to the license, locked, inside the caller's
   * transaction, and records `type`; `decide` returns null when the license
   * is already in the wanted state, which makes every action idempotent (no
   * change, no event).
   */
  async changeIn(
    trx: Kysely<Database>,
    scope: Scope,
    id: string,
    type: EventType,
    decide: (license: LicenseRow, now: number, trx: Kysely<Database>) => Partial<LicenseRow> | null | Promise<Partial<LicenseRow> | null>,
  ): Promise<AdminLicenseView> {
    const license = await lockLicenseById(trx, this.dialect, scope, id);
    if (!license) throw notFound('license', id, 'id');
    const now = this.now();
    const changes = await decide(license, now, trx);
    if (changes === null) return this.viewOf(trx, scope, id);
    await updateLicense(trx, id, { ...changes, updated: now });
    return this.recordChange(trx, scope, id, type);
  }

  async viewOf(trx: Kysely<Database>, scope: Scope, id: string, key?: string): Promise<AdminLicenseView> {
    const row = await findLicenseContext(trx, scope, id, this.now());
    if (!row) throw new Error(`license ${id} vanished inside its own transaction`);
    return adminLicenseView(row, key ?? (await this.keyOf(row, trx)), this.now());
  }

  async recordChange(trx: Kysely<Database>, scope: Scope, id: string, type: EventType, key?: string): Promise<AdminLicenseView> {
    const view = await this.viewOf(trx, scope, id, key);
    await this.events.record(trx, scope, type, view);
    return view;
  }
}
