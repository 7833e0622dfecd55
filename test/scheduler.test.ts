import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialectUnderTest, seedLicense, startServer, type TestServer, waitFor } from './support/harness.js';
import { smtpCatcher, type SmtpCatcher } from './support/smtp.js';

const DAY = 86_400;


const eventsOf = async (server: TestServer, type: string, objectId: string) =>
  (await server.request('GET', `/v1/events?type=${type}&object=${objectId}&limit=100`)).body.data as any[];
const emailsOf = async (server: TestServer, licenseId: string, kind = 'expiring_soon') =>
  (await server.request('GET', `/v1/emails?license=${licenseId}&kind=${kind}&limit=100`)).body.data as any[];

describe('the scheduler', () => {
  let server: TestServer;
  let smtp: SmtpCatcher;

  beforeAll(async () => {
    smtp = await smtpCatcher();
    // A tiny batch, so every run pages through its lookups.
    server = await startServer({ env: { KEYMINT_SMTP_URL: smtp.url }, scheduler: { batchSize: 2 } });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.stop();
  });

  const run = () => server.app.scheduler.runOnce();

  it('announces an expiry soon, then its end, once each, with a reminder email', async () => {
    const start = server.clock.now();
    const { license } = await seedLicense(server, {
      product: { name: 'Timely', email: { expiring_soon_days: 7 } },
      policy: { license_type: 'timed', duration: '30d' },
      license: { customer: { email: 'timely@example.com', name: 'Tim' } },
    });
    const expiresAt = license.expires_at as number;
    expect(expiresAt).toBe(start + 30 * DAY);

    expect(await run()).toMatchObject({ leader: true });
    expect(await eventsOf(server, 'license.expiring_soon', license.id)).toHaveLength(0);

    server.clock.set(expiresAt - 7 * DAY + 60);
    await run();
    const [soon] = await eventsOf(server, 'license.expiring_soon', license.id);
    expect(soon).toMatchObject({ type: 'license.expiring_soon', data: { object: { id: license.id, object: 'license', status: 'active', expires_at: expiresAt } } });
    const [reminder] = await emailsOf(server, license.id);
    expect(reminder).toMatchObject({ kind: 'expiring_soon', to: 'timely@example.com' });
    await waitFor(() => smtp.messages.some((m) => m.messageId === reminder.message_id));
    const mail = smtp.messages.find((m) => m.messageId === reminder.message_id)!;
    expect(mail.subject).toMatch(/^Your Timely license expires on \w+ \d+, \d{4}$/);
    expect(mail.text).toContain('Hi Tim,');
    expect(mail.text).toContain(license.key);
    expect(mail.text).toContain(`${server.config.publicUrl}/portal`);

    // Every later run finds nothing new to say.
    await run();
    server.clock.advance(3 * DAY);
    await run();
    expect(await eventsOf(server, 'license.expiring_soon', license.id)).toHaveLength(1);
    expect(await emailsOf(server, license.id)).toHaveLength(1);
    expect(await eventsOf(server, 'license.expired', license.id)).toHaveLength(0);

    server.clock.set(expiresAt);
    await run();
    await run();
    const expired = await eventsOf(server, 'license.expired', license.id);
    expect(expired).toHaveLength(1);
    expect(expired[0].data.object).toMatchObject({ id: license.id, status: 'expired' });

    // A renewal is a new expiry: it gets its own announcements.
    const renewed = (await server.request('POST', `/v1/licenses/${license.id}/renew`)).body;
    expect(renewed.expires_at).toBe(expiresAt + 30 * DAY);
    server.clock.set(renewed.expires_at - 2 * DAY);
    await run();
    await run();
    expect(await eventsOf(server, 'license.expiring_soon', license.id)).toHaveLength(2);
    expect(await emailsOf(server, license.id)).toHaveLength(2);
  });

  it('announces the end of access after the grace period, not at the expiry', async () => {
    const start = server.clock.now();
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d', grace_period: '3d' } });
    expect(license.grace_ends_at).toBe(start + 33 * DAY);
    server.clock.set(start + 31 * DAY);
    await run();
    expect(await eventsOf(server, 'license.expired', license.id)).toHaveLength(0);
    server.clock.set(start + 33 * DAY);
    await run();
    expect(await eventsOf(server, 'license.expired', license.id)).toHaveLength(1);
  });

  it('follows each product: off at 0 days, no reminder email for renewing subscriptions, trials or revoked licenses', async () => {
    const start = server.clock.now();
    const off = await seedLicense(server, {
      product: { name: 'Silent', email: { expiring_soon_days: 0 } },
      policy: { license_type: 'timed', duration: '10d' },
      license: { customer: { email: 'silent@example.com' } },
    });
    const subscription = await seedLicense(server, {
      product: { name: 'Monthly', email: { expiring_soon_days: 5 } },
      policy: { license_type: 'subscription', duration: '1m' },
      license: { customer: { email: 'monthly@example.com' } },
    });
    const trial = await seedLicense(server, {
      product: { name: 'Trial', email: { expiring_soon_days: 7 } },
      policy: { license_type: 'timed', duration: '3d' },
      license: { customer: { email: 'trial@example.com' } },
    });
    const revoked = await seedLicense(server, {
      product: { name: 'Gone', email: { expiring_soon_days: 7 } },
      policy: { license_type: 'timed', duration: '10d' },
      license: { customer: { email: 'gone@example.com' } },
    });
    await server.request('POST', `/v1/licenses/${revoked.license.id}/revoke`);

    server.clock.set(start + 2 * DAY);
    await run();
    // The trial is inside its window from the start: the event, but no reminder with its key.
    expect(await eventsOf(server, 'license.expiring_soon', trial.license.id)).toHaveLength(1);
    expect(await emailsOf(server, trial.license.id)).toHaveLength(0);

    // The silent product's license still expires, and says so.
    server.clock.set(start + 10 * DAY);
    await run();
    expect(await eventsOf(server, 'license.expired', off.license.id)).toHaveLength(1);

    server.clock.set(subscription.license.expires_at - 4 * DAY);
    await run();
    expect(await eventsOf(server, 'license.expiring_soon', subscription.license.id)).toHaveLength(1);
    expect(await emailsOf(server, subscription.license.id)).toHaveLength(0);
    expect(await eventsOf(server, 'license.expiring_soon', off.license.id)).toHaveLength(0);
    expect(await eventsOf(server, 'license.expiring_soon', revoked.license.id)).toHaveLength(0);
    expect(await eventsOf(server, 'license.expired', revoked.license.id)).toHaveLength(0);
  });

  it('a reminder overtaken by a renewal is cancelled, not sent', async () => {
    await server.app.worker.stop();
    const start = server.clock.now();
    const { license } = await seedLicense(server, {
      product: { name: 'Overtaken' },
      policy: { license_type: 'timed', duration: '30d' },
      license: { customer: { email: 'overtaken@example.com' } },
    });
    server.clock.set(start + 25 * DAY);
    await run();
    const [reminder] = await emailsOf(server, license.id);
    expect(reminder.status).toBe('queued');
    await server.request('POST', `/v1/licenses/${license.id}/renew`);
    server.app.worker.start();
    await waitFor(async () => (await emailsOf(server, license.id))[0].status !== 'queued');
    const [after] = await emailsOf(server, license.id);
    expect(after).toMatchObject({ status: 'cancelled', last_error: 'the license was renewed or its expiry changed' });
    expect(smtp.messages.some((m) => m.messageId === reminder.message_id)).toBe(false);
  });

  it('deletes floating devices whose lease lapsed more than a day ago', async () => {
    const start = server.clock.now();
    const floating = await seedLicense(server, { policy: { floating: true, heartbeat_interval: 60, max_devices: 2 } });
    const fixed = await seedLicense(server, { policy: { max_devices: 2 } });
    const activate = (key: string, fingerprint: string) => server.request('POST', '/v1/licenses/activate', { key: null, body: { key, fingerprint } });
    const lapsed = (await activate(floating.license.key, 'fp-lapsed')).body;
    const fixedDevice = (await activate(fixed.license.key, 'fp-fixed')).body;
    expect(lapsed.lease_expires_at).toBe(start + 60);

    server.clock.set(start + 3600);
    // Still recent: the device keeps its place in the list (its seat is already free).
    const alive = (await activate(floating.license.key, 'fp-alive')).body;
    await run();
    expect((await server.request('GET', `/v1/licenses/${floating.license.id}/devices`)).body.data).toHaveLength(2);

    server.clock.set(start + 60 + DAY + 1);
    const result = await run();
    expect(result.devicesCulled).toBeGreaterThanOrEqual(1);
    const left = (await server.request('GET', `/v1/licenses/${floating.license.id}/devices`)).body.data as any[];
    expect(left.map((d) => d.id)).toEqual([alive.id]);
    const [deactivated] = await eventsOf(server, 'device.deactivated', lapsed.id);
    expect(deactivated.data.object).toMatchObject({ id: lapsed.id, fingerprint: 'fp-lapsed', license: floating.license.id });
    expect((await server.request('GET', `/v1/licenses/${fixed.license.id}/devices`)).body.data.map((d: any) => d.id)).toEqual([fixedDevice.id]);
  });

  it('two runs at once announce nothing twice', async () => {
    const start = server.clock.now();
    const seeded = await seedLicense(server, { product: { name: 'Racy' }, policy: { license_type: 'timed', duration: '10d' }, license: { customer: { email: 'racy@example.com' } } });
    server.clock.set(start + 5 * DAY);
    await Promise.all([run(), run(), run()]);
    expect(await eventsOf(server, 'license.expiring_soon', seeded.license.id)).toHaveLength(1);
    expect(await emailsOf(server, seeded.license.id)).toHaveLength(1);
  });
});

describe('the scheduler started with the app', () => {
  it('runs by itself every interval', async () => {
    const server = await startServer({ scheduler: { start: true, intervalMs: 50 } });
    try {
      const start = server.clock.now();
      const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '10d' } });
      server.clock.set(start + 10 * DAY);
      await waitFor(async () => (await eventsOf(server, 'license.expired', license.id)).length === 1);
    } finally {
      await server.close();
    }
  });
});

describe.runIf(dialectUnderTest === 'postgres')('the scheduler on two replicas sharing one PostgreSQL database', () => {
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    a = await startServer({ scheduler: { batchSize: 7 } });
    b = await startServer({ replicaOf: a, scheduler: { batchSize: 7 } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('one leader at a time: a replica that cannot take the lock skips its run', async () => {
    const holder = new pg.Client({ connectionString: a.config.databaseUrl! });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock(30238164864492900)');
      expect(await b.app.scheduler.runOnce()).toEqual({ leader: false, expiringSoon: 0, expired: 0, devicesCulled: 0 });
      await holder.query('select pg_advisory_unlock(30238164864492900)');
      expect((await b.app.scheduler.runOnce()).leader).toBe(true);
    } finally {
      await holder.end();
    }
  });

  it('emit every announcement exactly once between them', async () => {
    const start = a.clock.now();
    const { policy } = await seedLicense(a, { product: { name: 'Shared' }, policy: { license_type: 'timed', duration: '10d' } });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) {
      const res = await a.request('POST', '/v1/licenses', { body: { policy: policy.id, customer: { email: `shared${i}@example.com` } } });
      ids.push(res.body.id);
    }
    for (const at of [start + 4 * DAY, start + 10 * DAY]) {
      a.clock.set(at);
      b.clock.set(at);
      const runs = await Promise.all([a.app.scheduler.runOnce(), b.app.scheduler.runOnce(), a.app.scheduler.runOnce(), b.app.scheduler.runOnce()]);
      expect(runs.some((r) => r.leader)).toBe(true);
    }
    const soon = (await a.request('GET', '/v1/events?type=license.expiring_soon&limit=100')).body.data.filter((e: any) => ids.includes(e.data.object.id));
    const expired = (await a.request('GET', '/v1/events?type=license.expired&limit=100')).body.data.filter((e: any) => ids.includes(e.data.object.id));
    expect(soon).toHaveLength(40);
    expect(new Set(soon.map((e: any) => e.data.object.id)).size).toBe(40);
    expect(expired).toHaveLength(40);
    expect(new Set(expired.map((e: any) => e.data.object.id)).size).toBe(40);
    const reminders = (await a.request('GET', '/v1/emails?kind=expiring_soon&limit=100')).body.data.filter((e: any) => ids.includes(e.licenses[0]));
    expect(reminders).toHaveLength(40);
  });
});
