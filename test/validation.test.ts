import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedLicense, startServer, type TestServer } from './support/harness.js';

/**
 * Every validation code of API.md's precedence table, each reached by a real
 * request against a real server and database.
 */
describe('POST /v1/licenses/validate', () => {
  let server: TestServer;
  const validate = (body: Record<string, unknown>) => server.request('POST', '/v1/licenses/validate', { key: null, body });

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers VALID for a fresh perpetual license, with the public license view', async () => {
    const { license, product, policy } = await seedLicense(server, { policy: { entitlements: ['pro'] } });
    const res = await validate({ key: license.key, nonce: 'n-123' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      object: 'license_validation',
      valid: true,
      code: 'VALID',
      nonce: 'n-123',
      device: null,
      license: {
        id: license.id,
        object: 'license',
        status: 'active',
        product: product.id,
        policy: policy.id,
        expires_at: null,
        grace_ends_at: null,
        max_devices: null,
        active_devices: 0,
        entitlements: ['pro'],
        metadata: {},
      },
    });
    expect(res.body.ts).toBe(server.clock.now());
    // The public view never carries the key or the customer.
    expect(res.body.license.key).toBeUndefined();
    expect(res.body.license.customer).toBeUndefined();
  });

  it('answers NOT_FOUND for malformed, tampered and unknown keys, with a null license', async () => {
    const { license } = await seedLicense(server);
    const [prefix, payload, signature] = license.key.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, lid: 'lic_someoneelse' })).toString('base64url');
    const flipped = signature.slice(0, -2) + (signature.endsWith('AA') ? 'AB' : 'AA');
    for (const key of ['nonsense', `${prefix}.${forgedPayload}.${signature}`, `${prefix}.${payload}.${flipped}`, 'KM1.e30.' + 'A'.repeat(86)]) {
      const res = await validate({ key });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ valid: false, code: 'NOT_FOUND', license: null, device: null });
    }
  });

  it('answers REVOKED before SUSPENDED, and SUSPENDED before PRODUCT_MISMATCH', async () => {
    const { license } = await seedLicense(server);
    await server.request('POST', `/v1/licenses/${license.id}/suspend`);
    expect((await validate({ key: license.key, product: 'not-this-one' })).body.code).toBe('SUSPENDED');
    await server.request('POST', `/v1/licenses/${license.id}/revoke`);
    const res = await validate({ key: license.key, product: 'not-this-one' });
    expect(res.body).toMatchObject({ valid: false, code: 'REVOKED', license: { status: 'revoked' } });
  });

  it('answers PRODUCT_MISMATCH for another product, and accepts the product by id or code', async () => {
    const { license, product } = await seedLicense(server, { product: { code: 'editor-pm' } });
    expect((await validate({ key: license.key, product: 'something-else' })).body.code).toBe('PRODUCT_MISMATCH');
    expect((await validate({ key: license.key, product: product.id })).body.code).toBe('VALID');
    expect((await validate({ key: license.key, product: 'editor-pm' })).body.code).toBe('VALID');
  });

  it('answers PRODUCT_MISMATCH before EXPIRED', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d' } });
    server.clock.advance(31 * 86_400);
    try {
      expect((await validate({ key: license.key, product: 'other' })).body.code).toBe('PRODUCT_MISMATCH');
      expect((await validate({ key: license.key })).body).toMatchObject({ valid: false, code: 'EXPIRED', license: { status: 'expired' } });
    } finally {
      server.clock.advance(-31 * 86_400);
    }
  });

  it('answers VALID during the grace period with grace_ends_at set, then EXPIRED', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d', grace_period: '7d' } });
    expect(license.grace_ends_at).toBe(license.expires_at + 7 * 86_400);
    const start = server.clock.now();
    try {
      server.clock.set(license.expires_at + 86_400);
      const inGrace = await validate({ key: license.key });
      expect(inGrace.body).toMatchObject({ valid: true, code: 'VALID', license: { status: 'active', grace_ends_at: license.grace_ends_at } });
      server.clock.set(license.grace_ends_at);
      expect((await validate({ key: license.key })).body.code).toBe('EXPIRED');
    } finally {
      server.clock.set(start);
    }
  });

  it('answers FALLBACK instead of EXPIRED when the product grants perpetual fallback', async () => {
    const { license } = await seedLicense(server, {
      product: { perpetual_fallback: true },
      license: { expires_at: server.clock.now() - 10 },
      policy: { license_type: 'timed', duration: '1y', require_fingerprint: true },
    });
    // Fallback answers before device checks: no fingerprint, yet not FINGERPRINT_REQUIRED.
    expect((await validate({ key: license.key })).body).toMatchObject({ valid: false, code: 'FALLBACK', license: { status: 'fallback' } });
  });

  it('answers FINGERPRINT_REQUIRED when the policy requires a device and none is sent', async () => {
    const { license } = await seedLicense(server, { policy: { require_fingerprint: true } });
    expect((await validate({ key: license.key })).body).toMatchObject({ valid: false, code: 'FINGERPRINT_REQUIRED' });
  });

  it('answers DEVICE_NOT_ACTIVATED for an unknown fingerprint, VALID with the device once activated', async () => {
    const { license } = await seedLicense(server, { policy: { require_fingerprint: true, max_devices: 2 } });
    expect((await validate({ key: license.key, fingerprint: 'laptop-1' })).body).toMatchObject({ valid: false, code: 'DEVICE_NOT_ACTIVATED', device: null });
    const activated = await server.request('POST', '/v1/licenses/activate', { key: null, body: { key: license.key, fingerprint: 'laptop-1', name: 'Laptop' } });
    expect(activated.status).toBe(201);
    const res = await validate({ key: license.key, fingerprint: 'laptop-1' });
    expect(res.body).toMatchObject({
      valid: true,
      code: 'VALID',
      device: { id: activated.body.id, object: 'device', fingerprint: 'laptop-1', name: 'Laptop', license: license.id },
      license: { active_devices: 1, max_devices: 2 },
    });
  });

  it('answers HEARTBEAT_DEAD when a floating lease lapses, VALID again after a heartbeat', async () => {
    const { license } = await seedLicense(server, { policy: { floating: true, heartbeat_interval: 60, max_devices: 1 } });
    const activated = await server.request('POST', '/v1/licenses/activate', { key: null, body: { key: license.key, fingerprint: 'float-1' } });
    expect(activated.body.lease_expires_at).toBe(server.clock.now() + 60);
    const start = server.clock.now();
    try {
      server.clock.advance(61);
      expect((await validate({ key: license.key, fingerprint: 'float-1' })).body).toMatchObject({ valid: false, code: 'HEARTBEAT_DEAD' });
      const beat = await server.request('POST', '/v1/licenses/heartbeat', { key: null, body: { key: license.key, fingerprint: 'float-1' } });
      expect(beat.status).toBe(200);
      expect(beat.body.lease_expires_at).toBe(server.clock.now() + 60);
      expect((await validate({ key: license.key, fingerprint: 'float-1' })).body.code).toBe('VALID');
    } finally {
      server.clock.set(start);
    }
  });

  it('answers ENTITLEMENTS_MISSING when a requested entitlement is not granted', async () => {
    const { license } = await seedLicense(server, { policy: { entitlements: ['export', 'sync'] } });
    expect((await validate({ key: license.key, entitlements: ['export'] })).body.code).toBe('VALID');
    const res = await validate({ key: license.key, entitlements: ['export', 'ai'] });
    expect(res.body).toMatchObject({ valid: false, code: 'ENTITLEMENTS_MISSING' });
    expect(res.body.message).toContain('ai');
  });

  it('uses per-license overrides of entitlements and max devices', async () => {
    const { license } = await seedLicense(server, { policy: { entitlements: ['basic'], max_devices: 1 }, license: { entitlements: ['basic', 'ai'], max_devices: 5 } });
    const res = await validate({ key: license.key, entitlements: ['ai'] });
    expect(res.body).toMatchObject({ code: 'VALID', license: { entitlements: ['basic', 'ai'], max_devices: 5 } });
  });

  it('answers 400 in the error shape for a request that is not well-formed', async () => {
    const res = await validate({ fingerprint: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'invalid_request_error', code: 'parameter_missing', param: 'key' });
    expect(res.body.error.request_id).toBe(res.headers.get('request-id'));
  });
});
