import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedLicense, startServer, type TestServer } from './support/harness.js';

/**
 * `Idempotency-Key` on admin POSTs, with Stripe's semantics: a retry gets the
 * first response back instead of doing the work twice.
 */
describe('Idempotency-Key', () => {
  let server: TestServer;
  let policyId: string;
  let livePolicyId: string;

  const post = (path: string, body: unknown, idempotencyKey: string, key?: string) =>
    server.request('POST', path, { body, key, headers: { 'idempotency-key': idempotencyKey } });
  const licenseIds = async (key?: string) => ((await server.request('GET', '/v1/licenses?limit=100', { key })).body.data as { id: string }[]).map((l) => l.id);
  const createdEvents = async () => (await server.request('GET', '/v1/events?type=license.created&limit=100')).body.data.length as number;

  beforeAll(async () => {
    server = await startServer();
    policyId = (await seedLicense(server)).policy.id;
    livePolicyId = (await seedLicense(server, { key: server.liveKey })).policy.id;
  });
  afterAll(async () => {
    await server?.close();
  });

  it('replays the first response for the same key and body, and creates one object', async () => {
    const before = await licenseIds();
    const eventsBefore = await createdEvents();
    const body = { policy: policyId, customer: { email: 'retry@example.com' }, metadata: { order: '1001' } };
    const first = await post('/v1/licenses', body, 'create-1001');
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const second = await post('/v1/licenses', body, 'create-1001');
    expect(second.status).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('request-id')).toMatch(/^req_/);
    const third = await post('/v1/licenses', body, 'create-1001');
    expect(third.body.id).toBe(first.body.id);

    expect(await licenseIds()).toEqual([first.body.id, ...before]);
    expect(await createdEvents()).toBe(eventsBefore + 1);
  });

  it('treats the same parameters in another order, or with surrounding spaces, as the same request', async () => {
    const first = await post('/v1/products', { name: 'Ordered', code: 'ordered' }, 'order-insensitive');
    expect(first.status).toBe(200);
    const reordered = await post('/v1/products', { code: 'ordered', name: 'Ordered' }, 'order-insensitive');
    expect(reordered.status, JSON.stringify(reordered.body)).toBe(200);
    expect(reordered.headers.get('idempotent-replayed')).toBe('true');
    expect(reordered.body.id).toBe(first.body.id);
    const padded = await post('/v1/products', { name: ' Ordered ', code: 'ordered' }, 'order-insensitive');
    expect(padded.body.id).toBe(first.body.id);
  });

  it('answers 400 for the same key with a different body, or on another route, and does nothing', async () => {
    const before = await licenseIds();
    const first = await post('/v1/licenses', { policy: policyId, metadata: { order: '2001' } }, 'create-2001');
    expect(first.status).toBe(200);
    const different = await post('/v1/licenses', { policy: policyId, metadata: { order: '2002' } }, 'create-2001');
    expect(different.status).toBe(400);
    expect(different.body.error).toMatchObject({ type: 'invalid_request_error', code: 'idempotency_key_reused', param: 'Idempotency-Key' });
    expect(different.body.error.request_id).toBe(different.headers.get('request-id'));
    const otherRoute = await post('/v1/products', { name: 'Other' }, 'create-2001');
    expect(otherRoute.status).toBe(400);
    expect(otherRoute.body.error.code).toBe('idempotency_key_reused');
    const otherLicense = await post(`/v1/licenses/${first.body.id}/suspend`, undefined, 'create-2001');
    expect(otherLicense.status).toBe(400);

    expect(await licenseIds()).toEqual([first.body.id, ...before]);
    expect((await server.request('GET', `/v1/licenses/${first.body.id}`)).body.status).toBe('active');
    // The original request still replays.
    expect((await post('/v1/licenses', { policy: policyId, metadata: { order: '2001' } }, 'create-2001')).body.id).toBe(first.body.id);
  });

  it('keeps keys per environment', async () => {
    const inTest = await post('/v1/licenses', { policy: policyId }, 'shared-key');
    expect(inTest.status).toBe(200);
    // The same key in live is a new request there, even with another body.
    const inLive = await post('/v1/licenses', { policy: livePolicyId }, 'shared-key', server.liveKey);
    expect(inLive.status, JSON.stringify(inLive.body)).toBe(200);
    expect(inLive.headers.get('idempotent-replayed')).toBeNull();
    expect(inLive.body.livemode).toBe(true);
    expect(inLive.body.id).not.toBe(inTest.body.id);

    const testReplay = await post('/v1/licenses', { policy: policyId }, 'shared-key');
    expect(testReplay.headers.get('idempotent-replayed')).toBe('true');
    expect(testReplay.body.id).toBe(inTest.body.id);
    const liveReplay = await post('/v1/licenses', { policy: livePolicyId }, 'shared-key', server.liveKey);
    expect(liveReplay.headers.get('idempotent-replayed')).toBe('true');
    expect(liveReplay.body.id).toBe(inLive.body.id);
    expect(await licenseIds(server.liveKey)).toContain(inLive.body.id);
    expect(await licenseIds()).not.toContain(inLive.body.id);
  });

  it('does not burn the key on a request that fails validation', async () => {
    const invalid = await post('/v1/licenses', { policy: policyId, max_devices: 'three' }, 'create-3001');
    expect(invalid.status).toBe(400);
    expect(invalid.body.error).toMatchObject({ code: 'parameter_invalid', param: 'max_devices' });
    const missing = await post('/v1/licenses', {}, 'create-3001');
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe('parameter_missing');
    const valid = await post('/v1/licenses', { policy: policyId, max_devices: 3 }, 'create-3001');
    expect(valid.status).toBe(200);
    expect(valid.headers.get('idempotent-replayed')).toBeNull();
    expect(valid.body.max_devices).toBe(3);
  });

  it('does not burn the key on an unauthenticated request', async () => {
    const unauthenticated = await post('/v1/products', { name: 'Auth' }, 'auth-first', 'km_test_' + 'Z'.repeat(40));
    expect(unauthenticated.status).toBe(401);
    const ok = await post('/v1/products', { name: 'Auth' }, 'auth-first');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('idempotent-replayed')).toBeNull();
  });

  it('replays an error the request itself produced, as Stripe does', async () => {
    const first = await post('/v1/licenses', { policy: 'pol_missing' }, 'missing-policy');
    expect(first.status).toBe(404);
    expect(first.body.error).toMatchObject({ type: 'not_found_error', param: 'policy' });
    const again = await post('/v1/licenses', { policy: 'pol_missing' }, 'missing-policy');
    expect(again.status).toBe(404);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
  });

  it('replays an admin action instead of repeating it', async () => {
    const { license } = await seedLicense(server);
    const suspended = await post(`/v1/licenses/${license.id}/suspend`, undefined, `suspend-${license.id}`);
    expect(suspended.body.status).toBe('suspended');
    expect((await server.request('POST', `/v1/licenses/${license.id}/reinstate`)).body.status).toBe('active');
    const retried = await post(`/v1/licenses/${license.id}/suspend`, undefined, `suspend-${license.id}`);
    expect(retried.headers.get('idempotent-replayed')).toBe('true');
    expect(retried.body).toEqual(suspended.body);
    // The retry did not suspend the license again.
    expect((await server.request('GET', `/v1/licenses/${license.id}`)).body.status).toBe('active');
    const events = (await server.request('GET', `/v1/events?object=${license.id}&type=license.suspended`)).body.data;
    expect(events).toHaveLength(1);
  });

  it('creates one object when retries with one key race each other', async () => {
    const before = await licenseIds();
    const body = { policy: policyId, metadata: { order: 'race' } };
    const responses = await Promise.all(Array.from({ length: 8 }, () => post('/v1/licenses', body, 'race-key')));
    const ok = responses.filter((r) => r.status === 200);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.body.id)).size).toBe(1);
    for (const r of responses.filter((r) => r.status !== 200)) {
      expect(r.status).toBe(409);
      expect(r.body.error).toMatchObject({ type: 'conflict_error', code: 'idempotency_request_in_progress' });
    }
    expect(await licenseIds()).toEqual([ok[0]?.body.id, ...before]);
    // Once settled, every retry replays.
    expect((await post('/v1/licenses', body, 'race-key')).body.id).toBe(ok[0]?.body.id);
  });

  it('answers 400 for an empty or overlong key, and ignores the header on GET', async () => {
    for (const key of ['', 'k'.repeat(256)]) {
      const res = await post('/v1/products', { name: 'Bad key' }, key);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'idempotency_key_invalid', param: 'Idempotency-Key' });
    }
    expect((await post('/v1/products', { name: 'Long key' }, 'k'.repeat(255))).status).toBe(200);
    const get = await server.request('GET', '/v1/products', { headers: { 'idempotency-key': 'create-1001' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('idempotent-replayed')).toBeNull();
  });

  it('forgets a key after 24 hours', async () => {
    const first = await post('/v1/licenses', { policy: policyId }, 'day-old');
    const start = server.clock.now();
    try {
      server.clock.advance(24 * 3600 + 60);
      const later = await post('/v1/licenses', { policy: policyId, metadata: { second: 'yes' } }, 'day-old');
      expect(later.status).toBe(200);
      expect(later.headers.get('idempotent-replayed')).toBeNull();
      expect(later.body.id).not.toBe(first.body.id);
    } finally {
      server.clock.set(start);
    }
  });
});
