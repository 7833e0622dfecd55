import type { Kysely, Updateable } from 'kysely';
import type { Database, PriceMappingsTable, Scope, StripeConnectionsTable, StripeEventStatus, StripeEventsTable } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type ConnectionRow = StripeConnectionsTable;
export type PriceMappingRow = PriceMappingsTable;
export type StripeEventRow = StripeEventsTable;

const scoped = <T extends { where: (...args: any[]) => T }>(q: T, scope: Scope) => q.where('account_id', '=', scope.accountId).where('env', '=', scope.env);

export function findConnection(db: Kysely<Database>, scope: Scope) {
  return scoped(db.selectFrom('stripe_connections').selectAll(), scope).executeTakeFirst();
}

export function findConnectionById(db: Kysely<Database>, id: string) {
  return db.selectFrom('stripe_connections').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function upsertConnection(db: Kysely<Database>, row: ConnectionRow): Promise<void> {
  await db
    .insertInto('stripe_connections')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['account_id', 'env']).doUpdateSet({
        stripe_account: row.stripe_account,
        secret_key_sealed: row.secret_key_sealed,
        key_hint: row.key_hint,
        webhook_endpoint_id: row.webhook_endpoint_id,
        webhook_secret_sealed: row.webhook_secret_sealed,
        cli_webhook_secret_sealed: row.cli_webhook_secret_sealed,
        api_version: row.api_version,
        updated: row.updated,
      }),
    )
    .execute();
}

export async function deleteConnection(db: Kysely<Database>, scope: Scope): Promise<void> {
  await scoped(db.deleteFrom('stripe_connections'), scope).execute();
}

export async function insertPriceMapping(db: Kysely<Database>, row: PriceMappingRow): Promise<void> {
  await db.insertInto('price_mappings').values(row).execute();
}

export function findPriceMapping(db: Kysely<Database>, scope: Scope, price: string) {
  return scoped(db.selectFrom('price_mappings').selectAll(), scope).where('price', '=', price).executeTakeFirst();
}

export function findPriceMappingById(db: Kysely<Database>, scope: Scope, id: string) {
  return scoped(db.selectFrom('price_mappings').selectAll(), scope).where('id', '=', id).executeTakeFirst();
}

export function listPriceMappings(db: Kysely<Database>, scope: Scope, page: PageParams) {
  return paginate(scoped(db.selectFrom('price_mappings').selectAll(), scope), 'id', page);
}

export async function deletePriceMapping(db: Kysely<Database>, scope: Scope, id: string): Promise<void> {
  await scoped(db.deleteFrom('price_mappings'), scope).where('id', '=', id).execute();
}

/** Stores an event once: false when this Stripe event id is already in the inbox. */
export async function insertStripeEvent(db: Kysely<Database>, row: StripeEventRow): Promise<boolean> {
  const result = await db
    .insertInto('stripe_events')
    .values(row)
    .onConflict((oc) => oc.columns(['account_id', 'env', 'stripe_event_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export function findStripeEventRow(db: Kysely<Database>, id: string) {
  return db.selectFrom('stripe_events').selectAll().where('id', '=', id).executeTakeFirst();
}

/** By Stripe's event id (`evt_…`) or our own row id. */
export function findStripeEvent(db: Kysely<Database>, scope: Scope, id: string) {
  return scoped(db.selectFrom('stripe_events').selectAll(), scope)
    .where((eb) => eb.or([eb('stripe_event_id', '=', id), eb('id', '=', id)]))
    .executeTakeFirst();
}

export async function updateStripeEvent(db: Kysely<Database>, id: string, changes: Updateable<StripeEventsTable>): Promise<void> {
  await db.updateTable('stripe_events').set(changes).where('id', '=', id).execute();
}

export function listStripeEvents(db: Kysely<Database>, scope: Scope, filter: { status?: StripeEventStatus; type?: string }, page: PageParams) {
  let q = scoped(db.selectFrom('stripe_events').selectAll(), scope);
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  if (filter.type !== undefined) q = q.where('type', '=', filter.type);
  return paginate(q, 'id', page);
}

export async function recordPayment(db: Kysely<Database>, scope: Scope, paymentIntent: string, licenseId: string): Promise<void> {
  await db
    .insertInto('stripe_payments')
    .values({ account_id: scope.accountId, env: scope.env, payment_intent: paymentIntent, license_id: licenseId })
    .onConflict((oc) => oc.doNothing())
    .execute();
}

export async function licenseIdsForPayment(db: Kysely<Database>, scope: Scope, paymentIntent: string): Promise<string[]> {
  const rows = await scoped(db.selectFrom('stripe_payments').select('license_id'), scope).where('payment_intent', '=', paymentIntent).execute();
  return rows.map((r) => r.license_id);
}

export function licensesOfSubscription(db: Kysely<Database>, scope: Scope, subscription: string) {
  return scoped(db.selectFrom('licenses').selectAll(), scope).where('stripe_subscription', '=', subscription).orderBy('fulfilment_key').execute();
}

export function findCustomerByStripeId(db: Kysely<Database>, scope: Scope, stripeCustomer: string) {
  return scoped(db.selectFrom('customers').selectAll(), scope).where('stripe_customer_id', '=', stripeCustomer).executeTakeFirst();
}

export async function linkStripeCustomer(db: Kysely<Database>, id: string, stripeCustomer: string): Promise<void> {
  await db.updateTable('customers').set({ stripe_customer_id: stripeCustomer }).where('id', '=', id).where('stripe_customer_id', 'is', null).execute();
}
