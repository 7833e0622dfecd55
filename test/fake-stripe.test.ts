import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stripeClient } from '../src/billing/stripe-client.js';
import { FakeStripe, parseStripeForm, startFakeStripe } from './support/fake-stripe.js';

// The fake is only worth something if the real SDK accepts what it serves.

let fake: FakeStripe;
let stripe: Stripe;
const KEY = 'sk_test_fake_all';

beforeAll(async () => {
  fake = await startFakeStripe();
  fake.addKey(KEY);
  stripe = fake.client(KEY);
});
afterAll(() => fake.close());

describe('form bodies', () => {
  it('parse nested keys and both array spellings as Stripe does', () => {
    expect(parseStripeForm('metadata[license]=lic_1&metadata[tier]=pro&enabled_events[]=a&enabled_events[]=b&expand[0]=x&items[0][price]=p&items[0][quantity]=2&url=https%3A%2F%2Fx.test%2Fh')).toEqual({
      metadata: { license: 'lic_1', tier: 'pro' },
      enabled_events: ['a', 'b'],
      expand: ['x'],
      items: [{ price: 'p', quantity: '2' }],
      url: 'https://x.test/h',
    });
  });
});

describe('objects through the SDK', () => {
  it('a checkout session leaves out line items unless expanded', async () => {
    const price = fake.price({ metadata: { keymint_policy: 'pol_1' }, unitAmount: 1500 });
    const customer = fake.customer({ email: 'ada@example.com', name: 'Ada' });
    const created = fake.checkoutSession({ mode: 'payment', customer, email: 'ada@example.com', lineItems: [{ price, quantity: 2 }] });

    const plain = await stripe.checkout.sessions.retrieve(created.id);
    expect(plain.line_items).toBeUndefined();
    expect(plain.payment_status).toBe('paid');
    expect(plain.amount_total).toBe(3000);

    const expanded = await stripe.checkout.sessions.retrieve(created.id, { expand: ['line_items', 'payment_intent.latest_charge'] });
    expect(expanded.line_items?.data).toHaveLength(1);
    expect(expanded.line_items?.data[0]?.price?.metadata).toEqual({ keymint_policy: 'pol_1' });
    expect(expanded.line_items?.data[0]?.quantity).toBe(2);
    const pi = expanded.payment_intent as Stripe.PaymentIntent;
    expect(pi.status).toBe('succeeded');
    const charge = pi.latest_charge as Stripe.Charge;
    expect(charge.payment_intent).toBe(pi.id);
    expect(charge.paid).toBe(true);
    expect('invoice' in charge).toBe(false);
  });

  it('line items page with limit and starting_after, and auto-pagination reads them all', async () => {
    const prices = [1, 2, 3].map((n) => fake.price({ metadata: { n: String(n) } }));
    const session = fake.checkoutSession({ mode: 'payment', email: 'guest@example.com', lineItems: prices.map((price) => ({ price })) });
    expect(session.customer).toBeNull();

    const first = await stripe.checkout.sessions.listLineItems(session.id, { limit: 2 });
    expect(first.object).toBe('list');
    expect(first.data).toHaveLength(2);
    expect(first.has_more).toBe(true);
    const rest = await stripe.checkout.sessions.listLineItems(session.id, { limit: 2, starting_after: first.data[1]!.id });
    expect(rest.data).toHaveLength(1);
    expect(rest.has_more).toBe(false);

    const all = await stripe.checkout.sessions.listLineItems(session.id, { limit: 1 }).autoPagingToArray({ limit: 10 });
    expect(all.map((item) => item.price?.metadata.n)).toEqual(['1', '2', '3']);
  });

  it('a subscription checkout creates the subscription and an invoice linked the basil way', async () => {
    const price = fake.price({ recurring: { interval: 'month' }, metadata: { keymint_policy: 'pol_sub' } });
    const session = fake.checkoutSession({ mode: 'subscription', email: 'sub@example.com', lineItems: [{ price, quantity: 3 }] });
    expect(session.customer).toMatch(/^cus_/);

    const sub = await stripe.subscriptions.retrieve(session.subscription as string);
    expect(sub.status).toBe('active');
    expect(sub.items.data[0]?.quantity).toBe(3);
    expect(sub.items.data[0]?.current_period_end).toBeGreaterThan(sub.items.data[0]!.current_period_start);
    expect(sub.latest_invoice).toBe(session.invoice);

    const invoice = await stripe.invoices.retrieve(session.invoice as string);
    expect(invoice.parent?.subscription_details?.subscription).toBe(sub.id);
    expect('subscription' in invoice).toBe(false);
    expect(invoice.payments).toBeUndefined();
    expect(invoice.lines.data[0]?.parent?.subscription_item_details?.subscription_item).toBe(sub.items.data[0]?.id);

    const withPayments = await stripe.invoices.retrieve(invoice.id, { expand: ['payments.data.payment.payment_intent'] });
    const pi = withPayments.payments?.data[0]?.payment.payment_intent as Stripe.PaymentIntent;
    expect(pi.status).toBe('succeeded');
    const charge = await stripe.charges.retrieve(pi.latest_charge as string);
    expect(charge.amount).toBe(invoice.amount_paid);
  });

  it('a failed invoice, a later payment, refunds and disputes change the objects consistently', async () => {
    const customer = fake.customer({ email: 'late@example.com' });
    const price = fake.price({ recurring: { interval: 'year' }, unitAmount: 10000 });
    const sub = fake.subscription({ customer, items: [{ price }], status: 'active', currentPeriodEnd: 2_000_000_000 });

    const failed = fake.invoice({ subscription: sub, paid: false });
    expect(failed.status).toBe('open');
    const { subscription, previousAttributes } = fake.updateSubscription(sub.id, { status: 'past_due' });
    expect(subscription.status).toBe('past_due');
    expect(sub.latest_invoice).toBeNull();
    expect(fake.get<Stripe.Subscription>(sub.id).latest_invoice).toBe(failed.id);
    expect(previousAttributes).toEqual({ status: 'active' });

    const paid = fake.payInvoice(failed.id);
    expect(paid.status).toBe('paid');
    expect(fake.get<Stripe.Invoice>(paid.id).payments).toBeUndefined();
    expect(fake.get<Stripe.Invoice>(paid.id, { expand: ['payments'] }).payments?.data[0]?.status).toBe('paid');
    const expanded = await stripe.invoices.retrieve(paid.id, { expand: ['payments.data.payment.payment_intent.latest_charge'] });
    const charge = (expanded.payments?.data[0]?.payment.payment_intent as Stripe.PaymentIntent).latest_charge as Stripe.Charge;
    expect(charge.status).toBe('succeeded');

    const refunded = fake.refund(charge.id, { amount: 4000 });
    expect(refunded.charge).toMatchObject({ amount_refunded: 4000, refunded: false });
    expect(refunded.previousAttributes).toEqual({ amount_refunded: 0 });
    expect(fake.refund(charge.id).charge.refunded).toBe(true);
    const withRefunds = await stripe.charges.retrieve(charge.id, { expand: ['refunds'] });
    expect(withRefunds.refunds?.data.map((r) => r.amount)).toEqual([6000, 4000]);

    const dispute = fake.dispute(charge.id);
    expect((await stripe.disputes.retrieve(dispute.id)).status).toBe('needs_response');
    fake.closeDispute(dispute.id, 'lost');
    const closed = await stripe.disputes.retrieve(dispute.id, { expand: ['charge'] });
    expect(closed.status).toBe('lost');
    expect((closed.charge as Stripe.Charge).disputed).toBe(true);
  });

  it('metadata updates merge, and an empty value deletes a key', async () => {
    const customer = fake.customer({ email: 'meta@example.com', metadata: { keep: 'yes', drop: 'soon' } });
    const updated = await stripe.customers.update(customer.id, { metadata: { drop: '', keymint_customer: 'ctm_1' } });
    expect(updated.metadata).toEqual({ keep: 'yes', keymint_customer: 'ctm_1' });

    const session = fake.checkoutSession({ mode: 'payment', email: 'm@example.com', lineItems: [{ price: fake.price() }] });
    await stripe.paymentIntents.update(session.payment_intent as string, { metadata: { keymint_license: 'lic_1' } });
    expect(fake.get<Stripe.PaymentIntent>(session.payment_intent as string).metadata).toEqual({ keymint_license: 'lic_1' });
    const write = fake.requests.find((r) => r.method === 'POST' && r.path === `/v1/payment_intents/${session.payment_intent}`);
    expect(write?.params).toEqual({ metadata: { keymint_license: 'lic_1' } });
    expect(write?.stripeVersion).toBe(Stripe.API_VERSION);

    const sub = fake.subscription({ customer: fake.customer({ email: 's@example.com' }), items: [{ price: fake.price({ recurring: { interval: 'month' } }) }], status: 'active', currentPeriodEnd: 2_000_000_000 });
    const subUpdated = await stripe.subscriptions.update(sub.id, { metadata: { a: '1' } });
    expect(subUpdated.metadata).toEqual({ a: '1' });
  });

  it('unknown parameters are rejected as Stripe rejects them', async () => {
    const customer = fake.customer({ email: 'p@example.com' });
    await expect(stripe.customers.update(customer.id, { description: 'x' })).rejects.toMatchObject({ type: 'StripeInvalidRequestError', param: 'description' });
  });
});

describe('webhook endpoints', () => {
  it('create returns the secret once; list, update and delete work', async () => {
    const created = await stripe.webhookEndpoints.create({
      url: 'https://keymint.test/v1/stripe/webhooks',
      enabled_events: ['checkout.session.completed', 'invoice.paid'],
      api_version: Stripe.API_VERSION,
      metadata: { keymint_env: 'test' },
    });
    expect(created.secret).toMatch(/^whsec_/);
    expect(fake.webhookSecretFor('https://keymint.test/v1/stripe/webhooks')).toBe(created.secret);
    expect(fake.webhookSecretFor('http://127.0.0.1:1234/v1/stripe/webhooks')).toBe(created.secret);

    const fetched = await stripe.webhookEndpoints.retrieve(created.id);
    expect(fetched.secret).toBeUndefined();
    expect(fetched).toMatchObject({ api_version: Stripe.API_VERSION, enabled_events: ['checkout.session.completed', 'invoice.paid'], status: 'enabled', livemode: false });

    const updated = await stripe.webhookEndpoints.update(created.id, { enabled_events: ['invoice.paid'], disabled: true });
    expect(updated).toMatchObject({ enabled_events: ['invoice.paid'], status: 'disabled' });
    expect((await stripe.webhookEndpoints.list()).data.map((e) => e.id)).toContain(created.id);

    const deleted = await stripe.webhookEndpoints.del(created.id);
    expect(deleted.deleted).toBe(true);
    expect(fake.endpoints().map((e) => e.id)).not.toContain(created.id);
  });
});

describe('keys and failures', () => {
  it("Keymint's own client reaches the fake through KEYMINT_STRIPE_API_URL", async () => {
    const account = await stripeClient(KEY, fake.url).accounts.retrieveCurrent();
    expect(account.id).toBe(fake.accountId);
  });

  it('an unknown key is a StripeAuthenticationError', async () => {
    const err = await fake.client('sk_test_nobody').accounts.retrieveCurrent().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect((err as Stripe.errors.StripeError).statusCode).toBe(401);
  });

  it('a restricted key without webhook write is a StripePermissionError, and can still read', async () => {
    fake.addKey('rk_test_readonly', { permissions: { webhookEndpoints: 'read', customers: false } });
    const restricted = fake.client('rk_test_readonly');
    expect((await restricted.accounts.retrieveCurrent()).id).toBe(fake.accountId);
    await restricted.webhookEndpoints.list();
    const err = await restricted.webhookEndpoints.create({ url: 'https://x.test/h', enabled_events: ['invoice.paid'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripePermissionError);
    expect((err as Stripe.errors.StripeError).message).toContain('rak_webhook_write');
    await expect(restricted.customers.retrieve(fake.customer({ email: 'x@example.com' }).id)).rejects.toBeInstanceOf(Stripe.errors.StripePermissionError);
  });

  it('a live key does not see test objects', async () => {
    fake.addKey('sk_live_fake');
    const customer = fake.customer({ email: 'mode@example.com' });
    const err = await fake.client('sk_live_fake').customers.retrieve(customer.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect((err as Stripe.errors.StripeError).code).toBe('resource_missing');
    expect((err as Stripe.errors.StripeError).message).toContain('exists in test mode');
  });

  it('failNext answers 500s that the SDK raises as StripeAPIError, then recovers', async () => {
    const customer = fake.customer({ email: 'fail@example.com' });
    fake.failNext(1, { path: /^\/v1\/customers\// });
    const err = await stripe.customers.retrieve(customer.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
    expect((err as Stripe.errors.StripeError).statusCode).toBe(500);
    expect((await stripe.customers.retrieve(customer.id)).id).toBe(customer.id);
  });

  it('a POST retried by the SDK after a 500 carries one idempotency key and succeeds', async () => {
    const customer = fake.customer({ email: 'retry@example.com' });
    const retrying = fake.client(KEY, { maxNetworkRetries: 1 });
    fake.failNext(1, { path: new RegExp(`^/v1/customers/${customer.id}$`) });
    const before = fake.requests.length;
    await retrying.customers.update(customer.id, { metadata: { n: '1' } });
    const attempts = fake.requests.slice(before);
    expect(attempts.map((r) => r.status)).toEqual([500, 200]);
    expect(attempts[0]!.idempotencyKey).toBeTruthy();
    expect(attempts[1]!.idempotencyKey).toBe(attempts[0]!.idempotencyKey);
  });
});

describe('events', () => {
  let receiver: http.Server;
  let receiverUrl: string;
  const SECRET = 'whsec_test_receiver_secret';
  const OLD_SECRET = 'whsec_test_receiver_old';

  beforeAll(async () => {
    // A receiver that verifies as Keymint does: the SDK on the raw body.
    receiver = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      try {
        const event = Stripe.webhooks.constructEvent(Buffer.concat(chunks), String(req.headers['stripe-signature']), SECRET);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: event.id, type: event.type }));
      } catch (err) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: (err as Error).message }));
      }
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it('an event has the full envelope at the pinned API version', () => {
    const customer = fake.customer({ email: 'evt@example.com' });
    const event = fake.event('customer.updated', customer, { previousAttributes: { email: 'old@example.com' } });
    expect(event).toMatchObject({ object: 'event', api_version: Stripe.API_VERSION, livemode: false, type: 'customer.updated', request: { id: null, idempotency_key: null } });
    expect(event.id).toMatch(/^evt_/);
    expect(event.data.object).toEqual(customer);
    expect(event.data.previous_attributes).toEqual({ email: 'old@example.com' });
  });

  it('a signed event verifies with constructEvent; a bad signature and a stale timestamp do not', async () => {
    const session = fake.checkoutSession({ mode: 'payment', email: 'hook@example.com', lineItems: [{ price: fake.price() }] });
    const event = fake.event('checkout.session.completed', session);

    expect(await fake.send(receiverUrl, event, { secret: SECRET })).toEqual({ status: 200, body: { received: event.id, type: 'checkout.session.completed' } });

    const bad = await fake.send(receiverUrl, event, { secret: SECRET, signature: 'bad' });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/No signatures found matching/);

    const stale = await fake.send(receiverUrl, event, { secret: SECRET, timestamp: Math.floor(Date.now() / 1000) - 301 });
    expect(stale.status).toBe(400);
    expect(stale.body.error).toMatch(/Timestamp outside the tolerance zone/);

    const missing = await fake.send(receiverUrl, event, { secret: SECRET, signature: 'missing' });
    expect(missing.status).toBe(400);
  });

  it('while a secret is rolled the header carries a v1 for each, and either verifies', async () => {
    const event = fake.event('invoice.paid', { id: 'in_x', livemode: false });
    const rolled = await fake.send(receiverUrl, event, { secret: OLD_SECRET, extraSecrets: [SECRET] });
    expect(rolled.status).toBe(200);
  });
});
