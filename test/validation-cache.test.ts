import path from 'node:path';
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { dialectUnderTest, seedLicense, startServer, type TestServer } from './support/harness.js';

/**
 * Validation answers come from memory once a key has been validated (on
 * SQLite; see docs/design.md, "Hot path"). Whatever changes a license must
 * change its very next answer: each test validates twice first, so the answer
 * is the remembered one, then changes something and validates again. The
 * same tests run with the cache off, where they must hold just the same.
 */
describe.each([
  { cache: 'on (default)', env: {} as Record<string, string> },
  { cache: 'off', env: { KEYMINT_VALIDATION_CACHE: '0' } as Record<string, string> },
])('validation answers with the cache $cache', ({ env }) => {
  let server: TestServer;
  const validate = async (body: Record<string, unknown>) => {
    const res = await server.request('POST', '/v1/licenses/validate', { key: null, body });
    expect(res.status).toBe(200);
    return res.body;
  };
  /** Validates twice (the second answer comes from memory when the cache is on) and returns the answer. */
  const remembered = async (body: Record<string, unknown>) => {
    const first = await validate(body);
    const second = await validate(body);
    expect({ ...second, ts: first.ts }).toEqual(first);
    return second;
  };
  const activate = (key: string, fingerprint: string) => server.request('POST', '/v1/licenses/activate', { key: null, body: { key, fingerprint } });

  beforeAll(async () => {
    server = await startServer({ env });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('follow suspension, reinstatement and revocation at once', async () => {
    const { license } = await seedLicense(server);
    expect((await remembered({ key: license.key })).code).toBe('VALID');
    await server.request('POST', `/v1/licenses/${license.id}/suspend`);
    expect((await remembered({ key: license.key })).code).toBe('SUSPENDED');
    await server.request('POST', `/v1/licenses/${license.id}/reinstate`);
    expect((await remembered({ key: license.key })).code).toBe('VALID');
    await server.request('POST', `/v1/licenses/${license.id}/revoke`);
    expect(await validate({ key: license.key })).toMatchObject({ code: 'REVOKED', license: { status: 'revoked' } });
  });

  it("follow a license's overrides, metadata and renewal", async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d', entitlements: ['basic'], max_devices: 1 } });
    expect((await remembered({ key: license.key, entitlements: ['ai'] })).code).toBe('ENTITLEMENTS_MISSING');
    const updated = await server.request('POST', `/v1/licenses/${license.id}`, { body: { entitlements: ['basic', 'ai'], max_devices: 4, metadata: { seat: 'a' } } });
    expect(updated.status).toBe(200);
    expect(await remembered({ key: license.key, entitlements: ['ai'] })).toMatchObject({
      code: 'VALID',
      license: { entitlements: ['basic', 'ai'], max_devices: 4, metadata: { seat: 'a' } },
    });
    const renewed = await server.request('POST', `/v1/licenses/${license.id}/renew`);
    expect(renewed.body.expires_at).toBeGreaterThan(license.expires_at);
    expect((await validate({ key: license.key })).license.expires_at).toBe(renewed.body.expires_at);
  });

  it("follow changes to the license's policy and product", async () => {
    const { license, policy, product } = await seedLicense(server, {
      policy: { license_type: 'timed', duration: '30d', entitlements: ['basic'] },
      license: { expires_at: server.clock.now() - 60 },
    });
    expect((await remembered({ key: license.key })).code).toBe('EXPIRED');
    await server.request('POST', `/v1/products/${product.id}`, { body: { perpetual_fallback: true } });
    expect((await remembered({ key: license.key })).code).toBe('FALLBACK');
    await server.request('POST', `/v1/licenses/${license.id}`, { body: { expires_at: server.clock.now() + 3_600 } });
    expect((await remembered({ key: license.key, entitlements: ['pro'] })).code).toBe('ENTITLEMENTS_MISSING');
    await server.request('POST', `/v1/policies/${policy.id}`, { body: { entitlements: ['basic', 'pro'] } });
    expect(await validate({ key: license.key, entitlements: ['pro'] })).toMatchObject({ code: 'VALID', license: { entitlements: ['basic', 'pro'] } });
  });

  it('follow activations and deactivations, for the device and for the seat count', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 2 } });
    expect(await remembered({ key: license.key, fingerprint: 'desk' })).toMatchObject({ code: 'DEVICE_NOT_ACTIVATED', device: null });
    expect((await remembered({ key: license.key })).license.active_devices).toBe(0);
    const device = (await activate(license.key, 'desk')).body;
    expect(await remembered({ key: license.key, fingerprint: 'desk' })).toMatchObject({ code: 'VALID', device: { id: device.id } });
    expect((await remembered({ key: license.key })).license.active_devices).toBe(1);
    const removed = await server.request('DELETE', `/v1/devices/${device.id}`);
    expect(removed.status).toBe(200);
    expect(await validate({ key: license.key, fingerprint: 'desk' })).toMatchObject({ code: 'DEVICE_NOT_ACTIVATED', device: null });
    expect((await validate({ key: license.key })).license.active_devices).toBe(0);
  });

  it('follow the clock: grace period, expiry, and a floating lease lapsing for its device and for the seat count', async () => {
    const start = server.clock.now();
    try {
      const timed = (await seedLicense(server, { policy: { license_type: 'timed', duration: '30d', grace_period: '7d' } })).license;
      expect(await remembered({ key: timed.key })).toMatchObject({ code: 'VALID', message: 'license is valid' });
      server.clock.set(timed.expires_at);
      expect(await remembered({ key: timed.key })).toMatchObject({ code: 'VALID', message: 'license is valid (in grace period)' });
      server.clock.set(timed.grace_ends_at);
      expect(await validate({ key: timed.key })).toMatchObject({ code: 'EXPIRED', license: { status: 'expired' } });

      server.clock.set(start);
      const floating = (await seedLicense(server, { policy: { floating: true, heartbeat_interval: 60, max_devices: 2 } })).license;
      await activate(floating.key, 'f-1');
      server.clock.advance(30);
      await activate(floating.key, 'f-2');
      expect((await remembered({ key: floating.key })).license.active_devices).toBe(2);
      expect((await remembered({ key: floating.key, fingerprint: 'f-1' })).code).toBe('VALID');
      // f-1's lease (taken at start, 60 s) lapses; f-2's still runs.
      server.clock.set(start + 60);
      expect((await validate({ key: floating.key, fingerprint: 'f-1' })).code).toBe('HEARTBEAT_DEAD');
      expect((await validate({ key: floating.key })).license.active_devices).toBe(1);
      expect((await validate({ key: floating.key, fingerprint: 'f-2' })).code).toBe('VALID');
    } finally {
      server.clock.set(start);
    }
  });

  it('follow leases lapsing on a license whose policy stopped being floating', async () => {
    const start = server.clock.now();
    try {
      const { license, policy } = await seedLicense(server, { policy: { floating: true, heartbeat_interval: 60, max_devices: 3 } });
      await activate(license.key, 'f-1');
      expect((await server.request('POST', `/v1/policies/${policy.id}`, { body: { floating: false } })).status).toBe(200);
      expect((await remembered({ key: license.key })).license.active_devices).toBe(1);
      // The device keeps the lease it was given; once it lapses the seat is free.
      server.clock.advance(61);
      expect((await validate({ key: license.key })).license.active_devices).toBe(0);
    } finally {
      server.clock.set(start);
    }
  });

  it('answer as of the earlier time when the clock goes back', async () => {
    const start = server.clock.now();
    try {
      const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d' } });
      server.clock.set(license.expires_at + 1);
      expect((await remembered({ key: license.key })).code).toBe('EXPIRED');
      server.clock.set(start);
      expect((await validate({ key: license.key })).code).toBe('VALID');
    } finally {
      server.clock.set(start);
    }
  });

  it.runIf(dialectUnderTest === 'sqlite')('follow a change another process commits to the database file', async () => {
    const { license } = await seedLicense(server);
    expect((await remembered({ key: license.key })).code).toBe('VALID');
    // A second connection is what another process on the same file would be: its commits fire none of this server's triggers.
    const other = new SQLite(path.join(server.config.dataDir, 'keymint.sqlite'));
    try {
      other.prepare('UPDATE licenses SET suspended_at = ? WHERE id = ?').run(server.clock.now() - 1, license.id);
    } finally {
      other.close();
    }
    expect((await validate({ key: license.key })).code).toBe('SUSPENDED');
  });

  it.runIf(dialectUnderTest === 'sqlite')("follow another process's commit made while this server has a transaction open", async () => {
    const { license } = await seedLicense(server);
    expect((await remembered({ key: license.key })).code).toBe('VALID');
    // A transaction of this server that has read (and so holds a snapshot), still open.
    let release!: () => void;
    const open = new Promise<void>((resolve) => (release = resolve));
    const transaction = server.db.kysely.transaction().execute(async (trx) => {
      await trx.selectFrom('licenses').select('id').limit(1).execute();
      await open;
    });
    try {
      await new Promise((resolve) => setTimeout(resolve, 20));
      const other = new SQLite(path.join(server.config.dataDir, 'keymint.sqlite'));
      try {
        other.prepare('UPDATE licenses SET suspended_at = ? WHERE id = ?').run(server.clock.now() - 1, license.id);
      } finally {
        other.close();
      }
      const answer = validate({ key: license.key });
      setTimeout(release, 100);
      expect((await answer).code).toBe('SUSPENDED');
    } finally {
      release();
      await transaction;
    }
  });

  it.runIf(dialectUnderTest === 'sqlite')('follow a device moved to another license by a REPLACE, for the license it left', async () => {
    const from = (await seedLicense(server, { policy: { max_devices: 2 } })).license;
    const to = (await seedLicense(server, { policy: { max_devices: 2 } })).license;
    const device = (await activate(from.key, 'moved')).body;
    expect((await remembered({ key: from.key })).license.active_devices).toBe(1);
    // Raw SQL, as a maintenance script might run it: REPLACE deletes the old row implicitly.
    await sql`replace into devices select id, account_id, env, ${to.id}, fingerprint, name, platform, metadata, lease_expires_at, last_seen_at, created from devices where id = ${device.id}`.execute(server.db.kysely);
    expect((await validate({ key: from.key })).license.active_devices).toBe(0);
    expect((await validate({ key: to.key })).license.active_devices).toBe(1);
  });

  it('never answer from memory for a key that differs from a remembered one, whatever it contains', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 2 } });
    await activate(license.key, 'pc');
    expect((await remembered({ key: license.key, fingerprint: 'pc' })).code).toBe('VALID');
    expect((await remembered({ key: license.key })).code).toBe('VALID');
    // Strings that a careless cache key (key + separator + fingerprint) would confuse with the ones above.
    for (const body of [{ key: `${license.key}:pc` }, { key: `${license.key}pc` }, { key: `${license.key}\u0000pc` }, { key: `k${license.key}` }]) {
      expect(await validate(body)).toMatchObject({ code: 'NOT_FOUND', license: null });
    }
  });

  it('record when each license was last validated, to the minute', async () => {
    const start = server.clock.now();
    const lastValidated = async (id: string) => {
      // Written in batches off the request path; closing writes what is pending (as a shutdown does).
      await server.app.services.licenseApi.close();
      return (await server.request('GET', `/v1/licenses/${id}`)).body.last_validated_at;
    };
    try {
      const { license } = await seedLicense(server);
      expect((await server.request('GET', `/v1/licenses/${license.id}`)).body.last_validated_at).toBeNull();
      await remembered({ key: license.key });
      expect(await lastValidated(license.id)).toBe(start);
      server.clock.advance(30);
      await validate({ key: license.key });
      expect(await lastValidated(license.id)).toBe(start);
      server.clock.advance(31);
      await validate({ key: license.key });
      expect(await lastValidated(license.id)).toBe(start + 61);
    } finally {
      server.clock.set(start);
    }
  });
});

describe('the validation cache setting', () => {
  it('is a number of answers from 0 (off) to a million', () => {
    expect(loadConfig({}).validationCacheSize).toBe(100_000);
    expect(loadConfig({ KEYMINT_VALIDATION_CACHE: '0' }).validationCacheSize).toBe(0);
    expect(() => loadConfig({ KEYMINT_VALIDATION_CACHE: '1000001' })).toThrow(ConfigError);
    expect(() => loadConfig({ KEYMINT_VALIDATION_CACHE: 'lots' })).toThrow(ConfigError);
  });
});

describe.runIf(dialectUnderTest === 'sqlite')('the validation cache under a small size bound', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { KEYMINT_VALIDATION_CACHE: '2' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers every key right as older keys are pushed out, and changes still reach pushed-out keys', async () => {
    const licenses = [];
    for (let i = 0; i < 5; i++) licenses.push((await seedLicense(server)).license);
    for (let round = 0; round < 2; round++) {
      for (const license of licenses) {
        const res = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } });
        expect(res.body).toMatchObject({ code: 'VALID', license: { id: license.id } });
      }
    }
    await server.request('POST', `/v1/licenses/${licenses[0]!.id}/revoke`);
    await server.request('POST', `/v1/licenses/${licenses[4]!.id}/revoke`);
    // Newest first: the revoked licenses[4] is still remembered, licenses[0] long pushed out.
    for (const [i, license] of [...licenses.entries()].reverse()) {
      const res = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } });
      expect(res.body.code).toBe(i === 0 || i === 4 ? 'REVOKED' : 'VALID');
    }
  });
});

describe.runIf(dialectUnderTest === 'sqlite')('the validation cache starting up', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('keeps nothing read before its triggers were in place', async () => {
    const { license } = await seedLicense(server);
    const api = server.app.services.licenseApi;
    const db = server.db.kysely;
    // The very first validation arrives while a transaction is open: the
    // triggers cannot be installed yet, and its read queues behind the transaction.
    let release!: () => void;
    const open = new Promise<void>((resolve) => (release = resolve));
    const transaction = db.transaction().execute(async (trx) => {
      await trx.selectFrom('licenses').select('id').limit(1).execute();
      await open;
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const first = api.validate(license.key, {});
    await new Promise((resolve) => setImmediate(resolve));
    // A write queued behind that read, made before any trigger exists.
    const write = db.updateTable('licenses').set({ suspended_at: server.clock.now() - 1 }).where('id', '=', license.id).execute();
    release();
    expect((await first).code).toBe('VALID');
    await write;
    await transaction;
    expect((await api.validate(license.key, {})).code).toBe('SUSPENDED');
    expect((await api.validate(license.key, {})).code).toBe('SUSPENDED');
  });
});
