import { createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedLicense, startServer, type Response, type TestServer } from './support/harness.js';

/**
 * Test and live are two worlds under one account: the secret key decides which
 * one a request sees, and a license key only validates in the world that
 * signed it.
 */

function expectNotFound(res: Response) {
  expect(res.status, JSON.stringify(res.body)).toBe(404);
  expect(res.body.error).toMatchObject({ type: 'not_found_error' });
  expect(res.body.error.request_id).toBe(res.headers.get('request-id'));
}

/** Builds a `KM1.` key from claims, signed as API.md fixes it: Ed25519 over the ASCII bytes "KM1.<payload>". */
function signKey(claims: Record<string, unknown>, privateKey: KeyObject): string {
  const signed = `KM1.${Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url')}`;
  return `${signed}.${sign(null, Buffer.from(signed, 'ascii'), privateKey).toString('base64url')}`;
}

function claimsOf(key: string): Record<string, unknown> {
  const [, payload] = key.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8'));
}

/** Checks a license key offline against a listed signing key, the way a vendor's app would. */
function verifiesAgainst(key: string, signingKey: { public_key: string; public_key_pem: string }): boolean {
  const [prefix, payload, signature] = key.split('.');
  const publicKey = createPublicKey(signingKey.public_key_pem);
  return verify(null, Buffer.from(`${prefix}.${payload}`, 'ascii'), publicKey, Buffer.from(signature ?? '', 'base64url'));
}

describe('test and live environments', () => {
  let server: TestServer;
  let live: Awaited<ReturnType<typeof seedLicense>>;
  let liveCustomer: any;
  let test: Awaited<ReturnType<typeof seedLicense>>;

  const asTest = (method: string, path: string, body?: unknown) => server.request(method, path, { key: server.testKey, body });
  const asLive = (method: string, path: string, body?: unknown) => server.request(method, path, { key: server.liveKey, body });
  const validate = (body: Record<string, unknown>) => server.request('POST', '/v1/licenses/validate', { key: null, body });

  beforeAll(async () => {
    server = await startServer();
    live = await seedLicense(server, {
      key: server.liveKey,
      product: { name: 'Live Editor', code: 'editor' },
      policy: { license_type: 'timed', duration: '1y' },
      license: { customer: { email: 'live@example.com', name: 'Live Customer' } },
    });
    liveCustomer = (await asLive('GET', `/v1/customers/${live.license.customer}`)).body;
    test = await seedLicense(server, { key: server.testKey, product: { name: 'Test Editor' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('marks objects with the environment that created them', async () => {
    expect(live.product.livemode).toBe(true);
    expect(live.policy.livemode).toBe(true);
    expect(live.license.livemode).toBe(true);
    expect(liveCustomer).toMatchObject({ object: 'customer', email: 'live@example.com', livemode: true });
    expect(test.license.livemode).toBe(false);
  });

  it('answers 404 to the test key for every live object, as if it did not exist', async () => {
    const { product, policy, license } = live;
    expectNotFound(await asTest('GET', `/v1/products/${product.id}`));
    expectNotFound(await asTest('GET', '/v1/products/editor'));
    expectNotFound(await asTest('POST', `/v1/products/${product.id}`, { name: 'Hijacked' }));
    expectNotFound(await asTest('GET', `/v1/policies/${policy.id}`));
    expectNotFound(await asTest('POST', `/v1/policies/${policy.id}`, { name: 'Hijacked' }));
    expectNotFound(await asTest('GET', `/v1/customers/${liveCustomer.id}`));
    expectNotFound(await asTest('POST', `/v1/customers/${liveCustomer.id}`, { name: 'Hijacked' }));
    expectNotFound(await asTest('GET', `/v1/licenses/${license.id}`));
    expectNotFound(await asTest('POST', `/v1/licenses/${license.id}`, { metadata: { hijacked: 'yes' } }));
    expectNotFound(await asTest('GET', `/v1/licenses/${license.id}/devices`));
    for (const action of ['suspend', 'reinstate', 'revoke', 'renew']) {
      expectNotFound(await asTest('POST', `/v1/licenses/${license.id}/${action}`));
    }

    // Nothing changed on the live side.
    expect((await asLive('GET', `/v1/products/${product.id}`)).body.name).toBe('Live Editor');
    expect((await asLive('GET', `/v1/policies/${policy.id}`)).body.name).toBe('Standard');
    expect((await asLive('GET', `/v1/customers/${liveCustomer.id}`)).body.name).toBe('Live Customer');
    const after = (await asLive('GET', `/v1/licenses/${license.id}`)).body;
    expect(after).toMatchObject({ status: 'active', metadata: {}, expires_at: license.expires_at });
    const liveEvents = (await asLive('GET', `/v1/events?object=${license.id}`)).body.data;
    expect(liveEvents.map((e: { type: string }) => e.type)).toEqual(['license.created']);
  });

  it("answers 404 to the test key for a live license's devices", async () => {
    const activated = await server.request('POST', '/v1/licenses/activate', { key: null, body: { key: live.license.key, fingerprint: 'live-machine' } });
    expect(activated.status).toBe(201);
    expectNotFound(await asTest('GET', `/v1/licenses/${live.license.id}/devices`));
    expectNotFound(await asTest('DELETE', `/v1/devices/${activated.body.id}`));
    const devices = (await asLive('GET', `/v1/licenses/${live.license.id}/devices`)).body.data;
    expect(devices.map((d: { id: string }) => d.id)).toEqual([activated.body.id]);
    expect((await asLive('DELETE', `/v1/devices/${activated.body.id}`)).body).toEqual({ id: activated.body.id, object: 'device', deleted: true });
  });

  it('answers 404 when a test object refers to a live one', async () => {
    const policy = await asTest('POST', '/v1/policies', { product: live.product.id, name: 'Cross', license_type: 'perpetual' });
    expectNotFound(policy);
    expect(policy.body.error.param).toBe('product');
    const license = await asTest('POST', '/v1/licenses', { policy: live.policy.id });
    expectNotFound(license);
    expect(license.body.error.param).toBe('policy');
    const withCustomer = await asTest('POST', '/v1/licenses', { policy: test.policy.id, customer: liveCustomer.id });
    expectNotFound(withCustomer);
    expect(withCustomer.body.error.param).toBe('customer');
  });

  it('keeps live objects out of every test list, and test objects out of every live list', async () => {
    const ids = async (as: typeof asTest, path: string) => ((await as('GET', path)).body.data as { id: string }[]).map((o) => o.id);
    expect(await ids(asTest, '/v1/products?limit=100')).toEqual([test.product.id]);
    expect(await ids(asLive, '/v1/products?limit=100')).toEqual([live.product.id]);
    expect(await ids(asTest, '/v1/policies?limit=100')).toEqual([test.policy.id]);
    expect(await ids(asTest, `/v1/policies?product=${live.product.id}`)).toEqual([]);
    expect(await ids(asTest, '/v1/licenses?limit=100')).toEqual([test.license.id]);
    expect(await ids(asLive, '/v1/licenses?limit=100')).toEqual([live.license.id]);
    expect(await ids(asTest, '/v1/licenses?email=live@example.com')).toEqual([]);
    expect(await ids(asTest, `/v1/licenses?customer=${liveCustomer.id}`)).toEqual([]);
    expect(await ids(asTest, `/v1/licenses?product=${live.product.id}`)).toEqual([]);
    expect(await ids(asTest, '/v1/customers?limit=100')).toEqual([]);
    expect(await ids(asLive, '/v1/customers?limit=100')).toEqual([liveCustomer.id]);

    const testEvents = (await asTest('GET', '/v1/events?limit=100')).body.data as { id: string; livemode: boolean; data: { object: { id: string } } }[];
    expect(testEvents.length).toBeGreaterThan(0);
    expect(testEvents.every((e) => e.livemode === false)).toBe(true);
    expect(testEvents.map((e) => e.data.object.id)).not.toContain(live.license.id);
    const liveEvents = (await asLive('GET', '/v1/events?limit=100')).body.data as { id: string; livemode: boolean }[];
    expect(liveEvents.every((e) => e.livemode === true)).toBe(true);
    expectNotFound(await asTest('GET', `/v1/events/${liveEvents[0]?.id}`));
  });

  it('lets each environment use the same product code', async () => {
    const res = await asTest('POST', '/v1/products', { name: 'Test twin', code: 'editor' });
    expect(res.status).toBe(200);
    expect((await asTest('GET', '/v1/products/editor')).body.id).toBe(res.body.id);
    expect((await asLive('GET', '/v1/products/editor')).body.id).toBe(live.product.id);
  });

  it('validates a live license key, with no secret key', async () => {
    const res = await validate({ key: live.license.key, product: 'editor' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: true, code: 'VALID', license: { id: live.license.id, product: live.product.id } });
    expect(claimsOf(live.license.key)).toMatchObject({ v: 1, lid: live.license.id, pid: live.product.id, env: 'live' });
    expect(claimsOf(test.license.key)).toMatchObject({ v: 1, lid: test.license.id, pid: test.product.id, env: 'test' });
  });

  it('answers NOT_FOUND for a key moved to the other environment, even signed by that environment’s real key', async () => {
    const accountId = await server.app.services.accounts.ensureDefaultAccount();
    const liveSigning = await server.app.services.signingKeys.active({ accountId, env: 'live' });
    const testSigning = await server.app.services.signingKeys.active({ accountId, env: 'test' });

    const testAsLive = signKey({ ...claimsOf(test.license.key), env: 'live', kid: liveSigning.id }, liveSigning.privateKey);
    const testAsLiveOldKid = signKey({ ...claimsOf(test.license.key), env: 'live' }, liveSigning.privateKey);
    const liveAsTest = signKey({ ...claimsOf(live.license.key), env: 'test', kid: testSigning.id }, testSigning.privateKey);

    // The forgeries are genuinely signed: an offline check against the published keys accepts them.
    const liveKeys = (await server.request('GET', '/v1/signing_keys', { key: server.liveKey })).body.data;
    expect(verifiesAgainst(testAsLive, liveKeys[0])).toBe(true);

    for (const key of [testAsLive, testAsLiveOldKid, liveAsTest]) {
      const res = await validate({ key });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ valid: false, code: 'NOT_FOUND', license: null, device: null });
      const activation = await server.request('POST', '/v1/licenses/activate', { key: null, body: { key, fingerprint: 'machine-1' } });
      expectNotFound(activation);
      expect(activation.body.error.code).toBe('license_not_found');
    }
    // The genuine keys still validate.
    expect((await validate({ key: test.license.key })).body.code).toBe('VALID');
    expect((await validate({ key: live.license.key })).body.code).toBe('VALID');
  });

  it('answers NOT_FOUND for a key signed by someone else’s Ed25519 key, with a valid-looking payload of a real license', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    for (const license of [test.license, live.license]) {
      const forged = signKey(claimsOf(license.key), privateKey);
      expect(forged.split('.')[1]).toBe(license.key.split('.')[1]);
      expect(forged).not.toBe(license.key);
      const res = await validate({ key: forged });
      expect(res.body).toMatchObject({ valid: false, code: 'NOT_FOUND', license: null });
      expectNotFound(await server.request('POST', '/v1/licenses/activate', { key: null, body: { key: forged, fingerprint: 'machine-1' } }));
      expectNotFound(await server.request('POST', '/v1/licenses/deactivate', { key: null, body: { key: forged, fingerprint: 'machine-1' } }));
    }
  });

  it('lists a different signing key for each environment, in the format API.md fixes', async () => {
    const testKeys = await server.request('GET', '/v1/signing_keys', { key: server.testKey });
    const liveKeys = await server.request('GET', '/v1/signing_keys', { key: server.liveKey });
    for (const res of [testKeys, liveKeys]) {
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ object: 'list', has_more: false });
      expect(res.body.data).toHaveLength(1);
      const [key] = res.body.data;
      expect(key).toMatchObject({ object: 'signing_key', algorithm: 'ed25519', status: 'active' });
      expect(typeof key.id).toBe('string');
      expect(key.public_key).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(Buffer.from(key.public_key, 'base64url')).toHaveLength(32);
      expect(key.public_key_pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n?$/);
      // The PEM and the raw key are the same key.
      const jwk = createPublicKey(key.public_key_pem).export({ format: 'jwk' });
      expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', x: key.public_key });
    }
    const [testKey] = testKeys.body.data;
    const [liveKey] = liveKeys.body.data;
    expect(testKey.id).not.toBe(liveKey.id);
    expect(testKey.public_key).not.toBe(liveKey.public_key);
    // Signing keys carry nothing private.
    expect(JSON.stringify(testKeys.body)).not.toMatch(/private|PRIVATE/);
  });

  it("verifies a license key offline against its environment's listed public key, and only that one", async () => {
    const [testKey] = (await server.request('GET', '/v1/signing_keys', { key: server.testKey })).body.data;
    const [liveKey] = (await server.request('GET', '/v1/signing_keys', { key: server.liveKey })).body.data;
    expect(claimsOf(test.license.key).kid).toBe(testKey.id);
    expect(claimsOf(live.license.key).kid).toBe(liveKey.id);
    expect(verifiesAgainst(test.license.key, testKey)).toBe(true);
    expect(verifiesAgainst(live.license.key, liveKey)).toBe(true);
    expect(verifiesAgainst(test.license.key, liveKey)).toBe(false);
    expect(verifiesAgainst(live.license.key, testKey)).toBe(false);

    // Verification with the raw 32-byte key works as well as with the PEM.
    const raw = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: testKey.public_key }, format: 'jwk' });
    const [prefix, payload, signature] = test.license.key.split('.');
    expect(verify(null, Buffer.from(`${prefix}.${payload}`, 'ascii'), raw, Buffer.from(signature, 'base64url'))).toBe(true);
    // A tampered payload does not verify.
    const tampered = `${prefix}.${Buffer.from(JSON.stringify({ ...claimsOf(test.license.key), lid: 'lic_other' })).toString('base64url')}.${signature}`;
    expect(verifiesAgainst(tampered, testKey)).toBe(false);
  });
});
