import type { Kysely, Updateable } from 'kysely';
import type { CustomersTable, Database, Scope } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type CustomerRow = CustomersTable;

/** Inserts unless a customer with this email exists; concurrent callers both end up with the one row. */
export async function insertCustomerIfAbsent(db: Kysely<Database>, row: CustomerRow): Promise<boolean> {
  const result = await db
    .insertInto('customers')
    .values(row)
    .onConflict((oc) => oc.columns(['account_id', 'env', 'email']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export function findCustomerByEmail(db: Kysely<Database>, scope: Scope, email: string) {
  return db.selectFrom('customers').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('email', '=', email).executeTakeFirst();
}

export function findCustomer(db: Kysely<Database>, scope: Scope, id: string) {
  return db.selectFrom('customers').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
}

export async function updateCustomer(db: Kysely<Database>, scope: Scope, id: string, changes: Updateable<CustomersTable>): Promise<void> {
  await db.updateTable('customers').set(changes).where('id', '=', id).where('account_id', '=', scope.accountId).where('env', '=', scope.env).execute();
}

export function listCustomers(db: Kysely<Database>, scope: Scope, filter: { email?: string }, page: PageParams) {
  let q = db.selectFrom('customers').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  if (filter.email !== undefined) q = q.where('email', '=', filter.email);
  return paginate(q, 'id', page);
}
