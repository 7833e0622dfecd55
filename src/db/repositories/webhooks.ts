import type { Kysely } from 'kysely';
import type { Database, Scope, WebhookDeliveriesTable, WebhookEndpointsTable } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type WebhookEndpointRow = WebhookEndpointsTable;
export type WebhookDeliveryRow = WebhookDeliveriesTable;

export async function insertEndpoint(db: Kysely<Database>, row: WebhookEndpointRow): Promise<void> {
  await db.insertInto('webhook_endpoints').values(row).execute();
}

export function findEndpoint(db: Kysely<Database>, scope: Scope, id: string) {
  return db.selectFrom('webhook_endpoints').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
}

export function listEndpoints(db: Kysely<Database>, scope: Scope, page: PageParams) {
  return paginate(db.selectFrom('webhook_endpoints').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env), 'id', page);
}

export async function countEndpoints(db: Kysely<Database>, scope: Scope): Promise<number> {
  const row = await db
    .selectFrom('webhook_endpoints')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The fan-out query, run inside every event's transaction: only what matching needs. */
export function enabledEndpoints(db: Kysely<Database>, scope: Scope) {
  return db
    .selectFrom('webhook_endpoints')
    .select(['id', 'enabled_events'])
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('status', '=', 'enabled')
    .execute();
}

export async function updateEndpoint(db: Kysely<Database>, scope: Scope, id: string, changes: Partial<WebhookEndpointRow>): Promise<boolean> {
  const result = await db
    .updateTable('webhook_endpoints')
    .set(changes)
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('id', '=', id)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function deleteEndpoint(db: Kysely<Database>, scope: Scope, id: string): Promise<boolean> {
  const result = await db.deleteFrom('webhook_endpoints').where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** A 2xx ends a run of failures. Written only when there was one, so healthy endpoints cost no write. */
export async function noteEndpointSuccess(db: Kysely<Database>, id: string, now: number): Promise<void> {
  await db
    .updateTable('webhook_endpoints')
    .set({ consecutive_failures: 0, failing_since: null, updated: now })
    .where('id', '=', id)
    .where('consecutive_failures', '>', 0)
    .execute();
}

/** Counts one more failed attempt, atomically; returns the run of failures as it now stands. */
export function noteEndpointFailure(db: Kysely<Database>, id: string, now: number) {
  return db
    .updateTable('webhook_endpoints')
    .set((eb) => ({
      consecutive_failures: eb('consecutive_failures', '+', 1),
      failing_since: eb.fn.coalesce('failing_since', eb.val(now)),
    }))
    .where('id', '=', id)
    .returning(['status', 'consecutive_failures', 'failing_since'])
    .executeTakeFirst();
}

/** Disables an endpoint that is still enabled; only one caller of several racing ones gets `true`. */
export async function disableEnabledEndpoint(db: Kysely<Database>, scope: Scope, id: string, reason: 'manual' | 'failing', now: number): Promise<boolean> {
  const result = await db
    .updateTable('webhook_endpoints')
    .set({ status: 'disabled', disabled_reason: reason, updated: now })
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('id', '=', id)
    .where('status', '=', 'enabled')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

export async function insertDelivery(db: Kysely<Database>, row: WebhookDeliveryRow): Promise<void> {
  await db.insertInto('webhook_deliveries').values(row).execute();
}

export function listDeliveries(db: Kysely<Database>, scope: Scope, filter: { endpoint_id?: string; event_id?: string }, page: PageParams) {
  let q = db.selectFrom('webhook_deliveries').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  if (filter.endpoint_id !== undefined) q = q.where('endpoint_id', '=', filter.endpoint_id);
  if (filter.event_id !== undefined) q = q.where('event_id', '=', filter.event_id);
  return paginate(q, 'id', page);
}

/** Deletes up to `batch` deliveries logged before `cutoff`; returns how many went. */
export async function deleteDeliveriesBefore(db: Kysely<Database>, cutoff: number, batch: number): Promise<number> {
  const result = await db
    .deleteFrom('webhook_deliveries')
    .where('id', 'in', db.selectFrom('webhook_deliveries').select('id').where('created', '<', cutoff).limit(batch))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
