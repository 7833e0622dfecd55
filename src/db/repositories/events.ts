import type { Kysely } from 'kysely';
import type { Database, EventsTable, Scope } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export async function insertEvent(db: Kysely<Database>, row: EventsTable): Promise<void> {
  await db.insertInto('events').values(row).execute();
}

export function listEvents(db: Kysely<Database>, scope: Scope, filter: { type?: string; object_id?: string }, page: PageParams) {
  let q = db.selectFrom('events').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  if (filter.type !== undefined) {
    // `license.*` selects every license event.
    q = filter.type.endsWith('.*') ? q.where('type', 'like', `${filter.type.slice(0, -1)}%`) : q.where('type', '=', filter.type);
  }
  if (filter.object_id !== undefined) q = q.where('object_id', '=', filter.object_id);
  return paginate(q, 'id', page);
}

/** Deletes up to `batch` events recorded before `cutoff` (retention); returns how many went. */
export async function deleteEventsBefore(db: Kysely<Database>, cutoff: number, batch: number): Promise<number> {
  const result = await db
    .deleteFrom('events')
    .where('id', 'in', db.selectFrom('events').select('id').where('created', '<', cutoff).limit(batch))
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}

export function findEvent(db: Kysely<Database>, scope: Scope, id: string) {
  return db.selectFrom('events').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
}
