import { sql, type Kysely, type Updateable } from 'kysely';
import type { Database, EmailKind, EmailStatus, EmailsTable, Scope } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type EmailRow = EmailsTable;

export interface EmailFilter {
  license?: string;
  to?: string;
  kind?: EmailKind;
  status?: EmailStatus;
}

export async function insertEmail(db: Kysely<Database>, row: EmailRow): Promise<void> {
  await db.insertInto('emails').values(row).execute();
}

/** By id alone: the job worker acts for every account. */
export function findEmailById(db: Kysely<Database>, id: string) {
  return db.selectFrom('emails').selectAll().where('id', '=', id).executeTakeFirst();
}

export function findEmail(db: Kysely<Database>, scope: Scope, id: string) {
  return db.selectFrom('emails').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
}

export async function updateEmail(db: Kysely<Database>, id: string, changes: Updateable<EmailsTable>): Promise<void> {
  await db.updateTable('emails').set(changes).where('id', '=', id).execute();
}

/** `%`, `_` and `\` match themselves in a LIKE pattern with `ESCAPE '\'`. */
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function listEmails(db: Kysely<Database>, scope: Scope, filter: EmailFilter, page: PageParams) {
  let q = db.selectFrom('emails').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  // license_ids is a JSON array of ids; the quotes make the match exact.
  if (filter.license !== undefined) q = q.where(sql<boolean>`license_ids like ${`%${likeLiteral(JSON.stringify(filter.license))}%`} escape '\\'`);
  if (filter.to !== undefined) q = q.where('recipient', '=', filter.to);
  if (filter.kind !== undefined) q = q.where('kind', '=', filter.kind);
  if (filter.status !== undefined) q = q.where('status', '=', filter.status);
  return paginate(q, 'id', page);
}
