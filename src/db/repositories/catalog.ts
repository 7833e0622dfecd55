import type { Kysely, Updateable } from 'kysely';
import type { Database, PoliciesTable, ProductsTable, Scope } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type ProductRow = ProductsTable;
export type PolicyRow = PoliciesTable;

export async function insertProduct(db: Kysely<Database>, row: ProductRow): Promise<void> {
  await db.insertInto('products').values(row).execute();
}

export async function updateProduct(db: Kysely<Database>, scope: Scope, id: string, changes: Updateable<ProductsTable>): Promise<void> {
  await db.updateTable('products').set(changes).where('id', '=', id).where('account_id', '=', scope.accountId).where('env', '=', scope.env).execute();
}

/** A product by id or by its vendor-chosen code. */
export function findProduct(db: Kysely<Database>, scope: Scope, idOrCode: string) {
  return db
    .selectFrom('products')
    .selectAll()
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where((eb) => eb.or([eb('id', '=', idOrCode), eb('code', '=', idOrCode)]))
    .executeTakeFirst();
}

export function listProducts(db: Kysely<Database>, scope: Scope, page: PageParams) {
  const q = db.selectFrom('products').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  return paginate(q, 'id', page);
}

export async function insertPolicy(db: Kysely<Database>, row: PolicyRow): Promise<void> {
  await db.insertInto('policies').values(row).execute();
}

export async function updatePolicy(db: Kysely<Database>, scope: Scope, id: string, changes: Updateable<PoliciesTable>): Promise<void> {
  await db.updateTable('policies').set(changes).where('id', '=', id).where('account_id', '=', scope.accountId).where('env', '=', scope.env).execute();
}

export function findPolicy(db: Kysely<Database>, scope: Scope, id: string) {
  return db
    .selectFrom('policies')
    .selectAll()
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('id', '=', id)
    .executeTakeFirst();
}

export function listPolicies(db: Kysely<Database>, scope: Scope, filter: { product?: string }, page: PageParams) {
  let q = db.selectFrom('policies').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  if (filter.product !== undefined) q = q.where('product_id', '=', filter.product);
  return paginate(q, 'id', page);
}
