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

export async function retireSigningKeys(db: Kysely<Database>, scope: Scope): Promise<void> {
  await db.updateTable('signing_keys').set({ status: 'retired' }).where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('status', '=', 'active').execute();
}

export async function deleteSigningKey(db: Kysely<Database>, id: string): Promise<void> {
  await db.deleteFrom('signing_keys').where('id', '=', id).execute();
}

/** Licenses (not revoked) whose key this signing key signed. */
export async function countLicensesSignedBy(db: Kysely<Database>, kid: string): Promise<number> {
  const row = await db
    .selectFrom('licenses')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('key_kid', '=', kid)
    .where('revoked_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
