import type { Kysely } from 'kysely';
import { findJob, insertJob, listJobs, requeueJob, type JobRow } from '../db/repositories/jobs.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import type { Database, JobState, Scope } from '../db/schema.js';
import { conflict, notFound } from '../errors.js';
import { newId } from '../ids.js';

export interface EnqueueOptions {
  /** At most one job ever exists per dedupe key: enqueuing a known fact twice is a no-op. */
  dedupeKey?: string;
  /** When to run first (ms since the epoch); default now. */
  runAtMs?: number;
  maxAttempts?: number;
}

/** Default attempts before a job is declared dead. With the default backoff that is about three days. */
export const DEFAULT_MAX_ATTEMPTS = 20;

export function jobView(row: JobRow) {
  return {
    id: row.id,
    object: 'job' as const,
    type: row.type,
    state: row.state,
    attempts: row.attempts,
    max_attempts: row.max_attempts,
    next_run_at: row.state === 'pending' ? Math.floor(row.run_at_ms / 1000) : null,
    last_error: row.last_error,
    livemode: row.env === 'live',
    created: row.created,
    updated: row.updated,
    completed_at: row.completed_at,
  };
}
export type JobView = ReturnType<typeof jobView>;

/**
 * The outbox. A job is enqueued in the same transaction as the change that
 * causes it, so the change and the promise to act on it commit together or
 * not at all; the worker (worker.ts) carries it out after the commit.
 */
export class JobService {
  private listeners: Array<() => void> = [];

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
  ) {}

  async enqueue(trx: Kysely<Database>, scope: Scope | null, type: string, payload: unknown, options: EnqueueOptions = {}): Promise<boolean> {
    const nowS = this.now();
    const inserted = await insertJob(trx, {
      id: newId('job'),
      account_id: scope?.accountId ?? null,
      env: scope?.env ?? null,
      type,
      payload: JSON.stringify(payload),
      dedupe_key: options.dedupeKey ?? null,
      state: 'pending',
      attempts: 0,
      max_attempts: options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      run_at_ms: options.runAtMs ?? Date.now(),
      locked_by: null,
      locked_until_ms: null,
      last_error: null,
      created: nowS,
      updated: nowS,
      completed_at: null,
    });
    // Wake the local worker once the caller's transaction has had a chance to commit;
    // if it rolled back, the worker simply finds nothing.
    if (inserted) setImmediate(() => this.listeners.forEach((l) => l()));
    return inserted;
  }

  /** Called by the worker: run `listener` whenever a job is enqueued in this process. */
  onEnqueue(listener: () => void): void {
    this.listeners.push(listener);
  }

  async list(scope: Scope, filter: { state?: JobState; type?: string }, page: PageParams) {
    const result = await listJobs(this.db, scope, filter, page);
    return mapPage(result, jobView);
  }

  async get(scope: Scope, id: string): Promise<JobView> {
    const row = await findJob(this.db, scope, id);
    if (!row) throw notFound('job', id, 'id');
    return jobView(row);
  }

  async retry(scope: Scope, id: string): Promise<JobView> {
    const row = await findJob(this.db, scope, id);
    if (!row) throw notFound('job', id, 'id');
    if (!(await requeueJob(this.db, scope, id, Date.now()))) throw conflict('job_running', 'this job is running right now; retry it once it has finished');
    this.listeners.forEach((l) => l());
    return this.get(scope, id);
  }
}
