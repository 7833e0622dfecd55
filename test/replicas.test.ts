import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialectUnderTest, seedLicense, startServer, type TestServer } from './support/harness.js';

/** Two `keymint serve` processes on one PostgreSQL database, as in production. */
describe.runIf(dialectUnderTest === 'postgres')('two replicas on one PostgreSQL database', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    a = await startServer();
    b = await startServer({ replicaOf: a });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('share one rate limit per license key', async () => {
    const { license } = await seedLicense(a);
    const limitedA = await startServer({ rateLimit: 5, replicaOf: a });
    const limitedB = await startServer({ rateLimit: 5, replicaOf: a });
    const validate = (server: TestServer) => server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } });
    const statuses = [];
    for (const server of [limitedA, limitedB, limitedA, limitedB, limitedA]) statuses.push((await validate(server)).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    const sixth = await validate(limitedB);
    await limitedA.close();
    await limitedB.close();
    expect(sixth.status).toBe(429);
    expect(sixth.body.error.type).toBe('rate_limit_error');
    expect(Number(sixth.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('hold the device limit when activations race across both replicas', async () => {
    const { license } = await seedLicense(a, { policy: { max_devices: 3 } });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).request('POST', '/v1/licenses/activate', { key: null, body: { key: license.key, fingerprint: `m-${i % 10}` } })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(3);
    const devices = await a.request('GET', `/v1/licenses/${license.id}/devices?limit=100`);
    expect(devices.body.data).toHaveLength(3);
    // Every request for a fingerprint that got a seat answers with that one device; the rest are refused.
    for (const r of results) expect([200, 201, 409]).toContain(r.status);
  });
});
