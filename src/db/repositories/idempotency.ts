import type { Kysely } from 'kysely';
import type { Database, IdempotencyKeysTable, Scope } from '../schema.js';

export function findIdempotencyKey(db: Kysely<Database>, scope: Scope, key: string) {
  return db.selectFrom('idempotency_keys').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('key', '=', key).executeTakeFirst();
}

/** Claims a key; false when another request holds it already. */
export async function claimIdempotencyKey(db: Kysely<Database>, row: IdempotencyKeysTable): Promise<boolean> {
  const result = await db
    .insertInto('idempotency_keys')
    .values(row)
    .onConflict((oc) => oc.columns(['account_id', 'env', 'key']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function completeIdempotencyKey(db: Kysely<Database>, scope: Scope, key: string, statusCode: number, responseSealed: string): Promise<void> {
  await db
    .updateTable('idempotency_keys')
    .set({ status_code: statusCode, response_sealed: responseSealed })
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('key', '=', key)
    .execute();
}

export async function releaseIdempotencyKey(db: Kysely<Database>, scope: Scope, key: string, olderThan?: number): Promise<void> {
  let q = db.deleteFrom('idempotency_keys').where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('key', '=', key);
  if (olderThan !== undefined) q = q.where('created', '<', olderThan);
  await q.execute();
}
