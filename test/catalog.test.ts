import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from './support/harness.js';

describe('products, policies, customers and licenses', () => {
  let server: TestServer;
  let productId: string;

  beforeAll(async () => {
    server = await startServer();
    productId = (await server.request('POST', '/v1/products', { body: { name: 'Studio', code: 'studio', metadata: { tier: 'gold' } } })).body.id;
  });
  afterAll(async () => {
    await server?.close();
  });

  const createPolicy = (body: Record<string, unknown>) => server.request('POST', '/v1/policies', { body: { product: productId, name: 'P', ...body } });

  it('product ids are prefixed and never collide with Stripe prefixes; products are found by id or code', async () => {
    const product = await server.request('GET', '/v1/products/studio');
    expect(product.body).toMatchObject({ id: productId, object: 'product', name: 'Studio', code: 'studio', perpetual_fallback: false, metadata: { tier: 'gold' }, livemode: false });
    expect(productId).toMatch(/^pdt_[0-9a-z]{26}$/);
    for (const stripePrefix of ['cus_', 'prod_', 'price_', 'sub_', 'in_', 'ch_', 'pi_', 'cs_', 'evt_', 'we_']) expect(productId.startsWith(stripePrefix)).toBe(false);
  });

  it('a product code is unique per environment (409), but the other environment may reuse it', async () => {
    const dup = await server.request('POST', '/v1/products', { body: { name: 'Other', code: 'studio' } });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatchObject({ type: 'conflict_error', code: 'product_code_taken', param: 'code' });
    const live = await server.request('POST', '/v1/products', { key: server.liveKey, body: { name: 'Studio', code: 'studio' } });
    expect(live.status).toBe(200);
    expect(live.body.livemode).toBe(true);
  });

  it('updates a product and merges its metadata', async () => {
    const updated = await server.request('POST', `/v1/products/${productId}`, { body: { perpetual_fallback: true, metadata: { region: 'eu' } } });
    expect(updated.body).toMatchObject({ perpetual_fallback: true, metadata: { tier: 'gold', region: 'eu' } });
    await server.request('POST', `/v1/products/${productId}`, { body: { perpetual_fallback: false } });
  });

  it('checks that a policy makes sense for its type', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ license_type: 'perpetual', duration: '1y' }, 'duration'],
      [{ license_type: 'timed' }, 'duration'],
      [{ license_type: 'timed', duration: '1y', expires_at: 2_000_000_000 }, 'duration'],
      [{ license_type: 'subscription', expires_at: 2_000_000_000 }, 'expires_at'],
      [{ license_type: 'perpetual', heartbeat_interval: 60 }, 'heartbeat_interval'],
      [{ license_type: 'timed', duration: '1 year' }, 'duration'],
      [{ license_type: 'perpetual', max_devices: 0 }, 'max_devices'],
      [{ license_type: 'lifetime' }, 'license_type'],
    ];
    for (const [body, param] of cases) {
      const res = await createPolicy(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.param, JSON.stringify(body)).toBe(param);
    }
    expect((await server.request('GET', `/v1/policies?product=${productId}`)).body.data).toHaveLength(0);
  });

  it('a floating policy gets a default heartbeat interval; a policy for an unknown product is 404', async () => {
    const floating = await createPolicy({ license_type: 'subscription', floating: true, max_devices: 5 });
    expect(floating.body).toMatchObject({ floating: true, heartbeat_interval: 600, max_devices: 5, license_type: 'subscription' });
    const missing = await server.request('POST', '/v1/policies', { body: { product: 'pdt_nope', name: 'x', license_type: 'perpetual' } });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ type: 'not_found_error', param: 'product' });
  });

  it('timed licenses expire by duration from creation or on the policy fixed date; maintenance runs from creation', async () => {
    const byDuration = await createPolicy({ license_type: 'timed', duration: '2w', maintenance_period: '1y' });
    const lic = await server.request('POST', '/v1/licenses', { body: { policy: byDuration.body.id } });
    expect(lic.body.expires_at).toBe(lic.body.created + 14 * 86_400);
    expect(lic.body.maintenance_ends_at).toBeGreaterThan(lic.body.created + 364 * 86_400);
    const fixed = await createPolicy({ license_type: 'timed', expires_at: 2_000_000_000 });
    const lic2 = await server.request('POST', '/v1/licenses', { body: { policy: fixed.body.id } });
    expect(lic2.body.expires_at).toBe(2_000_000_000);
  });

  it('renewing a perpetual license with a maintenance period extends maintenance, not expiry', async () => {
    const policy = await createPolicy({ license_type: 'perpetual', maintenance_period: '1y' });
    const lic = await server.request('POST', '/v1/licenses', { body: { policy: policy.body.id } });
    const renewed = await server.request('POST', `/v1/licenses/${lic.body.id}/renew`);
    expect(renewed.status).toBe(200);
    expect(renewed.body.expires_at).toBeNull();
    expect(renewed.body.maintenance_ends_at).toBeGreaterThan(lic.body.maintenance_ends_at + 364 * 86_400);
    const bare = await createPolicy({ license_type: 'perpetual' });
    const lic2 = await server.request('POST', '/v1/licenses', { body: { policy: bare.body.id } });
    const refused = await server.request('POST', `/v1/licenses/${lic2.body.id}/renew`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.param).toBe('duration');
  });

  it('a license with a customer email creates that customer once, whatever the case of the email', async () => {
    const policy = await createPolicy({ license_type: 'perpetual' });
    const results = await Promise.all(
      ['Ada@Example.com', 'ada@example.com', ' ADA@example.com '].map((email) =>
        server.request('POST', '/v1/licenses', { body: { policy: policy.body.id, customer: { email, name: 'Ada' } } }),
      ),
    );
    expect(new Set(results.map((r) => r.body.customer)).size).toBe(1);
    const customers = await server.request('GET', '/v1/customers?email=ADA@EXAMPLE.COM');
    expect(customers.body.data).toHaveLength(1);
    expect(customers.body.data[0]).toMatchObject({ object: 'customer', email: 'ada@example.com', name: 'Ada' });
    const byEmail = await server.request('GET', '/v1/licenses?email=ada@example.com');
    expect(byEmail.body.data).toHaveLength(3);
    const created = await server.request('GET', `/v1/events?type=customer.created&object=${customers.body.data[0].id}`);
    expect(created.body.data).toHaveLength(1);
  });

  it('creates customers directly, refuses duplicates, and links licenses by customer id', async () => {
    const c = await server.request('POST', '/v1/customers', { body: { email: 'grace@example.com', name: 'Grace' } });
    expect(c.status).toBe(200);
    expect((await server.request('POST', '/v1/customers', { body: { email: 'GRACE@example.com' } })).status).toBe(409);
    const policy = await createPolicy({ license_type: 'perpetual' });
    const lic = await server.request('POST', '/v1/licenses', { body: { policy: policy.body.id, customer: c.body.id } });
    expect(lic.body.customer).toBe(c.body.id);
    const missing = await server.request('POST', '/v1/licenses', { body: { policy: policy.body.id, customer: 'ctm_missing' } });
    expect(missing.status).toBe(404);
    expect(missing.body.error.param).toBe('customer');
    expect((await server.request('GET', `/v1/licenses?customer=${c.body.id}`)).body.data).toHaveLength(1);
  });

  it('the admin view re-derives the same key every time; the key is never stored', async () => {
    const policy = await createPolicy({ license_type: 'perpetual' });
    const lic = await server.request('POST', '/v1/licenses', { body: { policy: policy.body.id } });
    const again = await server.request('GET', `/v1/licenses/${lic.body.id}`);
    expect(again.body.key).toBe(lic.body.key);
    expect(lic.body.key).toMatch(/^KM1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const claims = JSON.parse(Buffer.from(lic.body.key.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({ v: 1, lid: lic.body.id, pid: productId, env: 'test', iat: lic.body.created });
    const rows = await server.db.kysely.selectFrom('licenses').selectAll().where('id', '=', lic.body.id).execute();
    expect(JSON.stringify(rows)).not.toContain(lic.body.key.split('.')[2]);
    const events = await server.db.kysely.selectFrom('events').select('data').where('object_id', '=', lic.body.id).execute();
    expect(JSON.stringify(events)).not.toContain(lic.body.key.split('.')[2]);
    // …but the event log shows the license as the admin API does, key included.
    const shown = await server.request('GET', `/v1/events?object=${lic.body.id}`);
    expect(shown.body.data[0].data.object.key).toBe(lic.body.key);
  });

  it('signing keys are sealed at rest and the generated master key is private to its owner', async () => {
    const rows = await server.db.kysely.selectFrom('signing_keys').selectAll().execute();
    expect(rows.length).toBe(2);
    for (const row of rows) expect(row.private_key_sealed).toMatch(/^v1\./);
    const stat = fs.statSync(path.join(server.config.dataDir, 'master.key'));
    expect(stat.mode & 0o777).toBe(0o600);
  });

  it('serves the OpenAPI document generated from the route schemas, and a docs page', async () => {
    const doc = await server.request('GET', '/openapi.json', { key: null });
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    for (const p of ['/v1/licenses/validate', '/v1/licenses/activate', '/v1/licenses', '/v1/policies', '/v1/products/{id}', '/v1/signing_keys']) {
      expect(Object.keys(doc.body.paths)).toContain(p);
    }
    expect(doc.body.paths['/v1/licenses/validate'].post.requestBody.content['application/json'].schema.required).toContain('key');
    const page = await fetch(`${server.url}/docs/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
  });
});
