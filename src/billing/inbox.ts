import type { Kysely } from 'kysely';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import {
  findStripeEvent,
  findStripeEventRow,
  insertStripeEvent,
  listStripeEvents,
  updateStripeEvent,
  type StripeEventRow,
} from '../db/repositories/stripe.js';
import type { Database, Scope, StripeEventStatus } from '../db/schema.js';
import { DomainError, conflict, notFound } from '../errors.js';
import type { EventLog } from '../events/event-log.js';
import { newId } from '../ids.js';
import type { JobService } from '../jobs/jobs.js';
import type { JobContext } from '../jobs/worker.js';
import { PermanentJobError } from '../jobs/worker.js';
import type { StripeConnectionService } from './connection.js';
import type { Fulfilment, Outcome } from './fulfilment.js';
import { EVENT_HANDLERS } from './handlers/index.js';
import { verifyWebhook, type Stripe } from './stripe-client.js';

export const PROCESS_EVENT_JOB = 'stripe.process_event';

export function stripeEventView(row: StripeEventRow) {
  return {
    id: row.stripe_event_id,
    object: 'stripe_event' as const,
    type: row.type,
    livemode: row.livemode === 1,
    created: row.stripe_created,
    received: row.received,
    status: row.status,
    outcome: row.outcome === null ? null : (JSON.parse(row.outcome) as Outcome),
    error: row.error,
    attempts: row.attempts,
    processed_at: row.processed_at,
  };
}
export type StripeEventView = ReturnType<typeof stripeEventView>;

const badWebhook = (code: string, message: string) => new DomainError('invalid_request', code, message);

/**
 * The Stripe inbox. Receiving verifies, stores and enqueues in one
 * transaction and answers at once; processing is a job, retried with
 * backoff, so a failure (Stripe down, a bug) never loses an event.
 */
export class StripeInbox {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly connections: StripeConnectionService,
    private readonly jobs: JobService,
    private readonly events: EventLog,
    private readonly fulfilment: Fulfilment,
    private readonly now: () => number,
  ) {}

  /**
   * A webhook delivery. Refused with nothing stored: an unknown endpoint, a
   * bad or stale signature, a mode that is not the connection's. Accepted
   * once per event id: a duplicate delivery is acknowledged and dropped.
   */
  async receive(connectionId: string, rawBody: Buffer, signature: string | undefined): Promise<{ received: true; duplicate: boolean }> {
    const connection = await this.connections.forWebhook(connectionId);
    if (!connection) throw new DomainError('not_found', 'webhook_endpoint_unknown', 'no Stripe connection has this webhook URL');
    if (!signature) throw badWebhook('signature_missing', 'missing Stripe-Signature header');
    let event: Stripe.Event | null = null;
    let failure = '';
    // The registered endpoint's secret, then (test mode) the Stripe CLI's.
    for (const secret of connection.secrets) {
      try {
        event = verifyWebhook(rawBody, signature, secret);
        break;
      } catch (err) {
        failure ||= (err as Error).message;
      }
    }
    if (!event) throw badWebhook('signature_invalid', `webhook signature verification failed: ${failure}`.slice(0, 300));
    const scope: Scope = { accountId: connection.row.account_id, env: connection.row.env };
    if (event.livemode !== (scope.env === 'live')) {
      throw badWebhook('livemode_mismatch', `a ${event.livemode ? 'live' : 'test'}-mode event cannot arrive at the ${scope.env}-mode connection`);
    }
    const handled = Object.hasOwn(EVENT_HANDLERS, event.type);
    const now = this.now();
    const row: StripeEventRow = {
      id: newId('stripeEvent'),
      account_id: scope.accountId,
      env: scope.env,
      stripe_event_id: event.id,
      type: event.type,
      livemode: event.livemode ? 1 : 0,
      api_version: event.api_version ?? null,
      stripe_created: event.created,
      payload: rawBody.toString('utf8'),
      status: handled ? 'pending' : 'ignored',
      outcome: handled ? null : JSON.stringify({ action: 'ignored', reason: `Keymint does not handle ${event.type} events`, licenses: [] } satisfies Outcome),
      error: null,
      attempts: 0,
      received: now,
      processed_at: handled ? null : now,
    };
    const inserted = await this.db.transaction().execute(async (trx) => {
      if (!(await insertStripeEvent(trx, row))) return false;
      if (handled) await this.jobs.enqueue(trx, scope, PROCESS_EVENT_JOB, { event: row.id }, { dedupeKey: `stripe_event:${row.id}` });
      return true;
    });
    return { received: true, duplicate: !inserted };
  }

  /** The job: run the event's handler; record the outcome with the changes, or the failure for the next attempt. */
  async process(payload: unknown, context: JobContext): Promise<void> {
    const eventRowId = (payload as { event?: unknown }).event;
    if (typeof eventRowId !== 'string') throw new PermanentJobError('payload has no event id');
    const row = await findStripeEventRow(this.db, eventRowId);
    if (!row) throw new PermanentJobError(`stripe event ${eventRowId} is gone`);
    if (row.status === 'processed' || row.status === 'ignored') return; // done by an earlier run
    const scope: Scope = { accountId: row.account_id, env: row.env };
    const handler = EVENT_HANDLERS[row.type as keyof typeof EVENT_HANDLERS];
    const stripe = await this.connections.clientFor(scope);
    if (!handler || !stripe) {
      await this.finish(this.db, row, context.attempt, { action: 'ignored', reason: stripe ? `no handler for ${row.type}` : 'Stripe is no longer connected', licenses: [] });
      return;
    }
    let recorded = false;
    try {
      const outcome = await handler({
        scope,
        stripe,
        event: JSON.parse(row.payload) as Stripe.Event,
        fulfilment: this.fulfilment,
        apply: (fn) =>
          this.db.transaction().execute(async (trx) => {
            const result = await fn(trx);
            await this.finish(trx, row, context.attempt, result);
            recorded = true;
            return result;
          }),
      });
      if (!recorded) await this.finish(this.db, row, context.attempt, outcome);
    } catch (err) {
      // A rejected key will not heal by itself: stop retrying, tell the vendor, and let them retry after reconnecting.
      const type = (err as { type?: string }).type;
      const keyRejected = type === 'StripeAuthenticationError' || type === 'StripePermissionError';
      const message = (keyRejected ? `Stripe rejected the connected key (reconnect, then retry this event): ${(err as Error).message}` : err instanceof Error ? err.message : String(err)).slice(0, 1000);
      const lastAttempt = keyRejected || err instanceof PermanentJobError || context.attempt >= context.job.max_attempts;
      await this.db.transaction().execute(async (trx) => {
        await updateStripeEvent(trx, row.id, { status: 'failed', error: message, attempts: context.attempt });
        if (lastAttempt) {
          const failed = await findStripeEventRow(trx, row.id);
          if (failed) await this.events.record(trx, scope, 'stripe.event_failed', { ...stripeEventView(failed), id: failed.stripe_event_id });
        }
      });
      throw keyRejected ? new PermanentJobError(message) : err;
    }
  }

  async list(scope: Scope, filter: { status?: StripeEventStatus; type?: string }, page: PageParams) {
    const result = await listStripeEvents(this.db, scope, filter, page);
    return mapPage(result, stripeEventView);
  }

  async get(scope: Scope, id: string): Promise<StripeEventView> {
    const row = await findStripeEvent(this.db, scope, id);
    if (!row) throw notFound('stripe event', id, 'id');
    return stripeEventView(row);
  }

  /** Runs an event's processing again (after fixing a mapping, say); handlers are idempotent, so this is always safe. */
  async retry(scope: Scope, id: string): Promise<StripeEventView> {
    const row = await findStripeEvent(this.db, scope, id);
    if (!row) throw notFound('stripe event', id, 'id');
    if (!Object.hasOwn(EVENT_HANDLERS, row.type)) throw conflict('event_not_handled', `Keymint does not handle ${row.type} events`);
    await this.db.transaction().execute(async (trx) => {
      await updateStripeEvent(trx, row.id, { status: 'pending', error: null });
      await this.jobs.enqueue(trx, scope, PROCESS_EVENT_JOB, { event: row.id }, { dedupeKey: `stripe_event:${row.id}:retry:${Date.now()}` });
    });
    return this.get(scope, id);
  }

  private async finish(db: Kysely<Database>, row: StripeEventRow, attempt: number, outcome: Outcome): Promise<void> {
    await updateStripeEvent(db, row.id, {
      status: outcome.action === 'ignored' ? 'ignored' : 'processed',
      outcome: JSON.stringify(outcome),
      error: null,
      attempts: attempt,
      processed_at: this.now(),
    });
  }
}
