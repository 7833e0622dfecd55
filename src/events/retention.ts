import type { Kysely } from 'kysely';
import { deleteEventsBefore } from '../db/repositories/events.js';
import { deleteDeliveriesBefore } from '../db/repositories/webhooks.js';
import type { Database } from '../db/schema.js';

/** Rows deleted per statement, so a first sweep over a large backlog never holds one long transaction. */
const BATCH = 1000;

async function inBatches(deleteBatch: () => Promise<number>): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await deleteBatch();
    total += deleted;
    if (deleted < BATCH) return total;
  }
}

/**
 * Event retention: events, and the webhook delivery log that refers to them,
 * are deleted once older than `days` (0 keeps everything). The scheduler runs
 * a sweep with every run (jobs/scheduler.ts); a sweep with nothing due costs
 * two indexed deletes. It is idempotent, so two at once only repeat each
 * other's work. A delivery job whose event has gone dies with that reason —
 * with the 90-day default, long after its three days of retries.
 */
export class EventRetention {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
    readonly days: number,
  ) {}

  async sweep(): Promise<{ events: number; deliveries: number }> {
    if (this.days === 0) return { events: 0, deliveries: 0 };
    const cutoff = this.now() - this.days * 86_400;
    return {
      events: await inBatches(() => deleteEventsBefore(this.db, cutoff, BATCH)),
      deliveries: await inBatches(() => deleteDeliveriesBefore(this.db, cutoff, BATCH)),
    };
  }
}
