import type { Kysely } from 'kysely';
import type { Database, Scope, SigningKeysTable } from '../schema.js';

export type SigningKeyRow = SigningKeysTable;

export function listSigningKeys(db: Kysely<Database>, scope: Scope): Promise<SigningKeyRow[]> {
  return db
    .selectFrom('signing_keys')
    .selectAll()
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .orderBy('id', 'desc')
    .execute();
}

export function findSigningKey(db: Kysely<Database>, id: string): Promise<SigningKeyRow | undefined> {
  return db.selectFrom('signing_keys').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findActiveSigningKey(db: Kysely<Database>, scope: Scope): Promise<SigningKeyRow | undefined> {
  return db
    .selectFrom('signing_keys')
    .selectAll()
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('status', '=', 'active')
    .orderBy('id', 'desc')
    .executeTakeFirst();
}

export async function insertSigningKey(db: Kysely<Database>, row: SigningKeyRow): Promise<void> {
  await db.insertInto('signing_keys').values(row).execute();
}
