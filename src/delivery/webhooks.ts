import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SecretBox } from '../crypto/secret-box.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import {
  countEndpoints,
  deleteEndpoint,
  disableEnabledEndpoint,
  enabledEndpoints,
  findEndpoint,
  insertDelivery,
  insertEndpoint,
  listDeliveries,
  listEndpoints,
  noteEndpointFailure,
  noteEndpointSuccess,
  updateEndpoint,
  type WebhookDeliveryRow,
  type WebhookEndpointRow,
} from '../db/repositories/webhooks.js';
import type { Database, Scope } from '../db/schema.js';
import { DomainError, conflict, invalidRequest, notFound } from '../errors.js';
import type { EventLog, EventView } from '../events/event-log.js';
import { newId } from '../ids.js';
import type { JobService } from '../jobs/jobs.js';
import { PermanentJobError, type JobContext } from '../jobs/worker.js';
import { SIGNATURE_HEADER, signatureHeader } from './webhook-signature.js';

/**
 * The events a vendor can subscribe an endpoint to (`*` means all of them).
 * Other entries of the event log (`product.*`, `policy.*`, `customer.updated`,
 * `webhook_endpoint.disabled`) are recorded but never sent.
 */
export const WEBHOOK_EVENT_TYPES = [
  'license.created',
  'license.updated',
  'license.suspended',
  'license.reinstated',
  'license.revoked',
  'license.renewed',
  'license.expired',
  'license.expiring_soon',
  'device.activated',
  'device.deactivated',
  'customer.created',
  'stripe.event_failed',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];
const SENDABLE = new Set<string>(WEBHOOK_EVENT_TYPES);

export const WEBHOOK_JOB = 'webhook.deliver';
/** Keymint's own prefix: a Keymint secret is never mistaken for a Stripe `whsec_`. */
export const WEBHOOK_SECRET_PREFIX = 'kmwhsec_';
/** As Stripe: a bounded fan-out per event. */
export const MAX_ENDPOINTS_PER_ENVIRONMENT = 16;
/**
 * Attempts per event and endpoint. With the worker's backoff (10 s doubling
 * to 8 h, ±50 % jitter) the 19 retries span about three days (docs/webhooks.md
 * has the schedule); then the job is dead and can be resent by hand.
 */
export const WEBHOOK_MAX_ATTEMPTS = 20;
/**
 * An endpoint is disabled automatically when it has failed at least this many
 * attempts in a row *and* not one attempt has succeeded for this long: a busy
 * endpoint that is down for three days, or a quiet one whose events have
 * exhausted their retries for three days. Either alone would misfire: a burst
 * of events to an endpoint down for an hour, or two failures days apart.
 */
export const DISABLE_AFTER_FAILURES = 20;
export const DISABLE_AFTER_SECONDS = 3 * 86_400;
/** How much of a receiver's answer the delivery log keeps. */
export const RESPONSE_SNIPPET_BYTES = 1024;
/** The longest a rolled secret can stay valid next to its successor. */
export const MAX_SECRET_GRACE_SECONDS = 7 * 86_400;

export interface WebhookOptions {
  /** Per attempt: connecting, sending and receiving the answer. */
  timeoutMs: number;
}

export interface WebhookEndpointInput {
  url: string;
  enabled_events: string[];
  description?: string | null;
  metadata?: Record<string, string>;
}

export interface WebhookEndpointUpdate extends Partial<WebhookEndpointInput> {
  disabled?: boolean;
}

interface DeliveryPayload {
  event: string;
  webhook_endpoint: string;
  manual?: boolean;
}

export function webhookEndpointView(row: WebhookEndpointRow) {
  return {
    id: row.id,
    object: 'webhook_endpoint' as const,
    url: row.url,
    description: row.description,
    enabled_events: JSON.parse(row.enabled_events) as string[],
    status: row.status,
    disabled_reason: row.disabled_reason,
    failing_since: row.failing_since,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    livemode: row.env === 'live',
    created: row.created,
    updated: row.updated,
  };
}
export type WebhookEndpointView = ReturnType<typeof webhookEndpointView>;

export function webhookDeliveryView(row: WebhookDeliveryRow) {
  return {
    id: row.id,
    object: 'webhook_delivery' as const,
    webhook_endpoint: row.endpoint_id,
    event: row.event_id,
    event_type: row.event_type,
    url: row.url,
    attempt: row.attempt,
    manual: row.manual === 1,
    status_code: row.status_code,
    succeeded: row.succeeded === 1,
    duration_ms: row.duration_ms,
    error: row.error,
    response_body: row.response_body,
    livemode: row.env === 'live',
    created: row.created,
  };
}
export type WebhookDeliveryView = ReturnType<typeof webhookDeliveryView>;

const matches = (enabledEvents: string[], type: string) => enabledEvents.includes('*') || enabledEvents.includes(type);

/** http or https, absolute, no credentials (fetch refuses them) and no fragment (never sent). */
function checkedUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalidRequest('parameter_invalid', 'url must be an absolute http or https URL', 'url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalidRequest('parameter_invalid', 'url must use http or https', 'url');
  if (url.username !== '' || url.password !== '') throw invalidRequest('parameter_invalid', 'url must not contain a user name or password', 'url');
  if (raw.includes('#')) throw invalidRequest('parameter_invalid', 'url must not contain a fragment', 'url');
  return raw;
}

function checkedEvents(events: string[]): string[] {
  if (events.includes('*') && events.length > 1) {
    throw invalidRequest('parameter_invalid', '`*` already selects every event; send it alone', 'enabled_events');
  }
  return events;
}

function describeFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `timed out after ${timeoutMs} ms`;
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  const detail = cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
  return `could not connect: ${detail}`.slice(0, 500);
}

/** The first bytes of the receiver's answer; the rest is not read. */
async function snippetOf(response: Response): Promise<string | null> {
  if (!response.body) return null;
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < RESPONSE_SNIPPET_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // A body cut short (or timed out) after a status arrived: keep what came.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).subarray(0, RESPONSE_SNIPPET_BYTES).toString('utf8');
  return text === '' ? null : text;
}

/**
 * Vendor webhooks: endpoints, the fan-out of events to them (inside the
 * event's own transaction, through the job outbox), signed delivery, the
 * delivery log, manual resends and the automatic disabling of an endpoint
 * that has been failing for days.
 */
export class WebhookService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly jobs: JobService,
    private readonly events: EventLog,
    private readonly now: () => number,
    private readonly options: WebhookOptions,
  ) {}

  // ── endpoints ──

  async create(scope: Scope, input: WebhookEndpointInput): Promise<WebhookEndpointView & { secret: string }> {
    const url = checkedUrl(input.url);
    const enabledEvents = checkedEvents(input.enabled_events);
    if ((await countEndpoints(this.db, scope)) >= MAX_ENDPOINTS_PER_ENVIRONMENT) {
      throw invalidRequest('webhook_endpoint_limit', `an environment can have at most ${MAX_ENDPOINTS_PER_ENVIRONMENT} webhook endpoints; delete one first`);
    }
    const id = newId('webhookEndpoint');
    const secret = newSecret();
    const now = this.now();
    const row: WebhookEndpointRow = {
      id,
      account_id: scope.accountId,
      env: scope.env,
      url,
      description: input.description ?? null,
      enabled_events: JSON.stringify(enabledEvents),
      status: 'enabled',
      disabled_reason: null,
      secret_sealed: this.box.seal(secret, sealContext(id)),
      previous_secret_sealed: null,
      previous_secret_expires_at: null,
      consecutive_failures: 0,
      failing_since: null,
      metadata: JSON.stringify(input.metadata ?? {}),
      created: now,
      updated: now,
    };
    await insertEndpoint(this.db, row);
    return { ...webhookEndpointView(row), secret };
  }

  async list(scope: Scope, page: PageParams) {
    const result = await listEndpoints(this.db, scope, page);
    return mapPage(result, webhookEndpointView);
  }

  async get(scope: Scope, id: string): Promise<WebhookEndpointView> {
    return webhookEndpointView(await this.row(this.db, scope, id));
  }

  /**
   * Changes an endpoint. `disabled: true` stops deliveries (retries of events
   * already queued stop too, as with Stripe) and is written to the event log;
   * `disabled: false` re-enables it with a clean failure record.
   */
  async update(scope: Scope, id: string, input: WebhookEndpointUpdate): Promise<WebhookEndpointView> {
    const changes: Partial<WebhookEndpointRow> = {};
    if (input.url !== undefined) changes.url = checkedUrl(input.url);
    if (input.enabled_events !== undefined) changes.enabled_events = JSON.stringify(checkedEvents(input.enabled_events));
    if (input.description !== undefined) changes.description = input.description;
    return this.db.transaction().execute(async (trx) => {
      const row = await this.row(trx, scope, id);
      const now = this.now();
      if (input.metadata !== undefined) changes.metadata = JSON.stringify({ ...JSON.parse(row.metadata), ...input.metadata });
      if (input.disabled === false && row.status === 'disabled') {
        Object.assign(changes, { status: 'enabled', disabled_reason: null, consecutive_failures: 0, failing_since: null });
      }
      if (Object.keys(changes).length > 0) await updateEndpoint(trx, scope, id, { ...changes, updated: now });
      if (input.disabled === true) await this.disable(trx, scope, id, 'manual');
      return webhookEndpointView(await this.row(trx, scope, id));
    });
  }

  async delete(scope: Scope, id: string): Promise<{ id: string; object: 'webhook_endpoint'; deleted: true }> {
    if (!(await deleteEndpoint(this.db, scope, id))) throw notFound('webhook endpoint', id, 'id');
    return { id, object: 'webhook_endpoint', deleted: true };
  }

  /**
   * Replaces the signing secret. With `expiresIn` > 0 the old secret stays
   * valid that many seconds, and deliveries are signed with both meanwhile,
   * so a vendor can deploy the new secret without dropping a delivery.
   */
  async rollSecret(scope: Scope, id: string, expiresIn = 0): Promise<WebhookEndpointView & { secret: string }> {
    return this.db.transaction().execute(async (trx) => {
      const row = await this.row(trx, scope, id);
      const now = this.now();
      const secret = newSecret();
      await updateEndpoint(trx, scope, id, {
        secret_sealed: this.box.seal(secret, sealContext(id)),
        previous_secret_sealed: expiresIn > 0 ? row.secret_sealed : null,
        previous_secret_expires_at: expiresIn > 0 ? now + expiresIn : null,
        updated: now,
      });
      return { ...webhookEndpointView(await this.row(trx, scope, id)), secret };
    });
  }

  // ── the delivery log and resends ──

  async listEndpointDeliveries(scope: Scope, id: string, filter: { event?: string }, page: PageParams) {
    await this.row(this.db, scope, id);
    const result = await listDeliveries(this.db, scope, { endpoint_id: id, event_id: filter.event }, page);
    return mapPage(result, webhookDeliveryView);
  }

  async listEventDeliveries(scope: Scope, eventId: string, filter: { webhook_endpoint?: string }, page: PageParams) {
    await this.events.get(scope, eventId);
    const result = await listDeliveries(this.db, scope, { event_id: eventId, endpoint_id: filter.webhook_endpoint }, page);
    return mapPage(result, webhookDeliveryView);
  }

  /**
   * Sends an event again: to one endpoint, or to every enabled endpoint that
   * receives its type. A resend is one attempt (the vendor is watching; its
   * outcome is in the delivery log) and does not touch the event's automatic
   * retries.
   */
  async resend(scope: Scope, eventId: string, endpointId?: string): Promise<{ object: 'event_resend'; event: string; webhook_endpoints: string[] }> {
    const event = await this.events.get(scope, eventId);
    if (!SENDABLE.has(event.type)) throw invalidRequest('parameter_invalid', `${event.type} events are not sent to webhook endpoints`, 'id');
    return this.db.transaction().execute(async (trx) => {
      let targets: string[];
      if (endpointId !== undefined) {
        const endpoint = await this.row(trx, scope, endpointId, 'webhook_endpoint');
        if (endpoint.status !== 'enabled') throw conflict('webhook_endpoint_disabled', 'this webhook endpoint is disabled; enable it first', 'webhook_endpoint');
        if (!matches(JSON.parse(endpoint.enabled_events) as string[], event.type)) {
          throw invalidRequest('parameter_invalid', `this webhook endpoint does not receive ${event.type} events`, 'webhook_endpoint');
        }
        targets = [endpoint.id];
      } else {
        targets = (await enabledEndpoints(trx, scope)).filter((e) => matches(JSON.parse(e.enabled_events) as string[], event.type)).map((e) => e.id);
      }
      for (const target of targets) {
        const payload: DeliveryPayload = { event: event.id, webhook_endpoint: target, manual: true };
        await this.jobs.enqueue(trx, scope, WEBHOOK_JOB, payload, { maxAttempts: 1 });
      }
      return { object: 'event_resend' as const, event: event.id, webhook_endpoints: targets };
    });
  }

  // ── fan-out and delivery ──

  /**
   * Called by the event log inside the transaction that records an event:
   * one delivery job per enabled endpoint that receives the event's type, so
   * the change, its event and the promise to deliver it commit together. The
   * dedupe key makes the fan-out of one event to one endpoint happen once.
   */
  async fanOut(trx: Kysely<Database>, scope: Scope, event: { id: string; type: string }): Promise<void> {
    if (!SENDABLE.has(event.type)) return;
    for (const endpoint of await enabledEndpoints(trx, scope)) {
      if (!matches(JSON.parse(endpoint.enabled_events) as string[], event.type)) continue;
      const payload: DeliveryPayload = { event: event.id, webhook_endpoint: endpoint.id };
      await this.jobs.enqueue(trx, scope, WEBHOOK_JOB, payload, { dedupeKey: `webhook:${event.id}:${endpoint.id}`, maxAttempts: WEBHOOK_MAX_ATTEMPTS });
    }
  }

  /**
   * The `webhook.deliver` job: one signed POST, logged. A 2xx is success;
   * anything else (another status, a refused connection, a timeout) is logged
   * and thrown, so the worker retries it with backoff.
   */
  readonly deliver = async (raw: unknown, context: JobContext): Promise<void> => {
    const payload = raw as Partial<DeliveryPayload> | null;
    const { account_id, env } = context.job;
    if (typeof payload?.event !== 'string' || typeof payload.webhook_endpoint !== 'string' || account_id === null || env === null) {
      throw new PermanentJobError('malformed webhook delivery job');
    }
    const scope: Scope = { accountId: account_id, env };
    const endpoint = await findEndpoint(this.db, scope, payload.webhook_endpoint);
    if (!endpoint) throw new PermanentJobError('the webhook endpoint was deleted');
    if (endpoint.status !== 'enabled') throw new PermanentJobError('the webhook endpoint is disabled');
    let event: EventView;
    try {
      event = await this.events.get(scope, payload.event);
    } catch (err) {
      if (err instanceof DomainError && err.kind === 'not_found') throw new PermanentJobError('the event no longer exists (event retention)');
      throw err;
    }

    const body = JSON.stringify(event);
    const timestamp = this.now();
    const started = performance.now();
    let statusCode: number | null = null;
    let responseBody: string | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'Keymint-Webhooks/1',
          [SIGNATURE_HEADER]: signatureHeader(body, this.secretsOf(endpoint, timestamp), timestamp),
        },
        body,
        // A redirect is an answer, not a success: the URL registered is the one signed for.
        redirect: 'manual',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      statusCode = response.status;
      responseBody = await snippetOf(response);
    } catch (err) {
      error = describeFailure(err, this.options.timeoutMs);
    }
    const succeeded = statusCode !== null && statusCode >= 200 && statusCode < 300;
    if (!succeeded && error === null) error = `the endpoint answered ${statusCode}`;
    const now = this.now();
    await insertDelivery(this.db, {
      id: newId('webhookDelivery'),
      account_id: scope.accountId,
      env: scope.env,
      endpoint_id: endpoint.id,
      event_id: event.id,
      event_type: event.type,
      job_id: context.job.id,
      url: endpoint.url,
      attempt: context.attempt,
      manual: payload.manual === true ? 1 : 0,
      status_code: statusCode,
      succeeded: succeeded ? 1 : 0,
      duration_ms: Math.round(performance.now() - started),
      error,
      response_body: responseBody,
      created: now,
    });
    if (succeeded) {
      await noteEndpointSuccess(this.db, endpoint.id, now);
      return;
    }
    const run = await noteEndpointFailure(this.db, endpoint.id, now);
    if (run && run.status === 'enabled' && run.consecutive_failures >= DISABLE_AFTER_FAILURES && run.failing_since !== null && run.failing_since <= now - DISABLE_AFTER_SECONDS) {
      await this.db.transaction().execute((trx) => this.disable(trx, scope, endpoint.id, 'failing'));
    }
    throw new Error(error ?? 'delivery failed');
  };

  /** The current secret, then the rolled one while its grace period runs. */
  private secretsOf(endpoint: WebhookEndpointRow, now: number): string[] {
    const secrets = [this.box.open(endpoint.secret_sealed, sealContext(endpoint.id)).toString('utf8')];
    if (endpoint.previous_secret_sealed !== null && endpoint.previous_secret_expires_at !== null && endpoint.previous_secret_expires_at > now) {
      secrets.push(this.box.open(endpoint.previous_secret_sealed, sealContext(endpoint.id)).toString('utf8'));
    }
    return secrets;
  }

  /** Disables an enabled endpoint and says so in the event log (an event no endpoint receives). */
  private async disable(trx: Kysely<Database>, scope: Scope, id: string, reason: 'manual' | 'failing'): Promise<void> {
    if (!(await disableEnabledEndpoint(trx, scope, id, reason, this.now()))) return;
    await this.events.record(trx, scope, 'webhook_endpoint.disabled', webhookEndpointView(await this.row(trx, scope, id)));
  }

  private async row(db: Kysely<Database>, scope: Scope, id: string, param = 'id'): Promise<WebhookEndpointRow> {
    const row = await findEndpoint(db, scope, id);
    if (!row) throw notFound('webhook endpoint', id, param);
    return row;
  }
}

function newSecret(): string {
  return `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** Both secrets of an endpoint open only in its own row. */
const sealContext = (id: string) => `webhook_endpoint:${id}`;
