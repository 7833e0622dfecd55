import type { Kysely } from 'kysely';
import type { Dialect } from '../database.js';
import type { Database, JobState, JobsTable, Scope } from '../schema.js';
import { paginate, type PageParams } from './pagination.js';

export type JobRow = JobsTable;

/** Inserts a job unless one with the same dedupe key exists; returns whether it was inserted. */
export async function insertJob(db: Kysely<Database>, row: JobRow): Promise<boolean> {
  const result = await db
    .insertInto('jobs')
    .values(row)
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

/**
 * Claims up to `limit` jobs that are due, or whose worker's lease lapsed (it
 * crashed or hung), in one statement. On PostgreSQL `FOR UPDATE SKIP LOCKED`
 * lets any number of replicas claim side by side without ever taking the same
 * job; on SQLite the single writer serializes claims.
 */
export async function claimJobs(db: Kysely<Database>, dialect: Dialect, workerId: string, limit: number, nowMs: number, leaseMs: number): Promise<JobRow[]> {
  let due = db
    .selectFrom('jobs')
    .select('id')
    .where((eb) =>
      eb.or([
        eb.and([eb('state', '=', 'pending'), eb('run_at_ms', '<=', nowMs)]),
        eb.and([eb('state', '=', 'running'), eb('locked_until_ms', '<', nowMs)]),
      ]),
    )
    .orderBy('run_at_ms')
    .limit(limit);
  if (dialect === 'postgres') due = due.forUpdate().skipLocked();
  return db
    .updateTable('jobs')
    .set((eb) => ({
      state: 'running' as JobState,
      attempts: eb('attempts', '+', 1),
      locked_by: workerId,
      locked_until_ms: nowMs + leaseMs,
      updated: Math.floor(nowMs / 1000),
    }))
    .where('id', 'in', due)
    .returningAll()
    .execute();
}

/** Records a job's outcome, but only if this worker still holds it. */
export async function finishJob(
  db: Kysely<Database>,
  id: string,
  workerId: string,
  changes: Pick<JobRow, 'state' | 'run_at_ms' | 'last_error' | 'completed_at' | 'updated'>,
): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ ...changes, locked_by: null, locked_until_ms: null })
    .where('id', '=', id)
    .where('locked_by', '=', workerId)
    .execute();
}

export function findJob(db: Kysely<Database>, scope: Scope, id: string) {
  return db.selectFrom('jobs').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env).where('id', '=', id).executeTakeFirst();
}

export function listJobs(db: Kysely<Database>, scope: Scope, filter: { state?: JobState; type?: string }, page: PageParams) {
  let q = db.selectFrom('jobs').selectAll().where('account_id', '=', scope.accountId).where('env', '=', scope.env);
  if (filter.state !== undefined) q = q.where('state', '=', filter.state);
  if (filter.type !== undefined) q = q.where('type', '=', filter.type);
  return paginate(q, 'id', page);
}

/** Makes a job due now with a fresh set of attempts; a running job is left alone. */
export async function requeueJob(db: Kysely<Database>, scope: Scope, id: string, nowMs: number): Promise<boolean> {
  const result = await db
    .updateTable('jobs')
    .set({ state: 'pending', attempts: 0, run_at_ms: nowMs, last_error: null, completed_at: null, updated: Math.floor(nowMs / 1000) })
    .where('account_id', '=', scope.accountId)
    .where('env', '=', scope.env)
    .where('id', '=', id)
    .where('state', '!=', 'running')
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
