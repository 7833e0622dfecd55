import { sql, type ExpressionBuilder, type Kysely } from 'kysely';
import type { Database, DevicesTable, LicenseNoticesTable, LicensesTable } from '../schema.js';

/** What the scheduler's queries return about a license: the row and its policy's type. */
export type ScheduledLicense = LicensesTable & { license_type: string };

/** When access ends: the end of grace if any, else the expiry (status.ts). The same expression as the `licenses_access_ends_at` index. */
const accessEndsAt = sql<number>`coalesce(licenses.grace_ends_at, licenses.expires_at)`;

/** Every product with its email settings, across accounts and environments. */
export function listProductSettings(db: Kysely<Database>) {
  return db.selectFrom('products').select(['id', 'account_id', 'env', 'email_settings']).execute();
}

/** No notice of `kind` was recorded yet for the license's current expiry (one event per license and expiry). */
function noNoticeYet(eb: ExpressionBuilder<Database, 'licenses' | 'policies'>, kind: 'expiring_soon' | 'expired') {
  return eb.not(
    eb.exists(
      eb
        .selectFrom('license_notices')
        .select('license_notices.license_id')
        .whereRef('license_notices.license_id', '=', 'licenses.id')
        .where('license_notices.kind', '=', kind)
        .whereRef('license_notices.expires_at', '=', 'licenses.expires_at'),
    ),
  );
}

/**
 * Licenses of a product that expire in `(now, until]`, are not revoked, and
 * have not had an expiring-soon notice for this expiry yet; soonest first.
 */
export function findLicensesExpiringSoon(db: Kysely<Database>, productId: string, now: number, until: number, limit: number): Promise<ScheduledLicense[]> {
  return db
    .selectFrom('licenses')
    .innerJoin('policies', 'policies.id', 'licenses.policy_id')
    .selectAll('licenses')
    .select('policies.license_type')
    .where('licenses.product_id', '=', productId)
    .where('licenses.expires_at', '>', now)
    .where('licenses.expires_at', '<=', until)
    .where((eb) => eb.or([eb('licenses.revoked_at', 'is', null), eb('licenses.revoked_at', '>', now)]))
    .where((eb) => noNoticeYet(eb, 'expiring_soon'))
    .orderBy('licenses.expires_at')
    .limit(limit)
    .execute() as Promise<ScheduledLicense[]>;
}

/**
 * Licenses whose access ended in `(since, now]` (after any grace period), not
 * revoked by then, without an expired notice for this expiry yet.
 */
export function findLicensesLapsed(db: Kysely<Database>, now: number, since: number, limit: number): Promise<ScheduledLicense[]> {
  return db
    .selectFrom('licenses')
    .innerJoin('policies', 'policies.id', 'licenses.policy_id')
    .selectAll('licenses')
    .select('policies.license_type')
    .where(accessEndsAt, '<=', now)
    .where(accessEndsAt, '>', since)
    .where((eb) => eb.or([eb('licenses.revoked_at', 'is', null), eb('licenses.revoked_at', '>', now)]))
    .where((eb) => noNoticeYet(eb, 'expired'))
    .orderBy(accessEndsAt)
    .limit(limit)
    .execute() as Promise<ScheduledLicense[]>;
}

/** Records a notice unless it was recorded before; true when this call recorded it. */
export async function insertNotice(db: Kysely<Database>, row: LicenseNoticesTable): Promise<boolean> {
  const result = await db
    .insertInto('license_notices')
    .values(row)
    .onConflict((oc) => oc.columns(['license_id', 'kind', 'expires_at']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/** Floating devices whose lease lapsed before `before`. */
export async function findLapsedDeviceIds(db: Kysely<Database>, before: number, limit: number): Promise<string[]> {
  const rows = await db.selectFrom('devices').select('id').where('lease_expires_at', '<', before).orderBy('lease_expires_at').limit(limit).execute();
  return rows.map((r) => r.id);
}

/**
 * Deletes those of `ids` whose lease is still lapsed before `before` (a
 * heartbeat since the lookup keeps its device) and returns what was deleted.
 */
export function deleteLapsedDevices(db: Kysely<Database>, ids: string[], before: number): Promise<DevicesTable[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db.deleteFrom('devices').where('id', 'in', ids).where('lease_expires_at', '<', before).returningAll().execute();
}
