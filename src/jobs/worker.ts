import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { FastifyBaseLogger } from 'fastify';
import type { Dialect } from '../db/database.js';
import { claimJobs, finishJob, type JobRow } from '../db/repositories/jobs.js';
import type { Database } from '../db/schema.js';
import type { JobService } from './jobs.js';

/** Thrown by a handler when retrying cannot help (bad payload, object gone): the job dies at once. */
export class PermanentJobError extends Error {}

export interface JobContext {
  job: JobRow;
  /** 1 for the first run. */
  attempt: number;
}

export type JobHandler = (payload: unknown, context: JobContext) => Promise<void>;

export interface WorkerOptions {
  /** Jobs run at the same time by this process. */
  concurrency: number;
  /** How often to look for due jobs when nothing wakes the worker. */
  pollMs: number;
  /** How long a claimed job stays claimed; a worker that dies holding one releases it when this lapses. */
  leaseMs: number;
  /** First retry delay; doubles per attempt up to `backoffMaxMs`, ±50 % jitter. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  concurrency: 4,
  pollMs: 1_000,
  leaseMs: 5 * 60_000,
  backoffBaseMs: 10_000,
  backoffMaxMs: 8 * 3600_000,
};

/** The delay before attempt `attempt + 1`, with jitter so failed jobs do not retry in lockstep. */
export function backoffMs(attempt: number, options: Pick<WorkerOptions, 'backoffBaseMs' | 'backoffMaxMs'>, random = Math.random()): number {
  const exponential = Math.min(options.backoffMaxMs, options.backoffBaseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exponential * (0.5 + random));
}

/**
 * The in-process job worker. It claims due jobs in batches, runs each with
 * its type's handler, and records success, a retry with backoff, or death
 * after `max_attempts`. Execution is at least once: a job whose worker
 * crashed mid-run is claimed again when its lease lapses, so every handler
 * must be idempotent (they key their effects on the job's facts).
 */
export class JobWorker {
  readonly id = `worker_${randomBytes(6).toString('hex')}`;
  private readonly handlers = new Map<string, JobHandler>();
  private readonly inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private polling = false;
  private pollAgain = false;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    jobs: JobService,
    private readonly log: FastifyBaseLogger,
    private readonly options: WorkerOptions = DEFAULT_WORKER_OPTIONS,
  ) {
    jobs.onEnqueue(() => this.wake());
  }

  register(type: string, handler: JobHandler): void {
    this.handlers.set(type, handler);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /** Stops claiming and waits for the jobs in flight to finish. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** Look for work now (a job was just enqueued in this process). */
  wake(): void {
    if (!this.running) return;
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.poll();
  }

  private async poll(): Promise<void> {
    this.polling = true;
    try {
      do {
        this.pollAgain = false;
        const free = this.options.concurrency - this.inFlight.size;
        if (free <= 0 || !this.running) break;
        const jobs = await claimJobs(this.db, this.dialect, this.id, free, Date.now(), this.options.leaseMs);
        for (const job of jobs) this.track(this.run(job));
        if (jobs.length === free) this.pollAgain = true;
      } while (this.pollAgain && this.running);
    } catch (err) {
      this.log.error({ err }, 'job worker could not claim jobs');
    } finally {
      this.polling = false;
      if (this.running) {
        this.timer = setTimeout(() => this.wake(), this.options.pollMs);
        this.timer.unref();
      }
    }
  }

  private track(promise: Promise<void>): void {
    this.inFlight.add(promise);
    void promise.finally(() => {
      this.inFlight.delete(promise);
      this.wake(); // a slot is free
    });
  }

  private async run(job: JobRow): Promise<void> {
    const handler = this.handlers.get(job.type);
    const nowS = () => Math.floor(Date.now() / 1000);
    try {
      if (!handler) throw new PermanentJobError(`no handler for job type ${job.type}`);
      await handler(JSON.parse(job.payload), { job, attempt: job.attempts });
      await finishJob(this.db, job.id, this.id, { state: 'succeeded', run_at_ms: job.run_at_ms, last_error: null, completed_at: nowS(), updated: nowS() });
    } catch (err) {
      const message = (err instanceof Error ? err.message : String(err)).slice(0, 1000);
      const dead = err instanceof PermanentJobError || job.attempts >= job.max_attempts;
      const retryAt = Date.now() + backoffMs(job.attempts, this.options);
      this.log.warn({ job_id: job.id, type: job.type, attempt: job.attempts, dead, err: message }, 'job failed');
      await finishJob(this.db, job.id, this.id, {
        state: dead ? 'dead' : 'pending',
        run_at_ms: dead ? job.run_at_ms : retryAt,
        last_error: message,
        completed_at: dead ? nowS() : null,
        updated: nowS(),
      }).catch((e: unknown) => this.log.error({ err: e, job_id: job.id }, 'could not record a job failure; its lease will lapse and it will run again'));
    }
  }
}
