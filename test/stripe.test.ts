import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HANDLED_EVENTS, STRIPE_API_VERSION } from '../src/billing/stripe-client.js';
import { FakeStripe } from './support/fake-stripe.js';
import { startServer, type TestServer, waitFor } from './support/harness.js';

const DAY = 86_400;
const TEST_KEY = 'rk_test_keymintTestsRestrictedKey0001';
const LIVE_KEY = 'rk_live_keymintTestsRestrictedKey0001';


/** A connected Keymint with a fake Stripe, and helpers to deliver events and read their outcome. */
async function connectedServer(fake: FakeStripe, options: Parameters<typeof startServer>[0] = {}) {
  const server = await startServer({ ...options, env: { KEYMINT_STRIPE_API_URL: fake.url, ...options.env } });
  const connection = await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: TEST_KEY } });
  if (connection.status !== 200) throw new Error(JSON.stringify(connection.body));
  return withStripe(server, fake);
}

function withStripe(server: TestServer, fake: FakeStripe) {
  const registered = fake.endpoints().filter((e) => !e.livemode).at(-1)!;
  const webhookUrl = `${server.url}${new URL(registered.url).pathname}`;
  const secret = fake.webhookSecretFor(registered.url);
  const deliver = async (type: string, object: { id: string }, options: Parameters<FakeStripe['event']>[2] = {}) => {
    const event = fake.event(type, object, options);
    const res = await fake.send(webhookUrl, event, { secret });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return event;
  };
  const outcome = (eventId: string) =>
    waitFor(async () => {
      const res = await server.request('GET', `/v1/stripe/events/${eventId}`);
      return res.status === 200 && ['processed', 'ignored'].includes(res.body.status) ? res.body : undefined;
    });
  const validate = async (key: string) => (await server.request('POST', '/v1/licenses/validate', { key: null, body: { key } })).body;
  const license = async (id: string) => (await server.request('GET', `/v1/licenses/${id}`)).body;
  return { server, webhookUrl, secret, deliver, outcome, validate, license };
}

describe('Stripe connection', () => {
  let fake: FakeStripe;
  let server: TestServer;

  beforeAll(async () => {
    fake = await FakeStripe.start();
    fake.addKey(TEST_KEY, { mode: 'test' });
    fake.addKey(LIVE_KEY, { mode: 'live' });
    fake.addKey('rk_test_noWebhookPermission0001', { mode: 'test', permissions: { webhookEndpoints: false } });
    server = await startServer({ env: { KEYMINT_STRIPE_API_URL: fake.url, KEYMINT_PUBLIC_URL: 'https://licenses.example.com' } });
  });
  afterAll(async () => {
    await server?.close();
    await fake?.close();
  });

  it('is disconnected until a key is given', async () => {
    const res = await server.request('GET', '/v1/stripe/connection');
    expect(res.body).toMatchObject({ object: 'stripe_connection', status: 'disconnected', livemode: false, webhook_endpoint: null });
  });

  it('refuses a key of the other mode, a malformed key, an unknown key and a key without webhook permission', async () => {
    const mismatch = await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: LIVE_KEY } });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error).toMatchObject({ code: 'stripe_key_mode_mismatch', param: 'secret_key' });
    const testKeyOnLive = await server.request('PUT', '/v1/stripe/connection', { key: server.liveKey, body: { secret_key: TEST_KEY } });
    expect(testKeyOnLive.body.error.code).toBe('stripe_key_mode_mismatch');
    expect((await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: 'pk_test_123' } })).body.error.code).toBe('stripe_key_invalid');
    expect((await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: 'rk_test_unknownToStripe000001' } })).body.error.code).toBe('stripe_key_invalid');
    const noPermission = await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: 'rk_test_noWebhookPermission0001' } });
    expect(noPermission.status).toBe(400);
    expect(noPermission.body.error.code).toBe('stripe_permission_missing');
    expect(fake.endpoints()).toHaveLength(0);
  });

  it('registers one webhook endpoint with the pinned API version and exactly the handled events, and stores secrets encrypted', async () => {
    const res = await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: TEST_KEY } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'stripe_connection', status: 'connected', livemode: false, stripe_account: fake.accountId, api_version: STRIPE_API_VERSION });
    const [endpoint] = fake.endpoints();
    expect(endpoint).toMatchObject({ id: res.body.webhook_endpoint, url: `https://licenses.example.com/stripe/webhooks/${res.body.id}`, api_version: STRIPE_API_VERSION });
    expect([...endpoint!.enabled_events].sort()).toEqual([...HANDLED_EVENTS].sort());
    expect(JSON.stringify(res.body)).not.toContain(TEST_KEY);
    const rows = await server.db.kysely.selectFrom('stripe_connections').selectAll().execute();
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(TEST_KEY);
    expect(stored).not.toContain(fake.webhookSecretFor(endpoint!.url));
    const shown = await server.request('GET', '/v1/stripe/connection');
    expect(shown.body).toMatchObject({ status: 'connected', webhook_endpoint: endpoint!.id });
  });

  it('connecting again replaces the endpoint Keymint registered before', async () => {
    const before = fake.endpoints();
    const res = await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: TEST_KEY } });
    const after = fake.endpoints();
    expect(after).toHaveLength(1);
    expect(after[0]!.id).not.toBe(before[0]!.id);
    expect(after[0]!.url).toBe(before[0]!.url);
    expect(res.body.webhook_endpoint).toBe(after[0]!.id);
  });

  it('accepts events forwarded by `stripe listen` when its secret is given (test mode only)', async () => {
    const cliSecret = 'whsec_stripeCliForwardingSecret00001';
    const res = await server.request('PUT', '/v1/stripe/connection', { body: { secret_key: TEST_KEY, cli_webhook_secret: cliSecret } });
    expect(res.body.stripe_cli_forwarding).toBe(true);
    const event = fake.event('customer.created', fake.customer({ email: 'cli@example.com' }));
    const url = `${server.url}/stripe/webhooks/${res.body.id}`;
    expect((await fake.send(url, event, { secret: cliSecret })).status).toBe(200);
    expect((await fake.send(url, event, { secret: 'whsec_someOtherSecret0000000001' })).status).toBe(400);
    const live = await server.request('PUT', '/v1/stripe/connection', { key: server.liveKey, body: { secret_key: LIVE_KEY, cli_webhook_secret: cliSecret } });
    expect(live.status).toBe(400);
    expect(live.body.error.param).toBe('cli_webhook_secret');
  });

  it('disconnecting removes the endpoint from Stripe and forgets the credentials', async () => {
    const res = await server.request('DELETE', '/v1/stripe/connection');
    expect(res.body).toMatchObject({ status: 'disconnected', deleted: true });
    expect(fake.endpoints()).toHaveLength(0);
    expect(await server.db.kysely.selectFrom('stripe_connections').selectAll().execute()).toHaveLength(0);
  });
});

describe('Stripe webhooks', () => {
  let fake: FakeStripe;
  let s: ReturnType<typeof withStripe>;
  let policyId: string;
  let seatsPolicyId: string;

  beforeAll(async () => {
    fake = await FakeStripe.start();
    fake.addKey(TEST_KEY, { mode: 'test' });
    s = await connectedServer(fake);
    const product = await s.server.request('POST', '/v1/products', { body: { name: 'Editor' } });
    policyId = (await s.server.request('POST', '/v1/policies', { body: { product: product.body.id, name: 'Lifetime', license_type: 'perpetual', max_devices: 2 } })).body.id;
    seatsPolicyId = (await s.server.request('POST', '/v1/policies', { body: { product: product.body.id, name: 'Team', license_type: 'perpetual', max_devices: 2 } })).body.id;
  });
  afterAll(async () => {
    await s?.server.close();
    await fake?.close();
  });

  const mapped = async (quantity: 'licenses' | 'seats' = 'licenses', policy = policyId) => {
    const price = fake.price();
    const res = await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy, quantity } });
    expect(res.status).toBe(200);
    return price;
  };
  const storedEvents = async () => (await s.server.request('GET', '/v1/stripe/events?limit=100')).body.data as Array<{ id: string }>;

  it('refuses a bad signature, a stale timestamp and a mode mismatch with 400, storing nothing', async () => {
    const price = await mapped();
    const session = fake.checkoutSession({ mode: 'payment', email: 'x@example.com', lineItems: [{ price, quantity: 1 }] });
    const event = fake.event('checkout.session.completed', session);
    const bad = await fake.send(s.webhookUrl, event, { signature: 'bad' });
    const stale = await fake.send(s.webhookUrl, event, { secret: s.secret, timestamp: Math.floor(Date.now() / 1000) - 400 });
    const missing = await fake.send(s.webhookUrl, event, { signature: 'missing', secret: s.secret });
    const live = fake.event('checkout.session.completed', session, { livemode: true });
    const mismatch = await fake.send(s.webhookUrl, live, { secret: s.secret });
    for (const res of [bad, stale, missing, mismatch]) {
      expect(res.status).toBe(400);
      expect((res.body as any).error.type).toBe('invalid_request_error');
    }
    expect((mismatch.body as any).error.code).toBe('livemode_mismatch');
    const ids = (await storedEvents()).map((e) => e.id);
    expect(ids).not.toContain(event.id);
    expect(ids).not.toContain(live.id);
    expect((await fake.send(`${s.server.url}/stripe/webhooks/sconn_unknown`, event, { secret: s.secret })).status).toBe(404);
  });

  it('accepts a signature made with a rolled secret among several v1 values', async () => {
    const event = fake.event('customer.created', fake.customer({ email: 'roll@example.com' }));
    const res = await fake.send(s.webhookUrl, event, { secret: 'whsec_oldsecretnolongervalid', extraSecrets: [s.secret] });
    expect(res.status).toBe(200);
  });

  it('records an unknown event type as ignored, with why', async () => {
    const event = await s.deliver('customer.created', fake.customer({ email: 'c@example.com' }));
    const outcome = await s.outcome(event.id);
    expect(outcome).toMatchObject({ object: 'stripe_event', type: 'customer.created', status: 'ignored', outcome: { action: 'ignored' } });
    expect(outcome.outcome.reason).toContain('customer.created');
  });

  it('a paid one-time checkout creates a license per unit, emails nothing twice, links the Stripe objects and writes the ids back', async () => {
    const price = await mapped();
    const customer = fake.customer({ email: 'Buyer@Example.com', name: 'Buyer' });
    const session = fake.checkoutSession({ mode: 'payment', customer, email: 'buyer@example.com', lineItems: [{ price, quantity: 2 }] });
    const event = await s.deliver('checkout.session.completed', session);
    const outcome = await s.outcome(event.id);
    expect(outcome).toMatchObject({ status: 'processed', outcome: { action: 'created' } });
    expect(outcome.outcome.licenses).toHaveLength(2);
    for (const id of outcome.outcome.licenses) {
      const license = await s.license(id);
      expect(license).toMatchObject({
        policy: policyId,
        max_devices: 2,
        stripe: { customer: customer.id, checkout_session: session.id, payment_intent: session.payment_intent, price: price.id, subscription: null },
      });
      expect((await s.validate(license.key)).code).toBe('VALID');
    }
    const customers = await s.server.request('GET', '/v1/customers?email=buyer@example.com');
    expect(customers.body.data[0]).toMatchObject({ email: 'buyer@example.com', stripe_customer: customer.id });
    await waitFor(async () => fake.get<Stripe.PaymentIntent>(session.payment_intent as string).metadata?.keymint_license_ids);
    const written = fake.get<Stripe.PaymentIntent>(session.payment_intent as string).metadata!.keymint_license_ids!.split(',');
    expect(written.sort()).toEqual([...outcome.outcome.licenses].sort());
    await waitFor(async () => fake.get<Stripe.Customer>(customer.id).metadata?.keymint_license_ids);
  });

  it('a seats mapping makes one license whose device limit is multiplied by the quantity', async () => {
    const price = await mapped('seats', seatsPolicyId);
    const session = fake.checkoutSession({ mode: 'payment', email: 'team@example.com', lineItems: [{ price, quantity: 5 }] });
    const outcome = await s.outcome((await s.deliver('checkout.session.completed', session)).id);
    expect(outcome.outcome.licenses).toHaveLength(1);
    expect(await s.license(outcome.outcome.licenses[0])).toMatchObject({ max_devices: 10, customer: expect.stringMatching(/^ctm_/) });
  });

  it('falls back to the price metadata, and an explicit mapping wins over it', async () => {
    const byMetadata = fake.price({ metadata: { keymint_policy: policyId, keymint_max_devices: '7', keymint_entitlements: 'pro,sync' } });
    const overridden = fake.price({ metadata: { keymint_policy: 'pol_doesnotexist' } });
    await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: overridden.id, policy: seatsPolicyId, quantity: 'seats' } });
    const session = fake.checkoutSession({ mode: 'payment', email: 'meta@example.com', lineItems: [{ price: byMetadata, quantity: 1 }, { price: overridden, quantity: 3 }] });
    const outcome = await s.outcome((await s.deliver('checkout.session.completed', session)).id);
    expect(outcome.outcome.licenses).toHaveLength(2);
    const licenses = await Promise.all(outcome.outcome.licenses.map(s.license));
    expect(licenses.find((l) => l.stripe.price === byMetadata.id)).toMatchObject({ policy: policyId, max_devices: 7, entitlements: ['pro', 'sync'] });
    expect(licenses.find((l) => l.stripe.price === overridden.id)).toMatchObject({ policy: seatsPolicyId, max_devices: 6 });
  });

  it('an unmapped price is recorded as ignored, with why', async () => {
    const session = fake.checkoutSession({ mode: 'payment', email: 'nomap@example.com', lineItems: [{ price: fake.price(), quantity: 1 }] });
    const outcome = await s.outcome((await s.deliver('checkout.session.completed', session)).id);
    expect(outcome).toMatchObject({ status: 'ignored', outcome: { action: 'ignored', licenses: [] } });
    expect(outcome.outcome.ignored_items[0].reason).toContain('no price mapping');
  });

  it('the same event delivered 10 times at once makes one license and one fulfilment', async () => {
    const price = await mapped();
    const session = fake.checkoutSession({ mode: 'payment', email: 'dup@example.com', lineItems: [{ price, quantity: 1 }] });
    const event = fake.event('checkout.session.completed', session);
    const results = await Promise.all(Array.from({ length: 10 }, () => fake.send(s.webhookUrl, event, { secret: s.secret })));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => (r.body as any).duplicate === false)).toHaveLength(1);
    const outcome = await s.outcome(event.id);
    expect(outcome.outcome.licenses).toHaveLength(1);
    // Another event about the same session (a late async_payment_succeeded) finds it already fulfilled.
    const again = await s.outcome((await s.deliver('checkout.session.async_payment_succeeded', session)).id);
    expect(again.outcome).toMatchObject({ action: 'unchanged', licenses: outcome.outcome.licenses });
    const all = await s.server.request('GET', '/v1/licenses?email=dup@example.com');
    expect(all.body.data).toHaveLength(1);
    // Exactly one delivery email, sent (to the local mailbox here), with the key.
    const emails = await waitFor(async () => {
      const res = await s.server.request('GET', '/v1/emails?to=dup@example.com');
      return res.body.data.length && res.body.data.every((e: any) => e.status === 'sent') ? res.body.data : undefined;
    });
    expect(emails).toHaveLength(1);
    expect(emails[0]).toMatchObject({ kind: 'license_delivery', licenses: outcome.outcome.licenses });
  });

  it('a delayed payment waits for async_payment_succeeded; a failed one is recorded', async () => {
    const price = await mapped();
    const session = fake.checkoutSession({ mode: 'payment', email: 'sepa@example.com', lineItems: [{ price, quantity: 1 }], paymentStatus: 'unpaid' });
    const waiting = await s.outcome((await s.deliver('checkout.session.completed', session)).id);
    expect(waiting).toMatchObject({ status: 'ignored' });
    expect(waiting.outcome.reason).toContain('async_payment_succeeded');
    const settled = fake.settleCheckoutSession(session.id, 'paid');
    const paid = await s.outcome((await s.deliver('checkout.session.async_payment_succeeded', settled)).id);
    expect(paid.outcome.action).toBe('created');

    const other = fake.checkoutSession({ mode: 'payment', email: 'sepa2@example.com', lineItems: [{ price, quantity: 1 }], paymentStatus: 'unpaid' });
    const failed = await s.outcome((await s.deliver('checkout.session.async_payment_failed', fake.settleCheckoutSession(other.id, 'failed'))).id);
    expect(failed.outcome.reason).toContain('failed');
    expect((await s.server.request('GET', '/v1/licenses?email=sepa2@example.com')).body.data).toHaveLength(0);
  });

  it('a full refund revokes the licenses bought with that payment; a partial refund only records', async () => {
    const price = await mapped();
    const session = fake.checkoutSession({ mode: 'payment', email: 'refund@example.com', lineItems: [{ price, quantity: 1 }] });
    const [licenseId] = (await s.outcome((await s.deliver('checkout.session.completed', session)).id)).outcome.licenses;
    const key = (await s.license(licenseId)).key;
    const pi = fake.get<Stripe.PaymentIntent>(session.payment_intent as string);
    const chargeId = pi.latest_charge as string;
    const partial = fake.refund(chargeId, { amount: 100 });
    const recorded = await s.outcome((await s.deliver('charge.refunded', partial.charge)).id);
    expect(recorded).toMatchObject({ status: 'processed', outcome: { action: 'unchanged' } });
    expect(recorded.outcome.reason).toContain('partial');
    expect((await s.validate(key)).code).toBe('VALID');
    const full = fake.refund(chargeId);
    await s.outcome((await s.deliver('charge.refunded', full.charge)).id);
    expect((await s.validate(key)).code).toBe('REVOKED');
  });

  it('a dispute suspends; won reinstates; lost revokes', async () => {
    const price = await mapped();
    const buy = async (email: string) => {
      const session = fake.checkoutSession({ mode: 'payment', email, lineItems: [{ price, quantity: 1 }] });
      const [id] = (await s.outcome((await s.deliver('checkout.session.completed', session)).id)).outcome.licenses;
      return { key: (await s.license(id)).key, charge: fake.get<Stripe.PaymentIntent>(session.payment_intent as string).latest_charge as string };
    };
    const won = await buy('won@example.com');
    const dispute = fake.dispute(won.charge);
    await s.outcome((await s.deliver('charge.dispute.created', dispute)).id);
    expect((await s.validate(won.key)).code).toBe('SUSPENDED');
    await s.outcome((await s.deliver('charge.dispute.closed', fake.closeDispute(dispute.id, 'won').dispute)).id);
    expect((await s.validate(won.key)).code).toBe('VALID');

    const lost = await buy('lost@example.com');
    const d2 = fake.dispute(lost.charge);
    await s.outcome((await s.deliver('charge.dispute.created', d2)).id);
    await s.outcome((await s.deliver('charge.dispute.closed', fake.closeDispute(d2.id, 'lost').dispute)).id);
    expect((await s.validate(lost.key)).code).toBe('REVOKED');
  });

  it('Stripe answering 500 during processing: the event is retried and then correct', async () => {
    const price = await mapped();
    const session = fake.checkoutSession({ mode: 'payment', email: 'flaky@example.com', lineItems: [{ price, quantity: 1 }] });
    // Enough failures to exhaust the SDK's own retries on the first attempt.
    fake.failNext(3, { path: /checkout\/sessions/ });
    const event = await s.deliver('checkout.session.completed', session);
    const failedOnce = await waitFor(async () => {
      const res = await s.server.request('GET', `/v1/stripe/events/${event.id}`);
      return res.body.attempts >= 1 && (res.body.status === 'failed' || res.body.status === 'processed') ? res.body : undefined;
    });
    expect(['failed', 'processed']).toContain(failedOnce.status);
    const outcome = await s.outcome(event.id);
    expect(outcome).toMatchObject({ status: 'processed', error: null, outcome: { action: 'created' } });
    expect(outcome.attempts).toBeGreaterThanOrEqual(2);
    expect((await s.server.request('GET', '/v1/licenses?email=flaky@example.com')).body.data).toHaveLength(1);
  });

  it('an event ignored for want of a mapping can be retried once the price is mapped', async () => {
    const price = fake.price();
    const session = fake.checkoutSession({ mode: 'payment', email: 'later@example.com', lineItems: [{ price, quantity: 1 }] });
    const event = await s.deliver('checkout.session.completed', session);
    expect((await s.outcome(event.id)).status).toBe('ignored');
    await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy: policyId } });
    const retried = await s.server.request('POST', `/v1/stripe/events/${event.id}/retry`);
    expect(retried.status).toBe(200);
    const outcome = await waitFor(async () => {
      const res = await s.server.request('GET', `/v1/stripe/events/${event.id}`);
      return res.body.status === 'processed' ? res.body : undefined;
    });
    expect(outcome.outcome.action).toBe('created');
  });

  it('a key Stripe rejects fails the event at once, emits stripe.event_failed, and a retry after fixing it succeeds', async () => {
    const price = await mapped();
    const session = fake.checkoutSession({ mode: 'payment', email: 'revoked@example.com', lineItems: [{ price, quantity: 1 }] });
    fake.revokeKey(TEST_KEY);
    let event: Stripe.Event;
    try {
      event = await s.deliver('checkout.session.completed', session);
      const failed = await waitFor(async () => {
        const res = await s.server.request('GET', `/v1/stripe/events/${event.id}`);
        return res.body.status === 'failed' ? res.body : undefined;
      });
      expect(failed.error).toContain('reconnect');
      const notices = await waitFor(async () => {
        const res = await s.server.request('GET', '/v1/events?type=stripe.event_failed');
        return res.body.data.length ? res.body.data : undefined;
      });
      expect(notices[0].data.object).toMatchObject({ id: event.id, object: 'stripe_event', status: 'failed' });
    } finally {
      fake.addKey(TEST_KEY, { mode: 'test' });
    }
    await s.server.request('POST', `/v1/stripe/events/${event.id}/retry`);
    const outcome = await waitFor(async () => {
      const res = await s.server.request('GET', `/v1/stripe/events/${event.id}`);
      return res.body.status === 'processed' ? res.body : undefined;
    });
    expect(outcome.outcome.action).toBe('created');
  });

  it('validates price mappings: bad price ids, unknown policies, duplicates', async () => {
    const price = fake.price();
    expect((await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: 'prod_123', policy: policyId } })).status).toBe(400);
    expect((await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy: 'pol_missing' } })).status).toBe(404);
    expect((await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy: policyId, quantity: 'dozens' } })).status).toBe(400);
    const created = await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy: policyId, duration: '1y' } });
    expect(created.body).toMatchObject({ object: 'price_mapping', price: price.id, policy: policyId, quantity: 'licenses', duration: '1y' });
    expect((await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy: policyId } })).status).toBe(409);
    const deleted = await s.server.request('DELETE', `/v1/stripe/price_mappings/${created.body.id}`);
    expect(deleted.body).toEqual({ id: created.body.id, object: 'price_mapping', deleted: true });
    expect((await s.server.request('GET', `/v1/stripe/price_mappings/${created.body.id}`)).status).toBe(404);
  });
});

describe('Stripe subscriptions', () => {
  let fake: FakeStripe;
  let s: ReturnType<typeof withStripe>;
  let monthly: Stripe.Price;
  let yearly: Stripe.Price;
  let basicPolicy: string;
  let proPolicy: string;

  beforeAll(async () => {
    fake = await FakeStripe.start();
    fake.addKey(TEST_KEY, { mode: 'test' });
    s = await connectedServer(fake);
    const product = await s.server.request('POST', '/v1/products', { body: { name: 'Cloud' } });
    basicPolicy = (await s.server.request('POST', '/v1/policies', { body: { product: product.body.id, name: 'Basic', license_type: 'subscription', max_devices: 1, grace_period: '3d' } })).body.id;
    proPolicy = (
      await s.server.request('POST', '/v1/policies', {
        body: { product: product.body.id, name: 'Pro', license_type: 'subscription', max_devices: 2, grace_period: '3d', entitlements: ['pro'], on_payment_failure: 'suspend' },
      })
    ).body.id;
    monthly = fake.price({ recurring: { interval: 'month' } });
    yearly = fake.price({ recurring: { interval: 'year' } });
    await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: monthly.id, policy: basicPolicy, quantity: 'seats' } });
    await s.server.request('POST', '/v1/stripe/price_mappings', { body: { price: yearly.id, policy: proPolicy, quantity: 'seats' } });
  });
  afterAll(async () => {
    await s?.server.close();
    await fake?.close();
  });

  const subscribe = async (email: string, price = monthly, quantity = 1) => {
    const customer = fake.customer({ email });
    const periodEnd = s.server.clock.now() + 30 * DAY;
    const sub = fake.subscription({ customer, items: [{ price, quantity }], status: 'active', currentPeriodEnd: periodEnd });
    const session = fake.checkoutSession({ mode: 'subscription', customer, email, lineItems: [{ price, quantity }], subscription: sub });
    const outcome = await s.outcome((await s.deliver('checkout.session.completed', session)).id);
    const licenseId = outcome.outcome.licenses[0];
    return { sub, customer, periodEnd, licenseId, key: (await s.license(licenseId)).key as string };
  };

  it('a subscription checkout makes one license that expires at the period end plus grace', async () => {
    const { sub, periodEnd, licenseId } = await subscribe('sub@example.com');
    const license = await s.license(licenseId);
    expect(license).toMatchObject({ expires_at: periodEnd, grace_ends_at: periodEnd + 3 * DAY, policy: basicPolicy, stripe: { subscription: sub.id } });
    expect((await s.validate(license.key)).code).toBe('VALID');
  });

  it('invoice.paid for the next period extends the license; the key never changes', async () => {
    const { sub, licenseId, key } = await subscribe('renew@example.com');
    const nextEnd = s.server.clock.now() + 60 * DAY;
    fake.updateSubscription(sub.id, { currentPeriodEnd: nextEnd });
    const invoice = fake.invoice({ subscription: sub, paid: true });
    await s.outcome((await s.deliver('invoice.paid', invoice)).id);
    const license = await s.license(licenseId);
    expect(license.expires_at).toBe(nextEnd);
    expect(license.key).toBe(key);
  });

  it('quantity becomes seats; a price change moves to the mapped policy with the same key', async () => {
    const { sub, licenseId, key } = await subscribe('upgrade@example.com');
    const { subscription, previousAttributes } = fake.updateSubscription(sub.id, { quantity: 4 });
    await s.outcome((await s.deliver('customer.subscription.updated', subscription, { previousAttributes })).id);
    expect((await s.license(licenseId)).max_devices).toBe(4);
    const upgraded = fake.updateSubscription(sub.id, { price: yearly, quantity: 1 });
    await s.outcome((await s.deliver('customer.subscription.updated', upgraded.subscription, { previousAttributes: upgraded.previousAttributes })).id);
    const license = await s.license(licenseId);
    expect(license).toMatchObject({ policy: proPolicy, max_devices: 2, entitlements: ['pro'], key });
  });

  it('unpaid suspends, active again reinstates, cancel_at_period_end is noted', async () => {
    const { sub, licenseId, key } = await subscribe('status@example.com');
    const unpaid = fake.updateSubscription(sub.id, { status: 'unpaid' });
    await s.outcome((await s.deliver('customer.subscription.updated', unpaid.subscription)).id);
    expect((await s.validate(key)).code).toBe('SUSPENDED');
    const active = fake.updateSubscription(sub.id, { status: 'active', cancelAtPeriodEnd: true });
    await s.outcome((await s.deliver('customer.subscription.updated', active.subscription)).id);
    expect((await s.validate(key)).code).toBe('VALID');
    expect((await s.license(licenseId)).stripe.cancel_at_period_end).toBe(true);
  });

  it('deletion keeps access through the grace period, then REVOKED; a late update cannot undo it', async () => {
    const { sub, key } = await subscribe('cancel@example.com');
    const stale = fake.get<Stripe.Subscription>(sub.id);
    const ended = s.server.clock.now();
    const deleted = fake.updateSubscription(sub.id, { status: 'canceled', endedAt: ended, canceledAt: ended });
    await s.outcome((await s.deliver('customer.subscription.deleted', deleted.subscription)).id);
    expect((await s.validate(key)).code).toBe('VALID');
    // An out-of-order update carrying the old, active state arrives afterwards.
    await s.outcome((await s.deliver('customer.subscription.updated', stale)).id);
    const start = s.server.clock.now();
    try {
      s.server.clock.set(ended + 3 * DAY);
      expect((await s.validate(key)).code).toBe('REVOKED');
    } finally {
      s.server.clock.set(start);
    }
  });

  it('customer.subscription.updated before checkout.session.completed still makes exactly one license', async () => {
    const customer = fake.customer({ email: 'early@example.com' });
    const sub = fake.subscription({ customer, items: [{ price: monthly, quantity: 1 }], status: 'active', currentPeriodEnd: s.server.clock.now() + 30 * DAY });
    const early = await s.outcome((await s.deliver('customer.subscription.updated', sub)).id);
    expect(early.outcome.action).toBe('created');
    const session = fake.checkoutSession({ mode: 'subscription', customer, email: 'early@example.com', lineItems: [{ price: monthly, quantity: 1 }], subscription: sub });
    const late = await s.outcome((await s.deliver('checkout.session.completed', session)).id);
    expect(late.outcome.licenses).toEqual(early.outcome.licenses);
    expect((await s.server.request('GET', '/v1/licenses?email=early@example.com')).body.data).toHaveLength(1);
  });

  it('a failed payment keeps access by default; a suspending policy suspends until invoice.paid', async () => {
    const keep = await subscribe('keep@example.com');
    const failedInvoice = fake.invoice({ subscription: keep.sub, paid: false });
    const kept = await s.outcome((await s.deliver('invoice.payment_failed', failedInvoice)).id);
    expect(kept.outcome.action).toBe('unchanged');
    expect((await s.validate(keep.key)).code).toBe('VALID');

    const strict = await subscribe('strict@example.com', yearly);
    const inv = fake.invoice({ subscription: strict.sub, paid: false });
    await s.outcome((await s.deliver('invoice.payment_failed', inv)).id);
    expect((await s.validate(strict.key)).code).toBe('SUSPENDED');
    const paid = fake.payInvoice(inv.id);
    await s.outcome((await s.deliver('invoice.paid', paid)).id);
    expect((await s.validate(strict.key)).code).toBe('VALID');
  });

  it('a full refund of a subscription payment revokes its license when the policy says so (the default)', async () => {
    const { sub, key } = await subscribe('subrefund@example.com');
    const invoice = fake.invoice({ subscription: sub, paid: true });
    await s.outcome((await s.deliver('invoice.paid', invoice)).id);
    const full = await fake.client(TEST_KEY).invoices.retrieve(invoice.id!, { expand: ['payments'] });
    const payment = (full.payments?.data?.[0]?.payment?.payment_intent as string | undefined) ?? null;
    expect(payment).not.toBeNull();
    const charge = fake.get<Stripe.PaymentIntent>(payment!).latest_charge as string;
    await s.outcome((await s.deliver('charge.refunded', fake.refund(charge).charge)).id);
    expect((await s.validate(key)).code).toBe('REVOKED');
  });
});

describe('Stripe inbox durability', () => {
  it('an event stored by a process that stopped before processing it is processed exactly once after restart', async () => {
    const fake = await FakeStripe.start();
    fake.addKey(TEST_KEY, { mode: 'test' });
    const first = await connectedServer(fake, { worker: { start: false } });
    const product = await first.server.request('POST', '/v1/products', { body: { name: 'Tool' } });
    const policy = await first.server.request('POST', '/v1/policies', { body: { product: product.body.id, name: 'P', license_type: 'perpetual' } });
    const price = fake.price();
    await first.server.request('POST', '/v1/stripe/price_mappings', { body: { price: price.id, policy: policy.body.id } });
    const session = fake.checkoutSession({ mode: 'payment', email: 'crash@example.com', lineItems: [{ price, quantity: 1 }] });
    const event = await first.deliver('checkout.session.completed', session);
    expect((await first.server.request('GET', `/v1/stripe/events/${event.id}`)).body.status).toBe('pending');
    await first.server.app.close(); // the first process is gone; its database stays

    const second = withStripe(await startServer({ replicaOf: first.server, env: { KEYMINT_STRIPE_API_URL: fake.url } }), fake);
    const outcome = await second.outcome(event.id);
    expect(outcome.outcome.action).toBe('created');
    await new Promise((r) => setTimeout(r, 300));
    expect((await second.server.request('GET', '/v1/licenses?email=crash@example.com')).body.data).toHaveLength(1);
    expect((await second.server.request('GET', '/v1/jobs?type=stripe.process_event')).body.data).toHaveLength(1);
    await second.server.close();
    // The first app is closed already; this closes its database and drops it.
    await first.server.close();
    await fake.close();
  });
});
