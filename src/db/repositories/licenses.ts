import { CompiledQuery, sql, type ExpressionBuilder, type Kysely, type Updateable } from 'kysely';
import type { Dialect } from '../database.js';
import type { PreparedQueries } from '../prepared.js';
import type { Database, DevicesTable, LicensesTable, Scope } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type LicenseRow = LicensesTable;
export type DeviceRow = DevicesTable;

/** A license with what is needed to show and judge it: its policy's rules, its product's fallback, and its live device count. */
export interface LicenseContextRow extends LicenseRow {
  product_code: string | null;
  /** From license_activity; null until the first validation is recorded. */
  last_validated_at: number | null;
  perpetual_fallback: 0 | 1;
  policy_max_devices: number | null;
  policy_entitlements: string;
  floating: 0 | 1;
  heartbeat_interval: number | null;
  require_fingerprint: 0 | 1;
  license_type: string;
  active_devices: number;
}

/** A device holds a seat unless it is a floating device whose lease has lapsed. */
function holdsSeat(eb: ExpressionBuilder<Database, 'devices'>, now: number) {
  return eb.or([eb('devices.lease_expires_at', 'is', null), eb('devices.lease_expires_at', '>', now)]);
}

/** How many of the license's devices hold a seat right now, as the column `active_devices`. */
function activeDevices(eb: ExpressionBuilder<Database & { l: LicensesTable }, 'l'>, now: number) {
  return eb
    .selectFrom('devices')
    .select((e) => e.fn.countAll<number>().as('n'))
    .whereRef('devices.license_id', '=', 'l.id')
    .where((e) => holdsSeat(e, now))
    .as('active_devices');
}

/**
 * When the seat count next drops by itself: the earliest lease, still
 * running, of the license's devices (null when none has one). Floating
 * licenses' devices hold leases; so may those of a license whose policy
 * stopped being floating, until they lapse. Answers computed now hold until
 * then.
 */
function nextLeaseLapse(eb: ExpressionBuilder<Database & { l: LicensesTable }, 'l'>, now: number) {
  return eb
    .selectFrom('devices')
    .select((e) => e.fn.min<number>('devices.lease_expires_at').as('at'))
    .whereRef('devices.license_id', '=', 'l.id')
    .where('devices.lease_expires_at', '>', now)
    .as('next_lease_lapse');
}

function withContext(db: Kysely<Database>, now: number) {
  return db
    .selectFrom('licenses as l')
    .innerJoin('policies as p', 'p.id', 'l.policy_id')
    .innerJoin('products as pr', 'pr.id', 'l.product_id')
    .leftJoin('license_activity as la', 'la.license_id', 'l.id')
    .selectAll('l')
    .select([
      'la.last_validated_at',
      'pr.code as product_code',
      'pr.perpetual_fallback',
      'p.max_devices as policy_max_devices',
      'p.entitlements as policy_entitlements',
      'p.floating',
      'p.heartbeat_interval',
      'p.require_fingerprint',
      'p.license_type',
      (eb) => activeDevices(eb, now),
    ]);
}

export async function findLicenseContext(db: Kysely<Database>, scope: Scope, id: string, now: number): Promise<LicenseContextRow | undefined> {
  return (await withContext(db, now)
    .where('l.account_id', '=', scope.accountId)
    .where('l.env', '=', scope.env)
    .where('l.id', '=', id)
    .executeTakeFirst()) as LicenseContextRow | undefined;
}

/**
 * What validation reads: the license columns its verdict and its public view
 * need (not the whole row: every column read is a value materialized per
 * request), the policy's and product's rules, the seat count and the
 * presented device.
 */
/** The columns the public view of a license (`publicLicenseView`) reads. */
export type PublicLicenseColumns = Pick<
  LicenseContextRow,
  | 'id'
  | 'product_id'
  | 'policy_id'
  | 'expires_at'
  | 'grace_ends_at'
  | 'maintenance_ends_at'
  | 'suspended_at'
  | 'revoked_at'
  | 'max_devices_override'
  | 'entitlements_override'
  | 'metadata'
  | 'created'
  | 'perpetual_fallback'
  | 'policy_max_devices'
  | 'policy_entitlements'
  | 'floating'
  | 'active_devices'
>;

export interface ValidationRow extends PublicLicenseColumns, Pick<LicenseContextRow, 'product_code' | 'require_fingerprint'> {
  /** When the next running device lease lapses (and `active_devices` drops); null when no device has one. */
  next_lease_lapse: number | null;
  /** The device columns are absent (undefined) when no fingerprint was presented: there is no device to look up. */
  device_id?: string | null;
  device_fingerprint?: string | null;
  device_name?: string | null;
  device_platform?: string | null;
  device_metadata?: string | null;
  device_lease_expires_at?: number | null;
  device_last_seen_at?: number | null;
  device_created?: number | null;
}

/** Placeholders the validation query is compiled with, found again among its parameters by position. */
const SENTINEL = { keyHash: '\u0000km:key_hash', fingerprint: '\u0000km:fingerprint', now: -7_340_032_111 } as const;
type Slot = keyof typeof SENTINEL;

/** The license with its policy's and product's rules and its seat count. */
function licenseForValidation(db: Kysely<Database>, keyHash: string, now: number) {
  return db
    .selectFrom('licenses as l')
    .innerJoin('policies as p', 'p.id', 'l.policy_id')
    .innerJoin('products as pr', 'pr.id', 'l.product_id')
    .select([
      'l.id',
      'l.product_id',
      'l.policy_id',
      'l.expires_at',
      'l.grace_ends_at',
      'l.maintenance_ends_at',
      'l.suspended_at',
      'l.revoked_at',
      'l.max_devices_override',
      'l.entitlements_override',
      'l.metadata',
      'l.created',
      'pr.code as product_code',
      'pr.perpetual_fallback',
      'p.max_devices as policy_max_devices',
      'p.entitlements as policy_entitlements',
      'p.floating',
      'p.require_fingerprint',
      (eb) => activeDevices(eb, now),
      (eb) => nextLeaseLapse(eb, now),
    ])
    .where('l.key_hash', '=', keyHash);
}

/** The same, plus the device activated with `fingerprint` on that license (null columns when there is none). */
function licenseAndDeviceForValidation(db: Kysely<Database>, keyHash: string, fingerprint: string, now: number) {
  return licenseForValidation(db, keyHash, now)
    .leftJoin('devices as d', (join) => join.onRef('d.license_id', '=', 'l.id').on('d.fingerprint', '=', fingerprint))
    .select([
      'd.id as device_id',
      'd.fingerprint as device_fingerprint',
      'd.name as device_name',
      'd.platform as device_platform',
      'd.metadata as device_metadata',
      'd.lease_expires_at as device_lease_expires_at',
      'd.last_seen_at as device_last_seen_at',
      'd.created as device_created',
    ]);
}

interface CompiledValidation {
  sql: string;
  slots: Slot[];
}

/** Finds which input each parameter of a query compiled with SENTINEL values stands for. */
function slotsOf({ sql: text, parameters }: { sql: string; parameters: readonly unknown[] }, expected: Slot[]): CompiledValidation {
  const slots = parameters.map((p) => {
    const slot = (Object.keys(SENTINEL) as Slot[]).find((k) => SENTINEL[k] === p);
    if (slot === undefined) throw new Error(`validation query: unexpected parameter ${String(p)}`);
    return slot;
  });
  for (const k of expected) if (!slots.includes(k)) throw new Error(`validation query: parameter ${k} not bound`);
  return { sql: text, slots };
}

/**
 * The validation query, compiled once per Kysely instance (so once per
 * dialect) in two forms, without and with a presented fingerprint: building
 * and compiling it costs more than running it. It is compiled with sentinel
 * values, and each parameter position is remembered as the input it stands
 * for.
 */
const compiledValidation = new WeakMap<Kysely<Database>, { license: CompiledValidation; withDevice: CompiledValidation }>();

function compileValidation(db: Kysely<Database>) {
  const compiled = {
    license: slotsOf(licenseForValidation(db, SENTINEL.keyHash, SENTINEL.now).compile(), ['keyHash', 'now']),
    withDevice: slotsOf(licenseAndDeviceForValidation(db, SENTINEL.keyHash, SENTINEL.fingerprint, SENTINEL.now).compile(), ['keyHash', 'fingerprint', 'now']),
  };
  compiledValidation.set(db, compiled);
  return compiled;
}

/**
 * The validation hot path: the license (by key hash), its policy and product,
 * its seat count and, when a fingerprint is presented, that device, in one
 * indexed round trip.
 */
export async function findLicenseForValidation(
  db: Kysely<Database>,
  keyHash: string,
  fingerprint: string | null,
  now: number,
  prepared: PreparedQueries | null = null,
): Promise<ValidationRow | undefined> {
  const compiled = compiledValidation.get(db) ?? compileValidation(db);
  const { sql: text, slots } = fingerprint === null ? compiled.license : compiled.withDevice;
  const input = { keyHash, fingerprint, now };
  const values = slots.map((slot) => input[slot]);
  if (prepared) return (await prepared.rows<ValidationRow>(fingerprint === null ? 'keymint_validation' : 'keymint_validation_device', text, values))[0];
  const { rows } = await db.executeQuery<ValidationRow>(CompiledQuery.raw(text, values));
  return rows[0];
}

/**
 * The license behind a key, locked for the rest of the transaction so that
 * concurrent activations on it run one after another (PostgreSQL: a row lock;
 * SQLite: writers are already serialized by the single connection).
 */
export async function lockLicenseByKeyHash(db: Kysely<Database>, dialect: Dialect, keyHash: string): Promise<LicenseRow | undefined> {
  let q = db.selectFrom('licenses').selectAll().where('key_hash', '=', keyHash);
  if (dialect === 'postgres') q = q.forUpdate();
  return q.executeTakeFirst();
}

export async function lockLicenseById(db: Kysely<Database>, dialect: Dialect, scope: Scope, id: string): Promise<LicenseRow | undefined> {
  let q = db.selectFrom('licenses').selectAll().where('id', '=', id).where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  if (dialect === 'postgres') q = q.forUpdate();
  return q.executeTakeFirst();
}

export interface LicenseFilter {
  customer?: string;
  email?: string;
  product?: string;
  status?: 'active' | 'expired' | 'fallback' | 'suspended' | 'revoked';
}

export function listLicenseContexts(db: Kysely<Database>, scope: Scope, filter: LicenseFilter, page: PageParams, now: number) {
  let q = withContext(db, now).where('l.account_id', '=', scope.accountId).where('l.env', '=', scope.env);
  if (filter.customer !== undefined) q = q.where('l.customer_id', '=', filter.customer);
  if (filter.product !== undefined) q = q.where('l.product_id', '=', filter.product);
  if (filter.email !== undefined) {
    const email = filter.email;
    q = q.where('l.customer_id', 'in', (eb) => eb.selectFrom('customers').select('customers.id').where('customers.email', '=', email));
  }
  if (filter.status !== undefined) {
    // The same precedence as licenseStatus(), in SQL.
    const revoked = sql<boolean>`(l.revoked_at is not null and l.revoked_at <= ${now})`;
    const suspended = sql<boolean>`(l.suspended_at is not null and l.suspended_at <= ${now})`;
    const ended = sql<boolean>`(coalesce(l.grace_ends_at, l.expires_at) is not null and coalesce(l.grace_ends_at, l.expires_at) <= ${now})`;
    const condition = {
      revoked,
      suspended: sql<boolean>`(not ${revoked} and ${suspended})`,
      expired: sql<boolean>`(not ${revoked} and not ${suspended} and ${ended} and pr.perpetual_fallback = 0)`,
      fallback: sql<boolean>`(not ${revoked} and not ${suspended} and ${ended} and pr.perpetual_fallback = 1)`,
      active: sql<boolean>`(not ${revoked} and not ${suspended} and not ${ended})`,
    }[filter.status];
    q = q.where(condition);
  }
  return paginate(q, 'l.id', page) as Promise<{ data: LicenseContextRow[]; has_more: boolean }>;
}

/** Inserts a license; false when its fulfilment key already has one. */
export async function insertLicense(db: Kysely<Database>, row: LicenseRow): Promise<boolean> {
  if (row.fulfilment_key === null) {
    await db.insertInto('licenses').values(row).execute();
    return true;
  }
  const result = await db
    .insertInto('licenses')
    .values(row)
    .onConflict((oc) => oc.columns(['account_id', 'env', 'fulfilment_key']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export function findLicenseByFulfilmentKey(db: Kysely<Database>, scope: Scope, fulfilmentKey: string) {
  return db.selectFrom('licenses').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('fulfilment_key', '=', fulfilmentKey).executeTakeFirst();
}

export async function updateLicense(db: Kysely<Database>, id: string, changes: Updateable<LicensesTable>): Promise<void> {
  await db.updateTable('licenses').set(changes).where('id', '=', id).execute();
}

/**
 * Deferred "last validated" bookkeeping, written in batches off the request
 * path, to its own narrow table. Rows are written in id order (two replicas
 * writing overlapping batches on PostgreSQL then lock them in the same
 * order), and a time never moves back (a replica with an older batch).
 */
export async function touchLicensesValidated(db: Kysely<Database>, ids: string[], at: number): Promise<void> {
  if (ids.length === 0) return;
  await db
    .insertInto('license_activity')
    .values([...ids].sort().map((license_id) => ({ license_id, last_validated_at: at })))
    .onConflict((oc) =>
      oc
        .column('license_id')
        .doUpdateSet({ last_validated_at: (eb) => eb.ref('excluded.last_validated_at') })
        .where('license_activity.last_validated_at', '<', (eb) => eb.ref('excluded.last_validated_at')),
    )
    .execute();
}

export function findDeviceByFingerprint(db: Kysely<Database>, licenseId: string, fingerprint: string) {
  return db.selectFrom('devices').selectAll().where('license_id', '=', licenseId).where('fingerprint', '=', fingerprint).executeTakeFirst();
}

export async function countSeatHolders(db: Kysely<Database>, licenseId: string, now: number, exceptDeviceId?: string): Promise<number> {
  let q = db
    .selectFrom('devices')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('license_id', '=', licenseId)
    .where((eb) => holdsSeat(eb, now));
  if (exceptDeviceId !== undefined) q = q.where('id', '!=', exceptDeviceId);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function insertDevice(db: Kysely<Database>, row: DeviceRow): Promise<void> {
  await db.insertInto('devices').values(row).execute();
}

export async function updateDevice(db: Kysely<Database>, id: string, changes: Updateable<DevicesTable>): Promise<void> {
  await db.updateTable('devices').set(changes).where('id', '=', id).execute();
}

export async function deleteDevice(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('devices').where('id', '=', id).execute();
}

export function findDevice(db: Kysely<Database>, scope: Scope, id: string) {
  return db.selectFrom('devices').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
}

export function listDevices(db: Kysely<Database>, scope: Scope, licenseId: string, page: PageParams) {
  const q = db.selectFrom('devices').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('license_id', '=', licenseId);
  return paginate(q, 'id', page);
}

/** The license behind a key hash, with its environment: where a request has no scope of its own, the key gives it. */
export function findLicenseByKeyHash(db: Kysely<Database>, keyHash: string) {
  return db.selectFrom('licenses').select(['id', 'account_id', 'env', 'key_kid']).where('key_hash', '=', keyHash).executeTakeFirst();
}
