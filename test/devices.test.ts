import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedLicense, startServer, type TestServer } from './support/harness.js';

describe('device activation', () => {
  let server: TestServer;
  const post = (path: string, body: Record<string, unknown>) => server.request('POST', path, { key: null, body });
  const activate = (key: string, fingerprint: string, extra: Record<string, unknown> = {}) => post('/v1/licenses/activate', { key, fingerprint, ...extra });

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('holds the device limit under 50 simultaneous activations: exactly 3 devices, the rest 409', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 3 } });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => activate(license.key, `machine-${i}`)));
    const created = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 409);
    expect(created).toHaveLength(3);
    expect(refused).toHaveLength(47);
    for (const r of refused) expect(r.body.error).toMatchObject({ type: 'conflict_error', code: 'device_limit_reached' });
    const devices = await server.request('GET', `/v1/licenses/${license.id}/devices?limit=100`);
    expect(devices.body.data).toHaveLength(3);
    expect(new Set(devices.body.data.map((d: { fingerprint: string }) => d.fingerprint))).toEqual(new Set(created.map((r) => r.body.fingerprint)));
    const events = await server.request('GET', '/v1/events?type=device.activated&limit=100');
    expect(events.body.data.filter((e: any) => e.data.object.license === license.id)).toHaveLength(3);
  });

  it('is idempotent per fingerprint, also when the same device activates concurrently', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 1 } });
    const results = await Promise.all(Array.from({ length: 20 }, () => activate(license.key, 'same-machine', { name: 'Work laptop', platform: 'macos' })));
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(results.filter((r) => r.status === 200)).toHaveLength(19);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results[0]!.body).toMatchObject({ object: 'device', fingerprint: 'same-machine', name: 'Work laptop', platform: 'macos', license: license.id });
    const devices = await server.request('GET', `/v1/licenses/${license.id}/devices`);
    expect(devices.body.data).toHaveLength(1);
  });

  it('refuses licenses that are not active with 403 license_not_active', async () => {
    const { license: suspended } = await seedLicense(server);
    await server.request('POST', `/v1/licenses/${suspended.id}/suspend`);
    const { license: expired } = await seedLicense(server, { policy: { license_type: 'timed', duration: '1d' }, license: { expires_at: server.clock.now() - 1 } });
    const { license: revoked } = await seedLicense(server);
    await server.request('POST', `/v1/licenses/${revoked.id}/revoke`);
    for (const l of [suspended, expired, revoked]) {
      const res = await activate(l.key, 'pc');
      expect(res.status).toBe(403);
      expect(res.body.error).toMatchObject({ type: 'permission_error', code: 'license_not_active' });
    }
  });

  it('answers 404 license_not_found for a key that is not ours', async () => {
    const res = await activate('KM1.bm9wZQ.' + 'A'.repeat(86), 'pc');
    expect(res.status).toBe(404);
    expect(res.body.error).toMatchObject({ type: 'not_found_error', code: 'license_not_found' });
  });

  it('deactivation frees the seat, and a second deactivation is 404', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 1 } });
    const first = await activate(license.key, 'old-pc');
    expect(first.status).toBe(201);
    expect((await activate(license.key, 'new-pc')).status).toBe(409);
    const gone = await post('/v1/licenses/deactivate', { key: license.key, fingerprint: 'old-pc' });
    expect(gone.status).toBe(200);
    expect(gone.body).toEqual({ id: first.body.id, object: 'device', deleted: true });
    expect((await post('/v1/licenses/deactivate', { key: license.key, fingerprint: 'old-pc' })).status).toBe(404);
    expect((await activate(license.key, 'new-pc')).status).toBe(201);
  });

  it('the vendor can remove a device through the admin API', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 1 } });
    const device = await activate(license.key, 'stolen-laptop');
    const deleted = await server.request('DELETE', `/v1/devices/${device.body.id}`);
    expect(deleted.body).toEqual({ id: device.body.id, object: 'device', deleted: true });
    expect((await server.request('DELETE', `/v1/devices/${device.body.id}`)).status).toBe(404);
    expect((await activate(license.key, 'replacement')).status).toBe(201);
    const events = await server.request('GET', `/v1/events?type=device.deactivated&object=${device.body.id}`);
    expect(events.body.data).toHaveLength(1);
  });

  it('a lapsed floating lease frees its seat; the late device must win a seat back', async () => {
    const { license } = await seedLicense(server, { policy: { floating: true, heartbeat_interval: 120, max_devices: 1 } });
    expect((await activate(license.key, 'desk-a')).status).toBe(201);
    expect((await activate(license.key, 'desk-b')).status).toBe(409);
    const start = server.clock.now();
    try {
      server.clock.advance(121);
      const b = await activate(license.key, 'desk-b');
      expect(b.status).toBe(201);
      const lateBeat = await post('/v1/licenses/heartbeat', { key: license.key, fingerprint: 'desk-a' });
      expect(lateBeat.status).toBe(409);
      expect(lateBeat.body.error.code).toBe('device_limit_reached');
      const validation = await post('/v1/licenses/validate', { key: license.key, fingerprint: 'desk-a' });
      expect(validation.body.code).toBe('HEARTBEAT_DEAD');
      expect(validation.body.license.active_devices).toBe(1);
    } finally {
      server.clock.set(start);
    }
  });

  it('heartbeat renews a lease and answers 404 for a device that was never activated', async () => {
    const { license } = await seedLicense(server, { policy: { floating: true, heartbeat_interval: 300, max_devices: 2 } });
    await activate(license.key, 'node-1');
    const start = server.clock.now();
    try {
      server.clock.advance(200);
      const beat = await post('/v1/licenses/heartbeat', { key: license.key, fingerprint: 'node-1' });
      expect(beat.status).toBe(200);
      expect(beat.body).toMatchObject({ object: 'device', fingerprint: 'node-1', lease_expires_at: server.clock.now() + 300 });
      const missing = await post('/v1/licenses/heartbeat', { key: license.key, fingerprint: 'node-9' });
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('device_not_found');
    } finally {
      server.clock.set(start);
    }
  });

  it('unlimited policies accept any number of devices', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: null } });
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => activate(license.key, `m-${i}`)));
    expect(results.every((r) => r.status === 201)).toBe(true);
  });
});
