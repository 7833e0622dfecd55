import type { Kysely } from 'kysely';
import type { SecretBox } from '../crypto/secret-box.js';
import { deleteConnection, findConnection, findConnectionById, upsertConnection, type ConnectionRow } from '../db/repositories/stripe.js';
import type { Database, Scope } from '../db/schema.js';
import { DomainError, invalidRequest } from '../errors.js';
import { newId } from '../ids.js';
import { HANDLED_EVENTS, STRIPE_API_VERSION, stripeClient, type Stripe } from './stripe-client.js';

const STRIPE_KEY_RE = /^(rk|sk)_(test|live)_[A-Za-z0-9]{10,250}$/;

const keyContext = (id: string) => `stripe_connection:${id}:secret_key`;
const webhookContext = (id: string) => `stripe_connection:${id}:webhook_secret`;
const cliContext = (id: string) => `stripe_connection:${id}:cli_webhook_secret`;
const WEBHOOK_SECRET_RE = /^whsec_[A-Za-z0-9]{10,200}$/;

export function connectionView(row: ConnectionRow | undefined, scope: Scope) {
  return {
    object: 'stripe_connection' as const,
    id: row?.id ?? null,
    status: row ? ('connected' as const) : ('disconnected' as const),
    livemode: scope.env === 'live',
    stripe_account: row?.stripe_account ?? null,
    webhook_endpoint: row?.webhook_endpoint_id ?? null,
    api_version: row?.api_version ?? null,
    enabled_events: row ? [...HANDLED_EVENTS] : [],
    secret_key_hint: row?.key_hint ?? null,
    stripe_cli_forwarding: row?.cli_webhook_secret_sealed != null,
    created: row?.created ?? null,
    updated: row?.updated ?? null,
  };
}
export type ConnectionView = ReturnType<typeof connectionView>;

/** Turns an error from the Stripe SDK into something the vendor can act on. */
function stripeProblem(err: unknown): never {
  const e = err as { type?: string; message?: string; statusCode?: number };
  if (e.type === 'StripeAuthenticationError') {
    throw invalidRequest('stripe_key_invalid', 'Stripe rejected this key; check that it is a current secret or restricted key', 'secret_key');
  }
  if (e.type === 'StripePermissionError') {
    throw invalidRequest(
      'stripe_permission_missing',
      `this restricted key lacks a permission Keymint needs (${e.message ?? 'see docs/stripe.md'}); see docs/stripe.md for the list`,
      'secret_key',
    );
  }
  if (e.type === 'StripeConnectionError' || e.type === 'StripeAPIError' || (e.statusCode ?? 0) >= 500) {
    throw new DomainError('conflict', 'stripe_unavailable', 'Stripe could not be reached; try again in a moment', null, true);
  }
  throw err;
}

/**
 * The vendor's Stripe account, one per environment: the key (sealed), and
 * the webhook endpoint Keymint registered with its signing secret (sealed).
 */
export class StripeConnectionService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly publicUrl: string,
    private readonly stripeApiUrl: string,
    private readonly now: () => number,
  ) {}

  webhookUrl(connectionId: string): string {
    return `${this.publicUrl}/stripe/webhooks/${connectionId}`;
  }

  /**
   * Checks the key against Stripe, registers Keymint's webhook endpoint (one
   * pinned API version, exactly the handled events) — replacing any endpoint
   * Keymint registered for this environment before, since Stripe shows an
   * endpoint's secret only once — and stores both secrets sealed.
   */
  async connect(scope: Scope, secretKey: string, cliWebhookSecret?: string | null): Promise<ConnectionView> {
    if (cliWebhookSecret != null) {
      if (scope.env !== 'test') throw invalidRequest('parameter_invalid', 'cli_webhook_secret is for test mode only', 'cli_webhook_secret');
      if (!WEBHOOK_SECRET_RE.test(cliWebhookSecret)) throw invalidRequest('parameter_invalid', 'cli_webhook_secret must be the whsec_… secret `stripe listen` prints', 'cli_webhook_secret');
    }
    const match = STRIPE_KEY_RE.exec(secretKey);
    if (!match) throw invalidRequest('stripe_key_invalid', 'expected a Stripe secret key (sk_…) or restricted key (rk_…)', 'secret_key');
    if (match[2] !== scope.env) {
      throw invalidRequest(
        'stripe_key_mode_mismatch',
        `this is a ${match[2]}-mode Stripe key; a ${scope.env}-mode API key can only connect ${scope.env}-mode Stripe keys`,
        'secret_key',
      );
    }
    const existing = await findConnection(this.db, scope);
    const id = existing?.id ?? newId('stripeConnection');
    const url = this.webhookUrl(id);
    const stripe = stripeClient(secretKey, this.stripeApiUrl);

    let endpoint: Stripe.WebhookEndpoint;
    let account: string | null = null;
    try {
      // Listing endpoints proves the key works and may manage webhooks.
      const ours = (await stripe.webhookEndpoints.list({ limit: 100 })).data.filter(
        (e) => e.url === url || e.metadata?.keymint_connection === id || e.id === existing?.webhook_endpoint_id,
      );
      for (const old of ours) await stripe.webhookEndpoints.del(old.id);
      endpoint = await stripe.webhookEndpoints.create({
        url,
        enabled_events: [...HANDLED_EVENTS],
        api_version: STRIPE_API_VERSION,
        description: 'Keymint: license fulfilment',
        metadata: { keymint_connection: id },
      });
    } catch (err) {
      stripeProblem(err);
    }
    try {
      account = (await stripe.accounts.retrieveCurrent()).id;
    } catch {
      // Restricted keys may not read the account; the id is informative only.
      account = null;
    }
    if (!endpoint.secret) throw new Error('Stripe returned a webhook endpoint without its secret');

    const now = this.now();
    const row: ConnectionRow = {
      id,
      account_id: scope.accountId,
      env: scope.env,
      stripe_account: account,
      secret_key_sealed: this.box.seal(secretKey, keyContext(id)),
      key_hint: `${secretKey.slice(0, 8)}…${secretKey.slice(-4)}`,
      webhook_endpoint_id: endpoint.id,
      webhook_secret_sealed: this.box.seal(endpoint.secret, webhookContext(id)),
      cli_webhook_secret_sealed: cliWebhookSecret ? this.box.seal(cliWebhookSecret, cliContext(id)) : null,
      api_version: STRIPE_API_VERSION,
      created: existing?.created ?? now,
      updated: now,
    };
    await upsertConnection(this.db, row);
    return connectionView(row, scope);
  }

  async get(scope: Scope): Promise<ConnectionView> {
    return connectionView(await findConnection(this.db, scope), scope);
  }

  /** Removes the webhook endpoint from Stripe (if Stripe still has it) and forgets the credentials. */
  async disconnect(scope: Scope): Promise<ConnectionView & { deleted: true }> {
    const row = await findConnection(this.db, scope);
    if (row) {
      try {
        await this.client(row).webhookEndpoints.del(row.webhook_endpoint_id);
      } catch (err) {
        const e = err as { statusCode?: number; type?: string };
        // Already gone, or the key was revoked: either way nothing more to remove on Stripe's side.
        if (e.statusCode !== 404 && e.type !== 'StripeAuthenticationError') stripeProblem(err);
      }
      await deleteConnection(this.db, scope);
    }
    return { ...connectionView(undefined, scope), deleted: true };
  }

  /** The connection a webhook URL names, with its webhook secret opened. */
  async forWebhook(connectionId: string): Promise<{ row: ConnectionRow; secrets: string[] } | null> {
    const row = await findConnectionById(this.db, connectionId);
    if (!row) return null;
    const secrets = [this.box.open(row.webhook_secret_sealed, webhookContext(row.id)).toString('utf8')];
    if (row.cli_webhook_secret_sealed) secrets.push(this.box.open(row.cli_webhook_secret_sealed, cliContext(row.id)).toString('utf8'));
    return { row, secrets };
  }

  /** A Stripe client for the environment's connection, or null when it is not connected. */
  async clientFor(scope: Scope): Promise<Stripe | null> {
    const row = await findConnection(this.db, scope);
    return row ? this.client(row) : null;
  }

  private client(row: ConnectionRow): Stripe {
    return stripeClient(this.box.open(row.secret_key_sealed, keyContext(row.id)).toString('utf8'), this.stripeApiUrl);
  }
}
