import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

/**
 * A small, stateful fake of the Stripe HTTP API: only the endpoints Keymint
 * calls, reached through the official SDK pointed at it (KEYMINT_STRIPE_API_URL).
 *
 * Objects start as deep copies of ../shared/stripe/fixtures.json, the shapes
 * Stripe publishes, with ids and fields overridden. Where a fixture disagrees
 * with the SDK's types the types win (API version 2025-03-31 "basil" and
 * later): an invoice names its subscription only in
 * `parent.subscription_details`, periods live on subscription items, an
 * invoice's payments are InvoicePayment objects, a charge has no `invoice`.
 *
 * Includable fields (`checkout.session.line_items`, `invoice.payments`,
 * `charge.refunds`) appear only when asked for with `expand[]`, and never in
 * event payloads: code that forgets to expand fails here as it would in Stripe.
 *
 * Test control is plain methods (builders, `event`, `send`, `failNext`), not HTTP.
 */

export const FAKE_STRIPE_API_VERSION = Stripe.API_VERSION;

type Mode = 'test' | 'live';
type Access = 'none' | 'read' | 'write';
/** Resources a restricted key (rk_…) can be granted, and the `rak_` permission Stripe names in its 403. */
const RESOURCES = {
  account: 'account',
  webhook_endpoints: 'webhook',
  checkout_sessions: 'checkout_session',
  subscriptions: 'subscription',
  invoices: 'invoice',
  charges: 'charge',
  payment_intents: 'payment_intent',
  prices: 'plan',
  customers: 'customer',
  disputes: 'dispute',
} as const;
export type StripeResource = keyof typeof RESOURCES;
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S;
/**
 * 'all' is a secret key. An object is a restricted key described by what it
 * lacks: listed resources get that access ('none' | 'read' | 'write'; false =
 * 'none', true = 'write'), unlisted ones keep 'write'. Either spelling works:
 * `webhook_endpoints` or `webhookEndpoints`.
 */
export type KeyPermissions = 'all' | Partial<Record<StripeResource | CamelCase<StripeResource>, Access | boolean>>;

export interface KeyOptions {
  /** Defaults from the prefix: `…_live_…` is live, anything else test. */
  mode?: Mode;
  permissions?: KeyPermissions;
  /** The Stripe account the key belongs to (GET /v1/account); defaults to the fake's account. */
  account?: string;
}

/** An id (`cus_…`) or an object carrying one. */
export type Ref = string | { id: string };

export interface RecordedRequest {
  method: string;
  path: string;
  /** Query string (GET) or form body (POST), parsed the way Stripe parses it. */
  params: FormParams;
  key: string | null;
  stripeVersion: string | null;
  idempotencyKey: string | null;
  status: number;
}

export interface SendResult {
  status: number;
  body: any;
}

type FormValue = string | FormValue[] | FormParams;
export interface FormParams {
  [key: string]: FormValue;
}

interface KeyRecord {
  mode: Mode;
  permissions: KeyPermissions;
  account: string;
}

// ---------------------------------------------------------------------------
// Fixtures

interface FixtureTypes {
  'checkout.session': Stripe.Checkout.Session;
  item: Stripe.LineItem;
  invoice: Stripe.Invoice;
  line_item: Stripe.InvoiceLineItem;
  invoice_payment: Stripe.InvoicePayment;
  subscription: Stripe.Subscription;
  subscription_item: Stripe.SubscriptionItem;
  charge: Stripe.Charge;
  refund: Stripe.Refund;
  payment_intent: Stripe.PaymentIntent;
  customer: Stripe.Customer;
  price: Stripe.Price;
  product: Stripe.Product;
  webhook_endpoint: Stripe.WebhookEndpoint;
}

/**
 * A committed copy of ../shared/stripe/fixtures.json (Stripe's OpenAPI
 * fixtures, MIT), so tests run from any clone. Found by walking up from this
 * file, which also works when the benchmark compiles it elsewhere.
 */
const FIXTURES_PATH = (() => {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 6; i++) {
    for (const candidate of ['fixtures/stripe-fixtures.json', 'test/support/fixtures/stripe-fixtures.json']) {
      const url = new URL(candidate, dir);
      if (fs.existsSync(url)) return url;
    }
    dir = new URL('..', dir);
  }
  return new URL('fixtures/stripe-fixtures.json', import.meta.url);
})();
let fixtureCache: Record<string, unknown> | undefined;

/** A deep copy of the published example object, typed as the SDK's type (the types are the schema). */
function fixture<K extends keyof FixtureTypes>(name: K): FixtureTypes[K] {
  if (!fixtureCache) {
    if (!fs.existsSync(FIXTURES_PATH)) throw new Error(`fake-stripe: fixtures not found at ${FIXTURES_PATH.pathname}`);
    fixtureCache = JSON.parse(fs.readFileSync(FIXTURES_PATH, 'utf8')) as Record<string, unknown>;
  }
  const value = fixtureCache[name];
  if (value === undefined) throw new Error(`fake-stripe: no fixture '${name}'`);
  return structuredClone(value) as FixtureTypes[K];
}

/** Sets fields on a fixture copy; typed, so a misspelt or mistyped field fails to compile. */
function override<T extends object>(object: T, fields: Partial<T>): T {
  return Object.assign(object, fields);
}

/** Removes fields the fixtures still carry but the pinned API version dropped. */
function dropStale(object: object, ...fields: string[]): void {
  for (const field of fields) delete (object as Record<string, unknown>)[field];
}

// ---------------------------------------------------------------------------
// Form bodies: `metadata[k]=v`, `enabled_events[]=x`, `enabled_events[0]=x`, `items[0][price]=p`

export function parseStripeForm(input: string): FormParams {
  const root: FormParams = {};
  for (const [rawKey, value] of new URLSearchParams(input)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    if (!match) continue;
    const path = [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)];
    let node: FormParams | FormValue[] = root;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i]!;
      const last = i === path.length - 1;
      const nextIsIndex = !last && (path[i + 1] === '' || /^\d+$/.test(path[i + 1]!));
      const slot: string | number = Array.isArray(node) ? (segment === '' ? node.length : Number(segment)) : segment;
      const container = node as Record<string | number, FormValue>;
      if (last) {
        container[slot] = value;
      } else {
        const existing = container[slot];
        if (existing === undefined || typeof existing === 'string') container[slot] = nextIsIndex ? [] : {};
        node = container[slot] as FormParams | FormValue[];
      }
    }
  }
  return compact(root) as FormParams;
}

/** Sparse arrays (`a[0]`, `a[2]`) close up, as Stripe's parser does. */
function compact(value: FormValue): FormValue {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.filter((v) => v !== undefined).map(compact);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, compact(v)]));
}

// ---------------------------------------------------------------------------
// Errors in Stripe's shape; the SDK picks its error class from the status.

class StripeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly error: Record<string, unknown>,
  ) {
    super(String(error.message));
  }
}

const invalidRequest = (message: string, extra: Record<string, unknown> = {}) =>
  new StripeHttpError(400, { type: 'invalid_request_error', message, ...extra });

const mask = (key: string) => `${key.slice(0, key.indexOf('_', 3) + 1)}****${key.slice(-4)}`;

// ---------------------------------------------------------------------------

interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  resource: StripeResource;
  /** Body parameters the endpoint accepts besides `expand`; anything else is a 400, as in Stripe. */
  accepts?: readonly string[];
  handle(ctx: RouteContext): unknown;
}

interface RouteContext {
  key: KeyRecord;
  id: string;
  params: FormParams;
  expand: string[];
  livemode: boolean;
}

const route = (method: Route['method'], path: string, resource: StripeResource, handle: Route['handle'], accepts?: readonly string[]): Route => ({
  method,
  pattern: new RegExp(`^${path.replace(':id', '([^/]+)')}$`),
  resource,
  handle,
  ...(accepts && { accepts }),
});

const LIST_PARAMS = ['limit', 'starting_after', 'ending_before'] as const;
export interface LineItemInput {
  price: Ref;
  quantity?: number;
}

export interface SubscriptionPatch {
  status?: Stripe.Subscription.Status;
  /** Replaces the items; items keep their `si_` ids by position, as a price change through `items[i][id]` does. */
  items?: LineItemInput[];
  /** Shorthands for the first item. */
  price?: Ref;
  quantity?: number;
  cancelAtPeriodEnd?: boolean;
  currentPeriodStart?: number;
  currentPeriodEnd?: number;
  endedAt?: number | null;
  canceledAt?: number | null;
  metadata?: Record<string, string>;
}

export interface Change<T> {
  previousAttributes: Partial<T>;
}

export class FakeStripe {
  readonly url: string;
  readonly port: number;
  /** The account every key belongs to unless `addKey` says otherwise. */
  readonly accountId: string;
  /** Every request that reached the fake, in order. */
  readonly requests: RecordedRequest[] = [];

  private readonly server: http.Server;
  private readonly now: () => number;
  private readonly keys = new Map<string, KeyRecord>();
  private readonly failures: { remaining: number; status: number; path?: RegExp }[] = [];
  /** POST responses by key + Idempotency-Key: the SDK retries with the same key and Stripe replays. */
  private readonly idempotent = new Map<string, { status: number; body: unknown }>();

  private readonly store = {
    customers: new Map<string, Stripe.Customer>(),
    products: new Map<string, Stripe.Product>(),
    prices: new Map<string, Stripe.Price>(),
    sessions: new Map<string, Stripe.Checkout.Session>(),
    subscriptions: new Map<string, Stripe.Subscription>(),
    invoices: new Map<string, Stripe.Invoice>(),
    paymentIntents: new Map<string, Stripe.PaymentIntent>(),
    charges: new Map<string, Stripe.Charge>(),
    refunds: new Map<string, Stripe.Refund>(),
    disputes: new Map<string, Stripe.Dispute>(),
    webhookEndpoints: new Map<string, Stripe.WebhookEndpoint>(),
  };
  // Includable lists live beside their parent and are rendered only on expand.
  private readonly sessionLineItems = new Map<string, Stripe.LineItem[]>();
  private readonly invoicePayments = new Map<string, Stripe.InvoicePayment[]>();
  private readonly webhookSecrets = new Map<string, string>();

  private constructor(server: http.Server, options: { now?: () => number; accountId?: string }) {
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
    this.now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.accountId = options.accountId ?? newId('acct');
  }

  /**
   * Starts the fake on 127.0.0.1 and a free port. `now` (unix seconds) stamps
   * `created` and periods; webhook signatures use the real clock, because the
   * SDK verifies them against the real clock.
   */
  static async start(options: { now?: () => number; accountId?: string } = {}): Promise<FakeStripe> {
    let fake: FakeStripe | undefined;
    const server = http.createServer((req, res) => void fake!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    fake = new FakeStripe(server, options);
    return fake;
  }

  async close(): Promise<void> {
    // The SDK keeps connections alive; without this, close() waits for them to idle out.
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => this.server.close((err) => (err ? reject(err) : resolve())));
  }

  /** An SDK client pointed at the fake (no retries unless asked, so failures surface at once). */
  client(key: string, options: { maxNetworkRetries?: number } = {}): Stripe {
    return new Stripe(key, {
      apiVersion: FAKE_STRIPE_API_VERSION,
      host: '127.0.0.1',
      port: this.port,
      protocol: 'http',
      maxNetworkRetries: options.maxNetworkRetries ?? 0,
      telemetry: false,
    });
  }

  // -------------------------------------------------------------------------
  // Keys and failure injection

  addKey(key: string, options: KeyOptions = {}): void {
    this.keys.set(key, {
      mode: options.mode ?? (/_live_/.test(key) ? 'live' : 'test'),
      permissions: options.permissions ?? 'all',
      account: options.account ?? this.accountId,
    });
  }

  /** Revokes a key, as rolling it in the dashboard does: every request with it gets 401 from now on. */
  revokeKey(key: string): void {
    this.keys.delete(key);
  }

  /** The next `n` requests whose path matches answer `status` (500 by default) with Stripe's api_error body. Each SDK retry counts as a request. */
  failNext(n: number, options: { status?: number; path?: RegExp } = {}): void {
    this.failures.push({ remaining: n, status: options.status ?? 500, ...(options.path && { path: options.path }) });
  }

  // -------------------------------------------------------------------------
  // Builders: consistent objects in the store; each returns a snapshot.

  customer(input: { email: string; name?: string | null; metadata?: Record<string, string>; livemode?: boolean }): Stripe.Customer {
    const customer = fixture('customer');
    override(customer, {
      id: newId('cus'),
      created: this.now(),
      email: input.email,
      name: input.name ?? null,
      metadata: { ...input.metadata },
      livemode: input.livemode ?? false,
      discount: null,
      invoice_prefix: randomBytes(4).toString('hex').toUpperCase(),
    });
    return this.put(this.store.customers, customer);
  }

  product(input: { name?: string; metadata?: Record<string, string>; livemode?: boolean } = {}): Stripe.Product {
    const product = fixture('product');
    override(product, {
      id: newId('prod'),
      created: this.now(),
      updated: this.now(),
      name: input.name ?? 'Editor',
      description: null,
      metadata: { ...input.metadata },
      livemode: input.livemode ?? false,
      default_price: null,
      package_dimensions: null,
    });
    return this.put(this.store.products, product);
  }

  /** A price (and a product, unless given one). No `recurring` makes a one-time price. */
  price(
    input: {
      metadata?: Record<string, string>;
      recurring?: { interval: Stripe.Price.Recurring.Interval; intervalCount?: number };
      product?: Ref;
      unitAmount?: number;
      currency?: string;
      nickname?: string | null;
      lookupKey?: string | null;
      livemode?: boolean;
    } = {},
  ): Stripe.Price {
    const livemode = input.livemode ?? false;
    const product = input.product ? refId(input.product) : this.product({ livemode }).id;
    const price = fixture('price');
    override(price, {
      id: newId('price'),
      created: this.now(),
      currency: input.currency ?? 'usd',
      livemode,
      lookup_key: input.lookupKey ?? null,
      metadata: { ...input.metadata },
      nickname: input.nickname ?? null,
      product,
      recurring: input.recurring
        ? { interval: input.recurring.interval, interval_count: input.recurring.intervalCount ?? 1, meter: null, usage_type: 'licensed', trial_period_days: null }
        : null,
      type: input.recurring ? 'recurring' : 'one_time',
      unit_amount: input.unitAmount ?? 4900,
      // The wire format is a string; the SDK turns it into a Decimal on the way in.
      unit_amount_decimal: String(input.unitAmount ?? 4900) as unknown as Stripe.Price['unit_amount_decimal'],
      custom_unit_amount: null,
      transform_quantity: null,
    });
    return this.put(this.store.prices, price);
  }

  /**
   * A completed Checkout Session. Payment mode creates a payment intent and a
   * charge (a guest checkout has `customer: null` unless one is given).
   * Subscription mode always has a customer, and creates the subscription and
   * its first invoice unless `subscription` is given.
   */
  checkoutSession(input: {
    mode: 'payment' | 'subscription';
    customer?: Ref;
    email: string;
    lineItems: LineItemInput[];
    paymentStatus?: 'paid' | 'unpaid' | 'no_payment_required';
    subscription?: Ref;
    metadata?: Record<string, string>;
    clientReferenceId?: string | null;
    livemode?: boolean;
  }): Stripe.Checkout.Session {
    const livemode = input.livemode ?? false;
    const paymentStatus = input.paymentStatus ?? 'paid';
    const id = `cs_${livemode ? 'live' : 'test'}_${randomId(58)}`;
    const items = input.lineItems.map((line) => this.lineItem(line));
    const total = items.reduce((sum, item) => sum + item.amount_total, 0);
    const currency = items[0]?.currency ?? 'usd';

    let customer = input.customer ? refId(input.customer) : null;
    let paymentIntent: string | null = null;
    let subscription: string | null = null;
    let invoice: string | null = null;
    if (input.mode === 'payment') {
      // A free checkout has no payment intent at all.
      if (paymentStatus !== 'no_payment_required') {
        paymentIntent = this.payment({ amount: total, currency, customer, paid: paymentStatus === 'paid', pending: paymentStatus === 'unpaid', livemode, description: null }).id;
      }
    } else {
      customer ??= this.customer({ email: input.email, livemode }).id;
      if (input.subscription) {
        subscription = refId(input.subscription);
        invoice = this.stored(this.store.subscriptions, subscription).latest_invoice as string | null;
      } else {
        const firstPrice = this.stored(this.store.prices, refId(input.lineItems[0]!.price));
        const sub = this.subscription({
          customer,
          items: input.lineItems,
          // Nothing to pay at checkout is a trial here (a subscription that needs a paid first invoice gets one).
          status: paymentStatus === 'unpaid' ? 'incomplete' : paymentStatus === 'no_payment_required' ? 'trialing' : 'active',
          currentPeriodEnd: addInterval(this.now(), firstPrice.recurring?.interval ?? 'month', firstPrice.recurring?.interval_count ?? 1),
          livemode,
        });
        subscription = sub.id;
        if (paymentStatus !== 'no_payment_required') {
          invoice = this.invoice({ subscription: sub.id, paid: paymentStatus === 'paid', billingReason: 'subscription_create' }).id;
        }
      }
    }

    const session = fixture('checkout.session');
    override(session, {
      id,
      created: this.now(),
      expires_at: this.now() + 24 * 3600,
      mode: input.mode,
      status: 'complete',
      payment_status: paymentStatus,
      customer,
      customer_email: input.customer ? null : input.email,
      customer_creation: input.mode === 'payment' && !input.customer ? 'if_required' : null,
      client_reference_id: input.clientReferenceId ?? null,
      currency,
      amount_subtotal: total,
      amount_total: total,
      total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      livemode,
      metadata: { ...input.metadata },
      payment_intent: paymentIntent,
      subscription,
      invoice,
      invoice_creation: input.mode === 'payment' ? { ...session.invoice_creation!, enabled: false } : null,
      url: null,
      after_expiration: null,
      shipping_cost: null,
      shipping_address_collection: null,
      collected_information: null,
      currency_conversion: null,
      payment_method_configuration_details: null,
    });
    session.customer_details = { ...session.customer_details!, email: input.email };
    this.sessionLineItems.set(id, items);
    return this.put(this.store.sessions, session);
  }

  /** Settles an async (e.g. bank debit) Checkout payment: the session, its payment intent and charge. */
  settleCheckoutSession(id: string, outcome: 'paid' | 'failed'): Stripe.Checkout.Session {
    const session = this.stored(this.store.sessions, id);
    if (outcome === 'paid') session.payment_status = 'paid';
    const pi = session.payment_intent ? this.store.paymentIntents.get(session.payment_intent as string) : undefined;
    if (pi) this.settlePayment(pi, outcome === 'paid');
    return clone(session);
  }

  subscription(input: {
    customer: Ref;
    items: LineItemInput[];
    status: Stripe.Subscription.Status;
    currentPeriodEnd: number;
    currentPeriodStart?: number;
    cancelAtPeriodEnd?: boolean;
    metadata?: Record<string, string>;
    livemode?: boolean;
  }): Stripe.Subscription {
    const id = newId('sub');
    const start = input.currentPeriodStart ?? this.now();
    const sub = fixture('subscription');
    override(sub, {
      id,
      created: start,
      start_date: start,
      billing_cycle_anchor: start,
      billing_cycle_anchor_config: null,
      billing_schedules: [],
      customer: refId(input.customer),
      status: input.status,
      cancel_at_period_end: input.cancelAtPeriodEnd ?? false,
      cancel_at: input.cancelAtPeriodEnd ? input.currentPeriodEnd : null,
      canceled_at: input.cancelAtPeriodEnd || input.status === 'canceled' ? this.now() : null,
      ended_at: input.status === 'canceled' ? this.now() : null,
      trial_start: input.status === 'trialing' ? start : null,
      trial_end: input.status === 'trialing' ? input.currentPeriodEnd : null,
      currency: this.stored(this.store.prices, refId(input.items[0]!.price)).currency,
      latest_invoice: null,
      livemode: input.livemode ?? false,
      metadata: { ...input.metadata },
      pause_collection: null,
      pending_update: null,
      pending_invoice_item_interval: null,
      next_pending_invoice_item_invoice: null,
      transfer_data: null,
      discounts: [],
    });
    sub.items = { object: 'list', data: [], has_more: false, url: `/v1/subscription_items?subscription=${id}` };
    sub.items.data = input.items.map((item) => this.subscriptionItem(id, item, start, input.currentPeriodEnd));
    return this.put(this.store.subscriptions, sub);
  }

  /** Changes a subscription as Stripe would and returns it with the `previous_attributes` a `customer.subscription.updated` event carries. */
  updateSubscription(id: string, patch: SubscriptionPatch): Change<Stripe.Subscription> & { subscription: Stripe.Subscription } {
    const sub = this.stored(this.store.subscriptions, id);
    const before = clone(sub);
    const first = sub.items.data[0];
    const periodStart = patch.currentPeriodStart ?? first?.current_period_start ?? this.now();
    const periodEnd = patch.currentPeriodEnd ?? first?.current_period_end ?? this.now();

    if (patch.items) {
      sub.items.data = patch.items.map((item, i) => {
        const next = this.subscriptionItem(id, item, periodStart, periodEnd);
        return sub.items.data[i] ? { ...next, id: sub.items.data[i]!.id, created: sub.items.data[i]!.created } : next;
      });
    }
    if (patch.price && sub.items.data[0]) {
      const replaced = this.subscriptionItem(id, { price: patch.price, quantity: sub.items.data[0].quantity ?? 1 }, periodStart, periodEnd);
      sub.items.data[0] = { ...replaced, id: sub.items.data[0].id, created: sub.items.data[0].created };
    }
    if (patch.quantity !== undefined && sub.items.data[0]) sub.items.data[0].quantity = patch.quantity;
    for (const item of sub.items.data) {
      item.current_period_start = periodStart;
      item.current_period_end = periodEnd;
    }
    if (patch.cancelAtPeriodEnd !== undefined) {
      sub.cancel_at_period_end = patch.cancelAtPeriodEnd;
      sub.cancel_at = patch.cancelAtPeriodEnd ? periodEnd : null;
      sub.canceled_at = patch.cancelAtPeriodEnd ? this.now() : null;
    }
    if (patch.status !== undefined) {
      sub.status = patch.status;
      if (patch.status === 'canceled') {
        sub.ended_at = this.now();
        sub.canceled_at ??= this.now();
      }
    }
    if (patch.endedAt !== undefined) sub.ended_at = patch.endedAt;
    if (patch.canceledAt !== undefined) sub.canceled_at = patch.canceledAt;
    if (patch.metadata) sub.metadata = mergeMetadata(sub.metadata, patch.metadata);
    return { subscription: clone(sub), previousAttributes: diff(before, sub) };
  }

  /**
   * An invoice for a subscription's current items, paid or with a failed
   * attempt. Its payment is a payment intent (new, or `paymentIntent`) with a
   * charge, linked through `invoice.payments` (expand it). The subscription's
   * `latest_invoice` moves to it; its status does not (use updateSubscription).
   */
  invoice(input: { subscription: Ref; paid: boolean; paymentIntent?: Ref; billingReason?: Stripe.Invoice.BillingReason }): Stripe.Invoice {
    const sub = this.stored(this.store.subscriptions, refId(input.subscription));
    const id = newId('in');
    const lines = sub.items.data.map((item) => this.invoiceLine(id, sub, item));
    const total = lines.reduce((sum, line) => sum + line.amount, 0);
    const customer = sub.customer as string;
    const customerEmail = this.store.customers.get(customer)?.email ?? null;

    const invoice = fixture('invoice');
    dropStale(invoice, 'subscription');
    override(invoice, {
      id,
      created: this.now(),
      effective_at: this.now(),
      // Stripe's invoice-level period is the previous one; the service period is on the lines.
      period_start: this.now(),
      period_end: this.now(),
      customer,
      customer_email: customerEmail,
      currency: sub.currency,
      livemode: sub.livemode,
      billing_reason: input.billingReason ?? 'subscription_cycle',
      number: `${randomId(8).toUpperCase()}-0001`,
      subtotal: total,
      subtotal_excluding_tax: total,
      total,
      total_excluding_tax: total,
      amount_due: total,
      amount_overpaid: 0,
      attempted: true,
      attempt_count: 1,
      auto_advance: !input.paid,
      due_date: null,
      from_invoice: null,
      last_finalization_error: null,
      shipping_cost: null,
      shipping_details: null,
      customer_shipping: null,
      hosted_invoice_url: `https://invoice.stripe.com/i/${id}`,
      invoice_pdf: `https://pay.stripe.com/invoice/${id}/pdf`,
      metadata: {},
      parent: { type: 'subscription_details', quote_details: null, subscription_details: { subscription: sub.id, metadata: { ...sub.metadata } } },
      lines: { object: 'list', data: lines, has_more: false, url: `/v1/invoices/${id}/lines` },
    });
    this.put(this.store.invoices, invoice);

    const pi = input.paymentIntent
      ? this.stored(this.store.paymentIntents, refId(input.paymentIntent))
      : this.payment({ amount: total, currency: sub.currency, customer, paid: false, pending: false, livemode: sub.livemode, description: 'Subscription update' });
    const payment = fixture('invoice_payment');
    override(payment, {
      id: newId('inpay'),
      created: this.now(),
      invoice: id,
      currency: sub.currency,
      amount_requested: total,
      livemode: sub.livemode,
      is_default: true,
      payment: { type: 'payment_intent', payment_intent: pi.id },
    });
    this.invoicePayments.set(id, [payment]);
    this.settleInvoice(invoice, input.paid);
    sub.latest_invoice = id;
    return clone(invoice);
  }

  /** Pays an open invoice (a later retry that succeeds): a new successful charge on its payment intent. */
  payInvoice(id: string): Stripe.Invoice {
    const invoice = this.stored(this.store.invoices, id);
    this.settleInvoice(invoice, true);
    return clone(invoice);
  }

  /** Refunds a charge (all of what is left unless `amount`); the result is what `charge.refunded` carries. */
  refund(chargeId: string, input: { amount?: number } = {}): Change<Stripe.Charge> & { charge: Stripe.Charge; refund: Stripe.Refund } {
    const charge = this.stored(this.store.charges, chargeId);
    const before = clone(charge);
    const amount = input.amount ?? charge.amount - charge.amount_refunded;
    if (amount <= 0 || charge.amount_refunded + amount > charge.amount) throw new Error(`fake-stripe: refund of ${amount} exceeds what is left on ${chargeId}`);
    const refund = fixture('refund');
    override(refund, {
      id: newId('re'),
      created: this.now(),
      amount,
      charge: charge.id,
      currency: charge.currency,
      payment_intent: charge.payment_intent,
      customer: charge.customer,
      status: 'succeeded',
      metadata: {},
      balance_transaction: newId('txn'),
    });
    this.put(this.store.refunds, refund);
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    return { charge: clone(charge), refund: clone(refund), previousAttributes: diff(before, charge) };
  }

  /** Opens a dispute on a charge (status `needs_response`); the result is what `charge.dispute.created` carries. */
  dispute(chargeId: string, input: { reason?: string; amount?: number } = {}): Stripe.Dispute {
    const charge = this.stored(this.store.charges, chargeId);
    charge.disputed = true;
    // No published fixture for disputes: built from the SDK's type, with the fields a handler reads.
    const dispute = {
      id: newId('du'),
      object: 'dispute',
      amount: input.amount ?? charge.amount,
      balance_transactions: [],
      charge: charge.id,
      created: this.now(),
      currency: charge.currency,
      enhanced_eligibility_types: [],
      evidence: {},
      evidence_details: { due_by: this.now() + 7 * 86400, has_evidence: false, past_due: false, submission_count: 0, submission_method: null },
      intended_submission_method: null,
      is_charge_refundable: false,
      livemode: charge.livemode,
      metadata: {},
      payment_intent: charge.payment_intent,
      reason: input.reason ?? 'fraudulent',
      status: 'needs_response',
    } as unknown as Stripe.Dispute;
    return this.put(this.store.disputes, dispute);
  }

  /** Closes a dispute; the result is what `charge.dispute.closed` carries. */
  closeDispute(id: string, outcome: 'won' | 'lost'): Change<Stripe.Dispute> & { dispute: Stripe.Dispute } {
    const dispute = this.stored(this.store.disputes, id);
    const before = clone(dispute);
    dispute.status = outcome;
    return { dispute: clone(dispute), previousAttributes: diff(before, dispute) };
  }

  /**
   * A snapshot of any stored object by id, as the API renders it: includable
   * lists only with `expand` (e.g. `get(invoiceId, { expand: ['payments'] })`).
   */
  get<T = unknown>(id: string, options: { expand?: string[] } = {}): T {
    const found = this.find(id);
    if (!found) throw new Error(`fake-stripe: no object ${id}`);
    return this.expandAll(clone(found), options.expand ?? []) as T;
  }

  // -------------------------------------------------------------------------
  // Events and webhooks

  /** A full event envelope around a snapshot of `object`, at the pinned API version. */
  event(type: string, object: { id: string; livemode?: boolean }, options: { livemode?: boolean; previousAttributes?: object; id?: string; created?: number } = {}): Stripe.Event {
    return {
      id: options.id ?? newId('evt'),
      object: 'event',
      api_version: FAKE_STRIPE_API_VERSION,
      created: options.created ?? this.now(),
      data: { object: clone(object), ...(options.previousAttributes && { previous_attributes: clone(options.previousAttributes) }) },
      livemode: options.livemode ?? object.livemode ?? false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    } as unknown as Stripe.Event;
  }

  /**
   * POSTs an event to `url` as Stripe delivers it: pretty-printed JSON (so a
   * verifier that re-serializes fails) signed with the SDK's test header.
   * `secret` defaults to the secret of the endpoint registered with `url`;
   * `extraSecrets` add v1 values as while a secret is rolled; `timestamp`
   * (unix seconds) defaults to now on the real clock.
   */
  async send(
    url: string,
    event: object,
    options: { secret?: string; timestamp?: number; signature?: 'valid' | 'bad' | 'missing'; extraSecrets?: string[] } = {},
  ): Promise<SendResult> {
    const payload = JSON.stringify(event, null, 2);
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' };
    if (options.signature !== 'missing') {
      const primary = options.signature === 'bad' ? `whsec_${randomId(32)}` : (options.secret ?? this.webhookSecretFor(url));
      const v1 = [primary, ...(options.extraSecrets ?? [])].map((secret) => Stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp }).split(',')[1]!);
      headers['stripe-signature'] = [`t=${timestamp}`, ...v1].join(',');
    }
    const res = await fetch(url, { method: 'POST', headers, body: payload });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body };
  }

  /**
   * The signing secret of the (newest) webhook endpoint registered with this
   * URL or, failing that, with the same path: a server registers its public
   * URL, which is rarely the address a test reaches it at.
   */
  webhookSecretFor(endpointUrl: string, options: { livemode?: boolean } = {}): string {
    const candidates = [...this.store.webhookEndpoints.values()].reverse().filter((e) => options.livemode === undefined || e.livemode === options.livemode);
    const path = (url: string) => new URL(url).pathname;
    const endpoint = candidates.find((e) => e.url === endpointUrl) ?? candidates.find((e) => path(e.url) === path(endpointUrl));
    if (!endpoint) throw new Error(`fake-stripe: no webhook endpoint registered for ${endpointUrl}`);
    return this.webhookSecrets.get(endpoint.id)!;
  }

  /** Registered webhook endpoints (without secrets, as Stripe lists them). */
  endpoints(): Stripe.WebhookEndpoint[] {
    return [...this.store.webhookEndpoints.values()].map(clone);
  }

  // -------------------------------------------------------------------------
  // HTTP

  private readonly routes: Route[] = [
    route('GET', '/v1/account', 'account', (ctx) => this.account(ctx.key)),

    route('GET', '/v1/webhook_endpoints', 'webhook_endpoints', (ctx) =>
      this.list([...this.store.webhookEndpoints.values()].filter((e) => e.livemode === ctx.livemode).reverse(), ctx.params, '/v1/webhook_endpoints'),
    ),
    route('POST', '/v1/webhook_endpoints', 'webhook_endpoints', (ctx) => this.createWebhookEndpoint(ctx), ['url', 'enabled_events', 'api_version', 'description', 'metadata', 'connect']),
    route('GET', '/v1/webhook_endpoints/:id', 'webhook_endpoints', (ctx) => this.render(this.inMode(this.store.webhookEndpoints, 'webhook_endpoint', ctx), ctx)),
    route('POST', '/v1/webhook_endpoints/:id', 'webhook_endpoints', (ctx) => this.updateWebhookEndpoint(ctx), ['url', 'enabled_events', 'description', 'metadata', 'disabled']),
    route('DELETE', '/v1/webhook_endpoints/:id', 'webhook_endpoints', (ctx) => {
      const endpoint = this.inMode(this.store.webhookEndpoints, 'webhook_endpoint', ctx);
      this.store.webhookEndpoints.delete(endpoint.id);
      return { id: endpoint.id, object: 'webhook_endpoint', deleted: true };
    }),

    route('GET', '/v1/checkout/sessions/:id', 'checkout_sessions', (ctx) => this.render(this.inMode(this.store.sessions, 'checkout.session', ctx), ctx)),
    route('GET', '/v1/checkout/sessions/:id/line_items', 'checkout_sessions', (ctx) => {
      const session = this.inMode(this.store.sessions, 'checkout.session', ctx);
      return this.expandAll(this.list(this.sessionLineItems.get(session.id) ?? [], ctx.params, `/v1/checkout/sessions/${session.id}/line_items`), ctx.expand);
    }),

    route('GET', '/v1/subscriptions/:id', 'subscriptions', (ctx) => this.render(this.inMode(this.store.subscriptions, 'subscription', ctx), ctx)),
    route('POST', '/v1/subscriptions/:id', 'subscriptions', (ctx) => this.updateMetadata(this.inMode(this.store.subscriptions, 'subscription', ctx), ctx), ['metadata']),
    route('GET', '/v1/invoices/:id', 'invoices', (ctx) => this.render(this.inMode(this.store.invoices, 'invoice', ctx), ctx)),
    route('GET', '/v1/charges/:id', 'charges', (ctx) => this.render(this.inMode(this.store.charges, 'charge', ctx), ctx)),
    route('GET', '/v1/payment_intents/:id', 'payment_intents', (ctx) => this.render(this.inMode(this.store.paymentIntents, 'payment_intent', ctx), ctx)),
    route('POST', '/v1/payment_intents/:id', 'payment_intents', (ctx) => this.updateMetadata(this.inMode(this.store.paymentIntents, 'payment_intent', ctx), ctx), ['metadata', 'description']),
    route('GET', '/v1/prices/:id', 'prices', (ctx) => this.render(this.inMode(this.store.prices, 'price', ctx), ctx)),
    route('GET', '/v1/customers/:id', 'customers', (ctx) => this.render(this.inMode(this.store.customers, 'customer', ctx), ctx)),
    route('POST', '/v1/customers/:id', 'customers', (ctx) => this.updateMetadata(this.inMode(this.store.customers, 'customer', ctx), ctx), ['metadata', 'email', 'name']),
    route('GET', '/v1/disputes/:id', 'disputes', (ctx) => this.render(this.inMode(this.store.disputes, 'dispute', ctx), ctx)),
  ];

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const params = parseStripeForm(method === 'GET' || method === 'DELETE' ? url.search.slice(1) : Buffer.concat(chunks).toString('utf8'));
    const auth = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const keyString = auth?.[1]?.trim() ?? null;
    const idempotencyKey = header(req, 'idempotency-key');
    const record: RecordedRequest = { method, path: url.pathname, params, key: keyString, stripeVersion: header(req, 'stripe-version'), idempotencyKey, status: 0 };
    this.requests.push(record);

    let status = 200;
    let body: unknown;
    const replayKey = method === 'POST' && keyString && idempotencyKey ? `${keyString}\n${idempotencyKey}` : null;
    const failure = this.failures.find((f) => f.remaining > 0 && (!f.path || f.path.test(url.pathname)));
    if (failure) {
      // An outage, not an answer: never stored for idempotent replay.
      failure.remaining--;
      status = failure.status;
      body = { error: { type: status >= 500 ? 'api_error' : 'invalid_request_error', message: 'An unknown error occurred' } };
    } else if (replayKey && this.idempotent.has(replayKey)) {
      ({ status, body } = this.idempotent.get(replayKey)!);
    } else {
      try {
        body = this.dispatch(method, url.pathname, params, keyString);
      } catch (err) {
        // A bug in the fake answers like a Stripe outage, with the cause in the message, rather than hanging the request.
        status = err instanceof StripeHttpError ? err.status : 500;
        body = { error: err instanceof StripeHttpError ? err.error : { type: 'api_error', message: `fake-stripe: ${(err as Error).stack ?? String(err)}` } };
      }
      if (replayKey && status < 500) this.idempotent.set(replayKey, { status, body });
    }
    record.status = status;
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': newId('req'), 'stripe-version': record.stripeVersion ?? FAKE_STRIPE_API_VERSION });
    res.end(JSON.stringify(body));
  }

  private dispatch(method: string, path: string, params: FormParams, keyString: string | null): unknown {
    if (!keyString) {
      throw new StripeHttpError(401, {
        type: 'invalid_request_error',
        message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
      });
    }
    const key = this.keys.get(keyString);
    if (!key) throw new StripeHttpError(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${mask(keyString)}` });

    let match: RegExpExecArray | null = null;
    const found = this.routes.find((r) => r.method === method && (match = r.pattern.exec(path)));
    if (!found || !match) throw new StripeHttpError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` });

    const needed: Access = method === 'GET' ? 'read' : 'write';
    if (!allows(key.permissions, found.resource, needed)) {
      throw new StripeHttpError(403, {
        type: 'invalid_request_error',
        message: `The provided key '${mask(keyString)}' does not have the required permissions for this endpoint on account '${key.account}'. Having the 'rak_${RESOURCES[found.resource]}_${needed}' permission would allow this request to continue.`,
      });
    }

    const allowed = new Set<string>(['expand', ...(method === 'GET' ? LIST_PARAMS : found.accepts ?? [])]);
    const unknown = Object.keys(params).find((p) => !allowed.has(p));
    if (unknown) throw invalidRequest(`Received unknown parameter: ${unknown}`, { param: unknown });

    const expand = params.expand === undefined ? [] : Array.isArray(params.expand) ? params.expand.map(String) : [String(params.expand)];
    return found.handle({ key, id: decodeURIComponent((match as RegExpExecArray)[1] ?? ''), params, expand, livemode: key.mode === 'live' });
  }

  private account(key: KeyRecord): Stripe.Account {
    return {
      id: key.account,
      object: 'account',
      business_profile: { name: 'Fake Software Ltd', url: 'https://example.com' },
      business_type: 'company',
      charges_enabled: true,
      country: 'US',
      created: 1700000000,
      default_currency: 'usd',
      details_submitted: true,
      email: 'owner@example.com',
      metadata: {},
      payouts_enabled: true,
      settings: { dashboard: { display_name: 'Fake Software', timezone: 'Etc/UTC' } },
      type: 'standard',
    } as unknown as Stripe.Account;
  }

  private createWebhookEndpoint(ctx: RouteContext): Stripe.WebhookEndpoint {
    const url = requiredString(ctx.params, 'url');
    const events = stringList(ctx.params, 'enabled_events');
    if (events.length === 0) throw invalidRequest('Missing required param: enabled_events.', { param: 'enabled_events' });
    if ([...this.store.webhookEndpoints.values()].filter((e) => e.livemode === ctx.livemode).length >= 16) {
      throw invalidRequest(`You have reached the maximum of 16 ${ctx.livemode ? 'live' : 'test'} webhook endpoints.`);
    }
    const endpoint = fixture('webhook_endpoint');
    override(endpoint, {
      id: newId('we'),
      created: this.now(),
      url,
      enabled_events: events,
      api_version: optionalString(ctx.params, 'api_version') ?? null,
      description: optionalString(ctx.params, 'description') ?? null,
      metadata: mergeMetadata({}, metadataParam(ctx.params)),
      livemode: ctx.livemode,
      status: 'enabled',
    });
    this.store.webhookEndpoints.set(endpoint.id, endpoint);
    const secret = `whsec_${randomId(32)}`;
    this.webhookSecrets.set(endpoint.id, secret);
    // The secret is shown once, on creation, as in Stripe.
    return { ...clone(endpoint), secret };
  }

  private updateWebhookEndpoint(ctx: RouteContext): Stripe.WebhookEndpoint {
    const endpoint = this.inMode(this.store.webhookEndpoints, 'webhook_endpoint', ctx);
    const url = optionalString(ctx.params, 'url');
    if (url !== undefined) endpoint.url = url;
    if (ctx.params.enabled_events !== undefined) endpoint.enabled_events = stringList(ctx.params, 'enabled_events');
    const description = optionalString(ctx.params, 'description');
    if (description !== undefined) endpoint.description = description || null;
    const disabled = optionalString(ctx.params, 'disabled');
    if (disabled !== undefined) endpoint.status = disabled === 'true' ? 'disabled' : 'enabled';
    if (ctx.params.metadata !== undefined) endpoint.metadata = mergeMetadata(endpoint.metadata, metadataParam(ctx.params));
    return this.render(endpoint, ctx);
  }

  /** POST /v1/{customers,subscriptions,payment_intents}/:id — Stripe merges metadata; an empty value deletes a key, `metadata=` clears it. */
  private updateMetadata<T extends { metadata: Stripe.Metadata | null; id: string }>(object: T, ctx: RouteContext): unknown {
    if (ctx.params.metadata !== undefined) object.metadata = mergeMetadata(object.metadata ?? {}, metadataParam(ctx.params));
    for (const field of ['email', 'name', 'description'] as const) {
      const value = optionalString(ctx.params, field);
      if (value !== undefined) (object as Record<string, unknown>)[field] = value || null;
    }
    return this.render(object, ctx);
  }

  /** A stored object visible to this key: another mode's object is a 404, with Stripe's hint. */
  private inMode<T extends { id: string; livemode: boolean }>(map: Map<string, T>, kind: string, ctx: RouteContext): T {
    const object = map.get(ctx.id);
    if (!object) throw missing(kind, ctx.id);
    if (object.livemode !== ctx.livemode) {
      const [has, used] = object.livemode ? ['live', 'test'] : ['test', 'live'];
      throw missing(kind, ctx.id, `; a similar object exists in ${has} mode, but a ${used} mode key was used to make this request.`);
    }
    return object;
  }

  private render<T>(object: T, ctx: RouteContext): T {
    return this.expandAll(clone(object), ctx.expand);
  }

  // -------------------------------------------------------------------------
  // Expansion: `expand[]=customer`, `line_items`, `payments.data.payment.payment_intent`, `data.price.product` on lists

  private expandAll<T>(object: T, paths: string[]): T {
    for (const path of paths) this.expandPath(object as Record<string, unknown>, path.split('.'));
    return object;
  }

  private expandPath(object: Record<string, unknown>, [field, ...rest]: string[]): void {
    if (!field) return;
    if (object.object === 'list' && field === 'data') {
      for (const item of object.data as Record<string, unknown>[]) this.expandPath(item, rest);
      return;
    }
    let value = field in object ? object[field] : this.includable(object, field);
    if (value === undefined) throw invalidRequest(`This property cannot be expanded (${field}).`, { param: 'expand' });
    if (typeof value === 'string') {
      const found = this.find(value);
      if (!found) throw invalidRequest(`This property cannot be expanded (${field}).`, { param: 'expand' });
      value = clone(found);
    }
    object[field] = value;
    if (rest.length > 0 && value !== null && typeof value === 'object') this.expandPath(value as Record<string, unknown>, rest);
  }

  /** Lists Stripe leaves out unless expanded. */
  private includable(object: Record<string, unknown>, field: string): unknown {
    const id = object.id as string;
    const page = (data: unknown[], url: string) => ({ object: 'list', data: clone(data.slice(0, 10)), has_more: data.length > 10, url });
    if (object.object === 'checkout.session' && field === 'line_items') return page(this.sessionLineItems.get(id) ?? [], `/v1/checkout/sessions/${id}/line_items`);
    if (object.object === 'invoice' && field === 'payments') return page(this.invoicePayments.get(id) ?? [], `/v1/invoices/${id}/payments`);
    if (object.object === 'charge' && field === 'refunds') {
      return page([...this.store.refunds.values()].filter((r) => r.charge === id).reverse(), `/v1/charges/${id}/refunds`);
    }
    return undefined;
  }

  /** A page of a list, newest first, with Stripe's cursor parameters. */
  private list<T extends { id: string }>(items: T[], params: FormParams, url: string): Stripe.ApiList<T> {
    const limit = params.limit === undefined ? 10 : Number(params.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidRequest('Invalid limit: must be an integer between 1 and 100.', { param: 'limit' });
    let start = 0;
    let end = items.length;
    if (typeof params.starting_after === 'string') start = items.findIndex((i) => i.id === params.starting_after) + 1;
    if (typeof params.ending_before === 'string') end = Math.max(0, items.findIndex((i) => i.id === params.ending_before));
    const slice = typeof params.ending_before === 'string' ? items.slice(Math.max(start, end - limit), end) : items.slice(start, start + limit);
    const hasMore = typeof params.ending_before === 'string' ? end - limit > start : start + limit < end;
    return { object: 'list', data: slice.map(clone), has_more: hasMore, url };
  }

  // -------------------------------------------------------------------------
  // Internals

  private put<T extends { id: string }>(map: Map<string, T>, object: T): T {
    map.set(object.id, object);
    return clone(object);
  }

  private stored<T>(map: Map<string, T>, id: string): T {
    const object = map.get(id);
    if (!object) throw new Error(`fake-stripe: no such object ${id}`);
    return object;
  }

  private find(id: string): { id: string } | undefined {
    for (const map of Object.values(this.store) as Map<string, { id: string }>[]) {
      const found = map.get(id);
      if (found) return found;
    }
    return undefined;
  }

  private lineItem(input: LineItemInput): Stripe.LineItem {
    const price = this.stored(this.store.prices, refId(input.price));
    const quantity = input.quantity ?? 1;
    const amount = (price.unit_amount ?? 0) * quantity;
    const item = fixture('item');
    override(item, {
      id: newId('li'),
      price: clone(price),
      quantity,
      currency: price.currency,
      description: this.store.products.get(price.product as string)?.name ?? price.nickname ?? null,
      amount_subtotal: amount,
      amount_total: amount,
      amount_discount: 0,
      amount_tax: 0,
      metadata: {},
      adjustable_quantity: null,
    });
    return item;
  }

  private subscriptionItem(subscription: string, input: LineItemInput, start: number, end: number): Stripe.SubscriptionItem {
    const price = this.stored(this.store.prices, refId(input.price));
    const item = fixture('subscription_item');
    override(item, {
      id: newId('si'),
      created: this.now(),
      price: clone(price),
      quantity: input.quantity ?? 1,
      subscription,
      current_period_start: start,
      current_period_end: end,
      current_trial: null,
      metadata: {},
      billing_thresholds: null,
      plan: {
        ...item.plan,
        id: price.id,
        amount: price.unit_amount,
        amount_decimal: price.unit_amount_decimal,
        billing_scheme: 'per_unit',
        currency: price.currency,
        interval: price.recurring?.interval ?? 'month',
        interval_count: price.recurring?.interval_count ?? 1,
        livemode: price.livemode,
        metadata: { ...price.metadata },
        product: price.product,
        transform_usage: null,
      },
    });
    return item;
  }

  private invoiceLine(invoice: string, sub: Stripe.Subscription, item: Stripe.SubscriptionItem): Stripe.InvoiceLineItem {
    const amount = (item.price.unit_amount ?? 0) * (item.quantity ?? 1);
    const line = fixture('line_item');
    override(line, {
      id: newId('il'),
      invoice,
      amount,
      subtotal: amount,
      currency: item.price.currency,
      description: `${item.quantity ?? 1} × ${this.store.products.get(item.price.product as string)?.name ?? 'item'}`,
      livemode: sub.livemode,
      metadata: { ...sub.metadata },
      period: { start: item.current_period_start, end: item.current_period_end },
      quantity: item.quantity ?? 1,
      subscription: sub.id,
      parent: {
        type: 'subscription_item_details',
        invoice_item_details: null,
        subscription_item_details: { invoice_item: null, proration: false, proration_details: { credited_items: null }, subscription: sub.id, subscription_item: item.id },
      },
      pricing: { type: 'price_details', price_details: { price: item.price.id, product: item.price.product as string }, unit_amount_decimal: item.price.unit_amount_decimal },
    });
    return line;
  }

  /** A payment intent, and unless it is still `processing` a charge for it. */
  private payment(input: { amount: number; currency: string; customer: string | null; paid: boolean; pending: boolean; livemode: boolean; description: string | null }): Stripe.PaymentIntent {
    const pi = fixture('payment_intent');
    override(pi, {
      id: newId('pi'),
      created: this.now(),
      amount: input.amount,
      amount_received: 0,
      currency: input.currency,
      customer: input.customer,
      description: input.description,
      livemode: input.livemode,
      metadata: {},
      status: 'requires_payment_method',
      client_secret: null,
      canceled_at: null,
      last_payment_error: null,
      next_action: null,
      processing: null,
      transfer_data: null,
      latest_charge: null,
      payment_method_configuration_details: null,
    });
    this.store.paymentIntents.set(pi.id, pi);
    if (input.pending) {
      pi.status = 'processing';
      this.charge(pi, 'pending');
    } else if (input.paid) {
      this.settlePayment(pi, true);
    }
    return clone(pi);
  }

  private charge(pi: Stripe.PaymentIntent, status: 'succeeded' | 'failed' | 'pending'): Stripe.Charge {
    const customerEmail = pi.customer ? (this.store.customers.get(pi.customer as string)?.email ?? null) : null;
    const charge = fixture('charge');
    // Stale in the fixture: a charge no longer names its invoice, and refunds are includable only.
    dropStale(charge, 'invoice', 'refunds');
    override(charge, {
      id: newId('ch'),
      created: this.now(),
      amount: pi.amount,
      amount_captured: status === 'succeeded' ? pi.amount : 0,
      amount_refunded: 0,
      captured: status === 'succeeded',
      paid: status === 'succeeded',
      refunded: false,
      disputed: false,
      status,
      currency: pi.currency,
      customer: pi.customer,
      description: pi.description,
      livemode: pi.livemode,
      metadata: {},
      payment_intent: pi.id,
      payment_method: newId('pm'),
      balance_transaction: status === 'succeeded' ? newId('txn') : null,
      billing_details: { ...charge.billing_details, email: customerEmail },
      failure_code: status === 'failed' ? 'card_declined' : null,
      failure_message: status === 'failed' ? 'Your card was declined.' : null,
      outcome: { ...charge.outcome!, type: status === 'failed' ? 'issuer_declined' : 'authorized', network_status: 'approved_by_network' },
      receipt_url: `https://pay.stripe.com/receipts/payment/${randomId(40)}`,
      source: null,
      transfer_data: null,
    });
    this.store.charges.set(charge.id, charge);
    pi.latest_charge = charge.id;
    return charge;
  }

  /** Ends a payment attempt: succeeded (reusing a pending charge) or declined. */
  private settlePayment(pi: Stripe.PaymentIntent, succeeded: boolean): void {
    const pending = pi.latest_charge ? this.store.charges.get(pi.latest_charge as string) : undefined;
    const charge = pending?.status === 'pending' ? pending : this.charge(pi, succeeded ? 'succeeded' : 'failed');
    override(charge, {
      status: succeeded ? 'succeeded' : 'failed',
      paid: succeeded,
      captured: succeeded,
      amount_captured: succeeded ? charge.amount : 0,
      failure_code: succeeded ? null : 'card_declined',
      failure_message: succeeded ? null : 'Your card was declined.',
    });
    pi.status = succeeded ? 'succeeded' : 'requires_payment_method';
    pi.amount_received = succeeded ? pi.amount : 0;
    pi.last_payment_error = succeeded ? null : ({ type: 'card_error', code: 'card_declined', message: 'Your card was declined.', charge: charge.id } as Stripe.PaymentIntent.LastPaymentError);
  }

  private settleInvoice(invoice: Stripe.Invoice, paid: boolean): void {
    const payment = this.invoicePayments.get(invoice.id)?.[0];
    const pi = payment?.payment.payment_intent ? this.store.paymentIntents.get(payment.payment.payment_intent as string) : undefined;
    if (pi && pi.status !== 'succeeded') this.settlePayment(pi, paid);
    invoice.status = paid ? 'paid' : 'open';
    invoice.amount_paid = paid ? invoice.amount_due : 0;
    invoice.amount_remaining = paid ? 0 : invoice.amount_due;
    invoice.next_payment_attempt = paid ? null : this.now() + 3 * 86400;
    invoice.status_transitions = { finalized_at: invoice.created, marked_uncollectible_at: null, paid_at: paid ? this.now() : null, voided_at: null };
    if (payment) {
      payment.status = paid ? 'paid' : 'open';
      payment.amount_paid = paid ? invoice.amount_due : null;
      payment.status_transitions = { canceled_at: null, paid_at: paid ? this.now() : null };
    }
  }
}

export function startFakeStripe(options: { now?: () => number; accountId?: string } = {}): Promise<FakeStripe> {
  return FakeStripe.start(options);
}

// ---------------------------------------------------------------------------
// Helpers

function newId(prefix: string): string {
  return `${prefix}_${randomId(24)}`;
}

function randomId(length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join('');
}

function refId(ref: Ref): string {
  return typeof ref === 'string' ? ref : ref.id;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function header(req: http.IncomingMessage, name: string): string | null {
  const value = req.headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? null;
}

function missing(kind: string, id: string, hint = ''): StripeHttpError {
  return new StripeHttpError(404, {
    type: 'invalid_request_error',
    code: 'resource_missing',
    doc_url: 'https://stripe.com/docs/error-codes/resource-missing',
    message: `No such ${kind}: '${id}'${hint}`,
    param: 'id',
  });
}

function allows(permissions: KeyPermissions, resource: StripeResource, needed: Access): boolean {
  if (permissions === 'all') return true;
  const camel = resource.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()) as CamelCase<StripeResource>;
  const granted = permissions[resource] ?? permissions[camel] ?? 'write';
  const level: Access = granted === true ? 'write' : granted === false ? 'none' : granted;
  return needed === 'read' ? level !== 'none' : level === 'write';
}

/** Top-level fields that changed, with their old values: Stripe's `previous_attributes`. */
function diff<T extends object>(before: T, after: T): Partial<T> {
  const changed: Partial<T> = {};
  for (const field of Object.keys(before) as (keyof T)[]) {
    if (JSON.stringify(before[field]) !== JSON.stringify(after[field])) changed[field] = clone(before[field]);
  }
  return changed;
}

function mergeMetadata(current: Stripe.Metadata, update: Record<string, string> | ''): Stripe.Metadata {
  if (update === '') return {};
  const merged = { ...current };
  for (const [key, value] of Object.entries(update)) {
    if (value === '') delete merged[key];
    else merged[key] = value;
  }
  if (Object.keys(merged).length > 50) throw invalidRequest('Metadata can have at most 50 keys.', { param: 'metadata' });
  return merged;
}

/** `metadata[k]=v` pairs, or `metadata=` (clear all); Stripe's limits: keys ≤ 40 characters, values ≤ 500. */
function metadataParam(params: FormParams): Record<string, string> | '' {
  const value = params.metadata;
  if (value === undefined || value === '') return '';
  if (typeof value === 'string' || Array.isArray(value)) throw invalidRequest('Invalid metadata: must be an object.', { param: 'metadata' });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalidRequest(`Invalid metadata[${k}]: must be a string.`, { param: `metadata[${k}]` });
    if (k.length > 40) throw invalidRequest(`Invalid metadata[${k}]: keys must be at most 40 characters.`, { param: `metadata[${k}]` });
    if (v.length > 500) throw invalidRequest(`Invalid metadata[${k}]: values must be at most 500 characters.`, { param: `metadata[${k}]` });
    out[k] = v;
  }
  return out;
}

function requiredString(params: FormParams, name: string): string {
  const value = optionalString(params, name);
  if (!value) throw invalidRequest(`Missing required param: ${name}.`, { param: name });
  return value;
}

function optionalString(params: FormParams, name: string): string | undefined {
  const value = params[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidRequest(`Invalid ${name}: must be a string.`, { param: name });
  return value;
}

function stringList(params: FormParams, name: string): string[] {
  const value = params[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.some((v) => typeof v !== 'string')) throw invalidRequest(`Invalid array: ${name}.`, { param: name });
  return list as string[];
}

/** Calendar arithmetic, as Stripe bills (Jan 31 + 1 month = end of February). */
function addInterval(unix: number, interval: Stripe.Price.Recurring.Interval, count: number): number {
  const date = new Date(unix * 1000);
  if (interval === 'day') date.setUTCDate(date.getUTCDate() + count);
  else if (interval === 'week') date.setUTCDate(date.getUTCDate() + 7 * count);
  else {
    const day = date.getUTCDate();
    date.setUTCDate(1);
    date.setUTCMonth(date.getUTCMonth() + (interval === 'year' ? 12 * count : count));
    const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
    date.setUTCDate(Math.min(day, lastDay));
  }
  return Math.floor(date.getTime() / 1000);
}
