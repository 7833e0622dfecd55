import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import type { ApiKeysTable, Database, Env } from '../schema.js';

export function firstAccount(db: Kysely<Database>) {
  return db.selectFrom('accounts').selectAll().orderBy('id').limit(1).executeTakeFirst();
}

export async function insertAccount(db: Kysely<Database>, row: { id: string; name: string; created: number }) {
  await db.insertInto('accounts').values(row).execute();
}

/**
 * Serializes account set-up between processes sharing one PostgreSQL database
 * (an advisory lock held until the transaction ends). SQLite serializes
 * writers by itself.
 */
export async function lockAccountSetup(db: Kysely<Database>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(7277001)`.execute(db);
}

export async function insertApiKey(db: Kysely<Database>, row: ApiKeysTable): Promise<void> {
  await db.insertInto('api_keys').values(row).execute();
}

export function findApiKeyByHash(db: Kysely<Database>, keyHash: string) {
  return db
    .selectFrom('api_keys')
    .select(['id', 'account_id', 'env'])
    .where('key_hash', '=', keyHash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst() as Promise<{ id: string; account_id: string; env: Env } | undefined>;
}
