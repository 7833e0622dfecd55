import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { DISABLE_AFTER_FAILURES } from '../src/delivery/webhooks.js';
import { dialectUnderTest, seedLicense, startServer, type TestServer, waitFor } from './support/harness.js';

// ── a real receiver ─────────────────────────────────────────────────────

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  raw: string;
  body: any;
  /** Verified with the Node snippet from docs/webhooks.md, against the secret of the endpoint at `path`. */
  verified: boolean;
}

type Answer = { status: number; body?: string; headers?: Record<string, string> } | 'hang';

interface Receiver {
  url: string;
  received: Received[];
  /** The secret to verify deliveries to `path` with. */
  secrets: Map<string, string>;
  at(path: string): Received[];
  close(): Promise<void>;
}

type Verify = (raw: string | Buffer, header: string | undefined, secret: string, tolerance?: number) => boolean;

/** The verification snippet of docs/webhooks.md, loaded as the vendor would paste it. */
async function loadDocSnippet(): Promise<Verify> {
  const doc = fs.readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/webhooks.md'), 'utf8');
  const match = /<!-- verify-node[^>]*-->\s*```js\n([\s\S]*?)```/.exec(doc);
  if (!match?.[1]) throw new Error('docs/webhooks.md has no verify-node snippet');
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'keymint-snippet-')), 'verify.mjs');
  fs.writeFileSync(file, match[1]);
  return ((await import(pathToFileURL(file).href)) as { verifyKeymintSignature: Verify }).verifyKeymintSignature;
}

async function startReceiver(verify: Verify, answer: (r: Received, nth: number) => Answer = () => ({ status: 200 })): Promise<Receiver> {
  const received: Received[] = [];
  const secrets = new Map<string, string>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const p = req.url ?? '/';
      const secret = secrets.get(p);
      const header = req.headers['keymint-signature'];
      const r: Received = {
        path: p,
        headers: req.headers,
        raw,
        body: JSON.parse(raw),
        verified: secret !== undefined && verify(raw, typeof header === 'string' ? header : undefined, secret),
      };
      received.push(r);
      const a = answer(r, received.filter((x) => x.path === p).length);
      if (a === 'hang') return; // never answers; the sender's timeout must end it
      res.writeHead(a.status, { 'content-type': 'text/plain', ...a.headers }).end(a.body ?? 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    secrets,
    at: (p) => received.filter((r) => r.path === p),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Parses `t=…,v1=…,v1=…`. */
const signatureParts = (header: unknown) => {
  const parts = String(header).split(',').map((p) => p.split('='));
  return { t: Number(parts.find(([k]) => k === 't')?.[1]), v1: parts.filter(([k]) => k === 'v1').map(([, v]) => v) };
};

let verify: Verify;
beforeAll(async () => {
  verify = await loadDocSnippet();
});

// ── endpoints ───────────────────────────────────────────────────────────

describe('webhook endpoints', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('are created with a secret shown only once, and never with a Stripe prefix', async () => {
    const created = await server.request('POST', '/v1/webhook_endpoints', {
      body: { url: 'https://example.com/hooks', enabled_events: ['license.created', 'device.activated'], description: 'fulfilment', metadata: { team: 'ops' } },
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      object: 'webhook_endpoint',
      url: 'https://example.com/hooks',
      description: 'fulfilment',
      enabled_events: ['license.created', 'device.activated'],
      status: 'enabled',
      disabled_reason: null,
      failing_since: null,
      metadata: { team: 'ops' },
      livemode: false,
    });
    expect(created.body.id).toMatch(/^whe_[0-9a-z]{26}$/);
    expect(created.body.secret).toMatch(/^kmwhsec_[A-Za-z0-9_-]{43}$/);

    const retrieved = await server.request('GET', `/v1/webhook_endpoints/${created.body.id}`);
    expect(retrieved.status).toBe(200);
    expect(retrieved.body.secret).toBeUndefined();
    const { secret: _secret, ...withoutSecret } = created.body;
    expect(retrieved.body).toEqual(withoutSecret);
    const listed = await server.request('GET', '/v1/webhook_endpoints');
    expect(listed.body.data.find((e: any) => e.id === created.body.id)).toEqual(withoutSecret);
    expect(JSON.stringify(listed.body)).not.toContain('kmwhsec_');

    // The secret is sealed at rest, not stored in plaintext.
    const row = await server.db.kysely.selectFrom('webhook_endpoints').selectAll().where('id', '=', created.body.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(created.body.secret);
  });

  it('refuse bad input with a 400 naming the parameter', async () => {
    const bad: Array<[unknown, string]> = [
      [{ url: 'ftp://example.com/hooks', enabled_events: ['*'] }, 'url'],
      [{ url: 'javascript:alert(1)', enabled_events: ['*'] }, 'url'],
      [{ url: 'http://', enabled_events: ['*'] }, 'url'],
      [{ url: 'https://user:pw@example.com/hooks', enabled_events: ['*'] }, 'url'],
      [{ url: 'https://example.com/hooks#x', enabled_events: ['*'] }, 'url'],
      [{ url: `https://example.com/${'a'.repeat(2048)}`, enabled_events: ['*'] }, 'url'],
      [{ url: 42, enabled_events: ['*'] }, 'url'],
      [{ enabled_events: ['*'] }, 'url'],
      [{ url: 'https://example.com/hooks' }, 'enabled_events'],
      [{ url: 'https://example.com/hooks', enabled_events: [] }, 'enabled_events'],
      [{ url: 'https://example.com/hooks', enabled_events: ['license.exploded'] }, 'enabled_events[0]'],
      [{ url: 'https://example.com/hooks', enabled_events: ['product.created'] }, 'enabled_events[0]'],
      [{ url: 'https://example.com/hooks', enabled_events: ['*', 'license.created'] }, 'enabled_events'],
      [{ url: 'https://example.com/hooks', enabled_events: ['license.created', 'license.created'] }, 'enabled_events'],
      [{ url: 'https://example.com/hooks', enabled_events: 'license.created' }, 'enabled_events'],
      [{ url: 'https://example.com/hooks', enabled_events: ['*'], secret: 'mine' }, 'secret'],
      [{ url: 'https://example.com/hooks', enabled_events: ['*'], description: 'x'.repeat(501) }, 'description'],
    ];
    for (const [body, param] of bad) {
      const res = await server.request('POST', '/v1/webhook_endpoints', { body });
      expect(res.status, JSON.stringify(body).slice(0, 100)).toBe(400);
      expect(res.body.error).toMatchObject({ type: 'invalid_request_error', param });
    }
    const id = (await server.request('POST', '/v1/webhook_endpoints', { body: { url: 'http://localhost:9/x', enabled_events: ['*'] } })).body.id;
    expect((await server.request('POST', `/v1/webhook_endpoints/${id}`, { body: { url: 'mailto:a@b.c' } })).body.error.param).toBe('url');
    expect((await server.request('POST', `/v1/webhook_endpoints/${id}`, { body: { disabled: 'yes' } })).body.error.param).toBe('disabled');
    expect((await server.request('POST', `/v1/webhook_endpoints/${id}/roll_secret`, { body: { expires_in: -1 } })).body.error.param).toBe('expires_in');
    expect((await server.request('POST', `/v1/webhook_endpoints/${id}/roll_secret`, { body: { expires_in: 8 * 86_400 } })).body.error.param).toBe('expires_in');
    expect((await server.request('GET', `/v1/webhook_endpoints/${id}/deliveries?limit=0`)).body.error.param).toBe('limit');
    await server.request('DELETE', `/v1/webhook_endpoints/${id}`);
  });

  it('are updated, disabled (which the event log records), re-enabled and deleted', async () => {
    const { id } = (await server.request('POST', '/v1/webhook_endpoints', { body: { url: 'https://example.com/a', enabled_events: ['*'] } })).body;
    const updated = await server.request('POST', `/v1/webhook_endpoints/${id}`, {
      body: { url: 'https://example.com/b', enabled_events: ['license.revoked'], description: 'revocations', metadata: { a: '1' } },
    });
    expect(updated.body).toMatchObject({ url: 'https://example.com/b', enabled_events: ['license.revoked'], description: 'revocations', metadata: { a: '1' }, status: 'enabled' });
    expect(updated.body.secret).toBeUndefined();

    const disabled = await server.request('POST', `/v1/webhook_endpoints/${id}`, { body: { disabled: true } });
    expect(disabled.body).toMatchObject({ status: 'disabled', disabled_reason: 'manual' });
    const logged = await server.request('GET', `/v1/events?type=webhook_endpoint.disabled&object=${id}`);
    expect(logged.body.data).toHaveLength(1);
    expect(logged.body.data[0].data.object).toMatchObject({ id, object: 'webhook_endpoint', status: 'disabled', disabled_reason: 'manual' });
    expect(JSON.stringify(logged.body)).not.toContain('kmwhsec_');
    // Disabling a disabled endpoint changes nothing and logs nothing.
    await server.request('POST', `/v1/webhook_endpoints/${id}`, { body: { disabled: true } });
    expect((await server.request('GET', `/v1/events?type=webhook_endpoint.disabled&object=${id}`)).body.data).toHaveLength(1);

    const enabled = await server.request('POST', `/v1/webhook_endpoints/${id}`, { body: { disabled: false } });
    expect(enabled.body).toMatchObject({ status: 'enabled', disabled_reason: null });

    const deleted = await server.request('DELETE', `/v1/webhook_endpoints/${id}`);
    expect(deleted.body).toEqual({ id, object: 'webhook_endpoint', deleted: true });
    for (const [method, p] of [
      ['GET', `/v1/webhook_endpoints/${id}`],
      ['POST', `/v1/webhook_endpoints/${id}`],
      ['DELETE', `/v1/webhook_endpoints/${id}`],
      ['POST', `/v1/webhook_endpoints/${id}/roll_secret`],
      ['GET', `/v1/webhook_endpoints/${id}/deliveries`],
    ] as const) {
      const res = await server.request(method, p, method === 'POST' ? { body: {} } : {});
      expect(res.status, `${method} ${p}`).toBe(404);
      expect(res.body.error).toMatchObject({ type: 'not_found_error', code: 'resource_missing' });
    }
  });

  it('belong to one environment', async () => {
    const { id } = (await server.request('POST', '/v1/webhook_endpoints', { body: { url: 'https://example.com/test-only', enabled_events: ['*'] } })).body;
    expect((await server.request('GET', `/v1/webhook_endpoints/${id}`, { key: server.liveKey })).status).toBe(404);
    expect((await server.request('DELETE', `/v1/webhook_endpoints/${id}`, { key: server.liveKey })).status).toBe(404);
    expect((await server.request('GET', '/v1/webhook_endpoints', { key: server.liveKey })).body.data).toEqual([]);
    const live = await server.request('POST', '/v1/webhook_endpoints', { key: server.liveKey, body: { url: 'https://example.com/live', enabled_events: ['*'] } });
    expect(live.body.livemode).toBe(true);
    await server.request('DELETE', `/v1/webhook_endpoints/${id}`);
    await server.request('DELETE', `/v1/webhook_endpoints/${live.body.id}`, { key: server.liveKey });
  });

  it('are limited to 16 per environment', async () => {
    const ids: string[] = [];
    const existing = (await server.request('GET', '/v1/webhook_endpoints?limit=100')).body.data.length;
    for (let i = existing; i < 16; i++) {
      const res = await server.request('POST', '/v1/webhook_endpoints', { body: { url: `https://example.com/${i}`, enabled_events: ['*'] } });
      expect(res.status).toBe(200);
      ids.push(res.body.id);
    }
    const over = await server.request('POST', '/v1/webhook_endpoints', { body: { url: 'https://example.com/17', enabled_events: ['*'] } });
    expect(over.status).toBe(400);
    expect(over.body.error.code).toBe('webhook_endpoint_limit');
    for (const id of ids) await server.request('DELETE', `/v1/webhook_endpoints/${id}`);
  });
});

// ── delivery ────────────────────────────────────────────────────────────

describe('webhook delivery', () => {
  let server: TestServer;
  let receiver: Receiver;
  /** What the receiver answers next, per path; a 200 when nothing is queued. */
  const script = new Map<string, Answer[]>();

  beforeAll(async () => {
    server = await startServer({ env: { KEYMINT_WEBHOOK_TIMEOUT_MS: '500' } });
    receiver = await startReceiver(verify, (r) => script.get(r.path)?.shift() ?? { status: 200 });
  });
  afterEach(async () => {
    // Each test's endpoints go, so later tests' events reach only their own.
    for (const e of (await server.request('GET', '/v1/webhook_endpoints?limit=100')).body.data) await server.request('DELETE', `/v1/webhook_endpoints/${e.id}`);
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  const endpoint = async (p: string, enabled_events: string[], extra: Record<string, unknown> = {}) => {
    const res = await server.request('POST', '/v1/webhook_endpoints', { body: { url: `${receiver.url}${p}`, enabled_events, ...extra } });
    expect(res.status).toBe(200);
    receiver.secrets.set(p, res.body.secret);
    return res.body as { id: string; secret: string };
  };
  const deliveriesOf = async (endpointId: string) => (await server.request('GET', `/v1/webhook_endpoints/${endpointId}/deliveries?limit=100`)).body.data as any[];

  it('delivers an event once, signed as API.md fixes it, with the object as the admin API shows it', async () => {
    const hook = await endpoint('/once', ['license.created']);
    const { license } = await seedLicense(server);
    await waitFor(() => receiver.at('/once').length === 1);
    await sleep(300);
    expect(receiver.at('/once')).toHaveLength(1);
    const [got] = receiver.at('/once');

    // Headers: JSON, and the signature the documented snippet verifies.
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.verified).toBe(true);
    const { t, v1 } = signatureParts(got!.headers['keymint-signature']);
    expect(v1).toHaveLength(1);
    expect(Math.abs(t - Date.now() / 1000)).toBeLessThan(60);
    expect(v1[0]).toBe(createHmac('sha256', hook.secret).update(`${t}.${got!.raw}`).digest('hex'));
    expect(verify(got!.raw, got!.headers['keymint-signature'] as string, 'kmwhsec_wrong')).toBe(false);
    expect(verify(got!.raw.replace('license.created', 'license.revoked'), got!.headers['keymint-signature'] as string, hook.secret)).toBe(false);
    // Stripe's own verifier accepts it: vendors can reuse what they have.
    const stripe = new Stripe('sk_test_unused');
    expect(stripe.webhooks.constructEvent(got!.raw, got!.headers['keymint-signature'] as string, hook.secret)).toMatchObject({ type: 'license.created' });

    // Body: exactly these fields, in this order, and data.object = GET /v1/licenses/:id (key included).
    expect(Object.keys(got!.body)).toEqual(['id', 'object', 'type', 'created', 'livemode', 'data']);
    expect(got!.body).toMatchObject({ object: 'event', type: 'license.created', livemode: false });
    expect(got!.body.id).toMatch(/^kev_/);
    expect(Object.keys(got!.body.data)).toEqual(['object']);
    const current = (await server.request('GET', `/v1/licenses/${license.id}`)).body;
    expect(got!.body.data.object).toEqual(current);
    expect(got!.body.data.object.key).toBe(license.key);
    expect(got!.body).toEqual((await server.request('GET', `/v1/events/${got!.body.id}`)).body);

    const [delivery] = await deliveriesOf(hook.id);
    expect(delivery).toMatchObject({
      object: 'webhook_delivery',
      webhook_endpoint: hook.id,
      event: got!.body.id,
      event_type: 'license.created',
      url: `${receiver.url}/once`,
      attempt: 1,
      manual: false,
      status_code: 200,
      succeeded: true,
      error: null,
      response_body: 'ok',
      livemode: false,
    });
    expect(delivery.id).toMatch(/^whd_/);
    expect(delivery.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('retries a receiver that fails three times, then delivers once, logging all four attempts', async () => {
    script.set('/flaky', [
      { status: 500, body: 'boom' },
      { status: 503, body: 'upstream unavailable' },
      { status: 302, headers: { location: '/elsewhere' } },
    ]);
    const hook = await endpoint('/flaky', ['license.created']);
    await seedLicense(server);
    await waitFor(async () => (await deliveriesOf(hook.id)).some((d) => d.succeeded));
    await sleep(300);

    const got = receiver.at('/flaky');
    expect(got).toHaveLength(4);
    expect(new Set(got.map((r) => r.body.id)).size).toBe(1);
    expect(got.every((r) => r.verified)).toBe(true);

    const log = (await deliveriesOf(hook.id)).reverse();
    expect(log.map((d) => [d.attempt, d.status_code, d.succeeded])).toEqual([
      [1, 500, false],
      [2, 503, false],
      [3, 302, false],
      [4, 200, true],
    ]);
    expect(log.map((d) => d.error)).toEqual(['the endpoint answered 500', 'the endpoint answered 503', 'the endpoint answered 302', null]);
    expect(log.map((d) => d.response_body)).toEqual(['boom', 'upstream unavailable', 'ok', 'ok']);
    expect(log.every((d) => Number.isInteger(d.duration_ms) && d.duration_ms >= 0 && d.created > 0)).toBe(true);
    // The event's own view of its deliveries agrees.
    const byEvent = (await server.request('GET', `/v1/events/${got[0]!.body.id}/deliveries?webhook_endpoint=${hook.id}`)).body.data;
    expect(byEvent.map((d: any) => d.id)).toEqual(log.map((d) => d.id).reverse());
    // The job behind it: one job, four attempts, succeeded.
    const jobs = (await server.request('GET', '/v1/jobs?type=webhook.deliver&limit=100')).body.data;
    const job = jobs.find((j: any) => j.attempts === 4);
    expect(job).toMatchObject({ state: 'succeeded', max_attempts: 20 });
    // A 2xx ends the run of failures.
    expect((await server.request('GET', `/v1/webhook_endpoints/${hook.id}`)).body.failing_since).toBeNull();
  });

  it('treats a receiver that does not answer in time as a failure, and one that refuses as one too', async () => {
    script.set('/slow', ['hang']);
    const hook = await endpoint('/slow', ['license.created']);
    await seedLicense(server);
    await waitFor(async () => (await deliveriesOf(hook.id)).some((d) => d.succeeded));
    const [first, second] = (await deliveriesOf(hook.id)).reverse();
    expect(first).toMatchObject({ attempt: 1, status_code: null, succeeded: false, error: 'timed out after 500 ms', response_body: null });
    expect(first.duration_ms).toBeGreaterThanOrEqual(450);
    expect(second).toMatchObject({ attempt: 2, status_code: 200, succeeded: true });

    // Nothing listens on the port of a closed server.
    const closed = await startReceiver(verify);
    await closed.close();
    const refused = await server.request('POST', '/v1/webhook_endpoints', { body: { url: `${closed.url}/gone`, enabled_events: ['license.created'] } });
    await seedLicense(server);
    await waitFor(async () => (await deliveriesOf(refused.body.id)).length >= 1);
    const [attempt] = await deliveriesOf(refused.body.id);
    expect(attempt).toMatchObject({ status_code: null, succeeded: false, error: 'could not connect: ECONNREFUSED' });
    expect((await server.request('GET', `/v1/webhook_endpoints/${refused.body.id}`)).body.failing_since).toBeGreaterThan(0);
  });

  it('sends each endpoint only the events it asked for, and nothing to a disabled one', async () => {
    const licenses = await endpoint('/licenses', ['license.created', 'license.suspended']);
    const all = await endpoint('/all', ['*']);
    const devices = await endpoint('/devices', ['device.activated', 'device.deactivated']);
    const off = await endpoint('/off', ['*']);
    await server.request('POST', `/v1/webhook_endpoints/${off.id}`, { body: { disabled: true } });

    const { license } = await seedLicense(server, { license: { customer: { email: 'filter@example.com' } } });
    await server.request('POST', `/v1/licenses/${license.id}/suspend`);
    await server.request('POST', `/v1/licenses/${license.id}/reinstate`);
    const activated = await server.request('POST', '/v1/licenses/activate', { key: null, body: { key: license.key, fingerprint: 'machine-1' } });
    expect(activated.status).toBe(201);

    const typesAt = (p: string) => receiver.at(p).map((r) => r.body.type).sort();
    const expected = {
      '/licenses': ['license.created', 'license.suspended'],
      '/all': ['customer.created', 'device.activated', 'license.created', 'license.reinstated', 'license.suspended'],
      '/devices': ['device.activated'],
    };
    await waitFor(() => Object.entries(expected).every(([p, types]) => typesAt(p).length === types.length));
    await sleep(300);
    for (const [p, types] of Object.entries(expected)) expect(typesAt(p), p).toEqual(types);
    expect(receiver.at('/off')).toEqual([]);
    // product.* and policy.* are in the event log but never sent, even to `*`.
    expect((await server.request('GET', '/v1/events?type=product.created')).body.data.length).toBeGreaterThan(0);
    expect(receiver.at('/all').every((r) => r.verified)).toBe(true);
    // device.activated carries the device as the admin API lists it.
    const device = receiver.at('/devices')[0]!.body.data.object;
    expect(device).toEqual((await server.request('GET', `/v1/licenses/${license.id}/devices`)).body.data[0]);
    expect(device).toEqual(activated.body);
    expect(await deliveriesOf(licenses.id)).toHaveLength(2);
    expect(await deliveriesOf(all.id)).toHaveLength(5);
    expect(await deliveriesOf(devices.id)).toHaveLength(1);
    expect(await deliveriesOf(off.id)).toHaveLength(0);
  });

  it('stops retrying when the endpoint is disabled meanwhile', async () => {
    script.set('/down', Array.from({ length: 50 }, () => ({ status: 500 })));
    const hook = await endpoint('/down', ['license.created']);
    await seedLicense(server);
    await waitFor(() => receiver.at('/down').length >= 1);
    await server.request('POST', `/v1/webhook_endpoints/${hook.id}`, { body: { disabled: true } });
    await sleep(800);
    const count = receiver.at('/down').length;
    await sleep(800);
    expect(receiver.at('/down').length).toBe(count);
    expect(count).toBeLessThan(5);
    const dead = (await server.request('GET', '/v1/jobs?type=webhook.deliver&state=dead&limit=100')).body.data;
    expect(dead.some((j: any) => j.last_error === 'the webhook endpoint is disabled')).toBe(true);
  });

  it('rolls the secret: at once by default, or with both signatures during a grace period', async () => {
    const hook = await endpoint('/rolled', ['license.created']);
    const graced = await server.request('POST', `/v1/webhook_endpoints/${hook.id}/roll_secret`, { body: { expires_in: 3600 } });
    expect(graced.status).toBe(200);
    expect(graced.body.secret).toMatch(/^kmwhsec_/);
    expect(graced.body.secret).not.toBe(hook.secret);
    receiver.secrets.set('/rolled', graced.body.secret);
    await seedLicense(server);
    await waitFor(() => receiver.at('/rolled').length === 1);
    const during = receiver.at('/rolled')[0]!;
    const header = during.headers['keymint-signature'] as string;
    expect(signatureParts(header).v1).toHaveLength(2);
    expect(verify(during.raw, header, graced.body.secret)).toBe(true);
    expect(verify(during.raw, header, hook.secret)).toBe(true);

    // No body: the old secret stops at once, and so does the grace of the one before.
    const now = await server.request('POST', `/v1/webhook_endpoints/${hook.id}/roll_secret`);
    expect(now.status).toBe(200);
    receiver.secrets.set('/rolled', now.body.secret);
    await seedLicense(server);
    await waitFor(() => receiver.at('/rolled').length === 2);
    const after = receiver.at('/rolled')[1]!;
    const afterHeader = after.headers['keymint-signature'] as string;
    expect(signatureParts(afterHeader).v1).toHaveLength(1);
    expect(verify(after.raw, afterHeader, now.body.secret)).toBe(true);
    expect(verify(after.raw, afterHeader, graced.body.secret)).toBe(false);
    expect(verify(after.raw, afterHeader, hook.secret)).toBe(false);
    expect((await server.request('GET', `/v1/webhook_endpoints/${hook.id}`)).body.secret).toBeUndefined();
  });

  it('resends an event by hand, as one logged attempt', async () => {
    const a = await endpoint('/resend-a', ['license.created']);
    const b = await endpoint('/resend-b', ['*']);
    const devicesOnly = await endpoint('/resend-devices', ['device.activated']);
    const { license } = await seedLicense(server);
    await waitFor(() => receiver.at('/resend-a').length === 1 && receiver.at('/resend-b').length === 1);
    const eventId = receiver.at('/resend-a')[0]!.body.id;

    const toOne = await server.request('POST', `/v1/events/${eventId}/resend`, { body: { webhook_endpoint: a.id } });
    expect(toOne.body).toEqual({ object: 'event_resend', event: eventId, webhook_endpoints: [a.id] });
    await waitFor(() => receiver.at('/resend-a').length === 2);
    const again = receiver.at('/resend-a')[1]!;
    expect(again.body).toEqual({ ...receiver.at('/resend-a')[0]!.body, data: { object: (await server.request('GET', `/v1/licenses/${license.id}`)).body } });
    expect(again.verified).toBe(true);
    await waitFor(async () => (await deliveriesOf(a.id)).length === 2);
    expect((await deliveriesOf(a.id))[0]).toMatchObject({ event: eventId, attempt: 1, manual: true, succeeded: true });

    const toAll = await server.request('POST', `/v1/events/${eventId}/resend`);
    expect(toAll.status).toBe(200);
    expect([...toAll.body.webhook_endpoints].sort()).toEqual([a.id, b.id].sort());
    await waitFor(() => receiver.at('/resend-a').length === 3 && receiver.at('/resend-b').length === 2);
    expect(receiver.at('/resend-devices')).toHaveLength(0);

    // Refusals.
    const notSubscribed = await server.request('POST', `/v1/events/${eventId}/resend`, { body: { webhook_endpoint: devicesOnly.id } });
    expect(notSubscribed.status).toBe(400);
    expect(notSubscribed.body.error.param).toBe('webhook_endpoint');
    await server.request('POST', `/v1/webhook_endpoints/${b.id}`, { body: { disabled: true } });
    const disabled = await server.request('POST', `/v1/events/${eventId}/resend`, { body: { webhook_endpoint: b.id } });
    expect(disabled.status).toBe(409);
    expect(disabled.body.error.code).toBe('webhook_endpoint_disabled');
    expect((await server.request('POST', `/v1/events/${eventId}/resend`, { body: { webhook_endpoint: 'whe_missing' } })).status).toBe(404);
    expect((await server.request('POST', '/v1/events/kev_missing/resend')).status).toBe(404);
    expect((await server.request('GET', '/v1/events/kev_missing/deliveries')).status).toBe(404);
    expect((await server.request('POST', `/v1/events/${eventId}/resend`, { body: { nope: 1 } })).body.error.param).toBe('nope');
    expect((await server.request('POST', `/v1/events/${eventId}/resend`, { key: server.liveKey })).status).toBe(404);
    const productEvent = (await server.request('GET', '/v1/events?type=product.created&limit=1')).body.data[0];
    const unsendable = await server.request('POST', `/v1/events/${productEvent.id}/resend`);
    expect(unsendable.status).toBe(400);
  });

  it('paginates the delivery log', async () => {
    const hook = await endpoint('/paged', ['license.created']);
    for (let i = 0; i < 3; i++) await seedLicense(server);
    await waitFor(async () => (await deliveriesOf(hook.id)).length === 3);
    const first = await server.request('GET', `/v1/webhook_endpoints/${hook.id}/deliveries?limit=2`);
    expect(first.body).toMatchObject({ object: 'list', has_more: true });
    expect(first.body.data).toHaveLength(2);
    const rest = await server.request('GET', `/v1/webhook_endpoints/${hook.id}/deliveries?limit=2&starting_after=${first.body.data[1].id}`);
    expect(rest.body).toMatchObject({ has_more: false });
    expect(rest.body.data).toHaveLength(1);
    const oneEvent = await server.request('GET', `/v1/webhook_endpoints/${hook.id}/deliveries?event=${rest.body.data[0].event}`);
    expect(oneEvent.body.data.map((d: any) => d.id)).toEqual([rest.body.data[0].id]);
  });
});

// ── the event log ───────────────────────────────────────────────────────

describe('the event log', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ env: { KEYMINT_EVENT_RETENTION_DAYS: '30' } });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("carries each object as the admin API shows it", async () => {
    const { product, policy, license } = await seedLicense(server, { license: { customer: { email: 'log@example.com', name: 'Log' } } });
    const dataOf = async (type: string, id: string) => (await server.request('GET', `/v1/events?type=${type}&object=${id}`)).body.data[0].data.object;
    expect(await dataOf('product.created', product.id)).toEqual((await server.request('GET', `/v1/products/${product.id}`)).body);
    expect(await dataOf('policy.created', policy.id)).toEqual((await server.request('GET', `/v1/policies/${policy.id}`)).body);
    expect(await dataOf('customer.created', license.customer)).toEqual((await server.request('GET', `/v1/customers/${license.customer}`)).body);
    expect(await dataOf('license.created', license.id)).toEqual((await server.request('GET', `/v1/licenses/${license.id}`)).body);
    // The key is re-derived, never stored in the log.
    const rows = await server.db.kysely.selectFrom('events').select('data').execute();
    expect(rows.some((r) => r.data.includes(license.key))).toBe(false);
  });

  it('forgets events, and their delivery logs, older than the retention setting', async () => {
    const before = await server.request('POST', '/v1/products', { body: { name: 'Old' } });
    // A delivery log entry of the same age (port 9: nothing listens).
    const hook = (await server.request('POST', '/v1/webhook_endpoints', { body: { url: 'http://127.0.0.1:9/nothing', enabled_events: ['customer.created'] } })).body;
    const customer = (await server.request('POST', '/v1/customers', { body: { email: 'old@example.com' } })).body;
    const [created] = (await server.request('GET', `/v1/events?object=${customer.id}`)).body.data;
    await waitFor(async () => (await server.request('GET', `/v1/events/${created.id}/deliveries`)).body.data.length > 0);
    await server.request('DELETE', `/v1/webhook_endpoints/${hook.id}`);
    server.clock.advance(31 * 86_400);
    const after = await server.request('POST', '/v1/products', { body: { name: 'New' } });
    // The scheduler sweeps with every run.
    await server.app.scheduler.runOnce();
    expect((await server.request('GET', `/v1/events?object=${before.body.id}`)).body.data).toEqual([]);
    expect((await server.request('GET', `/v1/events?object=${after.body.id}`)).body.data).toHaveLength(1);
    expect((await server.request('GET', `/v1/events/${created.id}/deliveries`)).status).toBe(404);
    expect(await server.db.kysely.selectFrom('webhook_deliveries').select('id').where('event_id', '=', created.id).execute()).toEqual([]);
    expect(await server.app.services.eventRetention.sweep()).toEqual({ events: 0, deliveries: 0 });
  });

  it('reads the retention setting from the environment', () => {
    expect(loadConfig({}).eventRetentionDays).toBe(90);
    expect(loadConfig({ KEYMINT_EVENT_RETENTION_DAYS: '0' }).eventRetentionDays).toBe(0);
    expect(() => loadConfig({ KEYMINT_EVENT_RETENTION_DAYS: '-1' })).toThrow(ConfigError);
    expect(() => loadConfig({ KEYMINT_EVENT_RETENTION_DAYS: 'ninety' })).toThrow(ConfigError);
    expect(loadConfig({}).webhookTimeoutMs).toBe(10_000);
    expect(() => loadConfig({ KEYMINT_WEBHOOK_TIMEOUT_MS: '5' })).toThrow(ConfigError);
  });
});

// ── failing endpoints ───────────────────────────────────────────────────

describe('an endpoint that keeps failing', () => {
  it('is disabled after 20 failed attempts in a row spanning three days, and the event log says so', async () => {
    const server = await startServer();
    const receiver = await startReceiver(verify, (r) => ({ status: r.path === '/dead' ? 500 : 200 }));
    try {
      const hook = (await server.request('POST', '/v1/webhook_endpoints', { body: { url: `${receiver.url}/dead`, enabled_events: ['*'] } })).body;
      const other = (await server.request('POST', '/v1/webhook_endpoints', { body: { url: `${receiver.url}/other`, enabled_events: ['*'] } })).body;
      await server.request('POST', '/v1/customers', { body: { email: 'first@example.com' } });
      await waitFor(() => receiver.at('/dead').length >= 1);
      // The first failure started the run; three days pass before the retries run out.
      server.clock.advance(3 * 86_400 + 60);
      await waitFor(async () => (await server.request('GET', `/v1/webhook_endpoints/${hook.id}`)).body.status === 'disabled', 30_000);

      const disabled = (await server.request('GET', `/v1/webhook_endpoints/${hook.id}`)).body;
      expect(disabled).toMatchObject({ status: 'disabled', disabled_reason: 'failing' });
      expect(receiver.at('/dead')).toHaveLength(DISABLE_AFTER_FAILURES);
      const logged = (await server.request('GET', `/v1/events?type=webhook_endpoint.disabled&object=${hook.id}`)).body.data;
      expect(logged).toHaveLength(1);
      expect(logged[0].data.object).toMatchObject({ id: hook.id, status: 'disabled', disabled_reason: 'failing' });

      // Nothing more reaches the disabled endpoint, and its disabling is sent nowhere.
      await server.request('POST', '/v1/customers', { body: { email: 'second@example.com' } });
      await waitFor(() => receiver.at('/other').filter((r) => r.body.data.object.email === 'second@example.com').length === 1);
      await sleep(200);
      expect(receiver.at('/dead')).toHaveLength(DISABLE_AFTER_FAILURES);
      expect(receiver.received.some((r) => r.body.type === 'webhook_endpoint.disabled')).toBe(false);
    } finally {
      await server.close();
      await receiver.close();
    }
  });
});

// ── crashes and replicas ────────────────────────────────────────────────

describe('webhooks survive a restart', () => {
  it('an event committed by a process that stopped before sending it is sent once after restart', async () => {
    const receiver = await startReceiver(verify);
    const first = await startServer({ worker: { start: false } });
    let second: TestServer | undefined;
    try {
      const hook = (await first.request('POST', '/v1/webhook_endpoints', { body: { url: `${receiver.url}/restart`, enabled_events: ['license.created'] } })).body;
      receiver.secrets.set('/restart', hook.secret);
      const { license } = await seedLicense(first);
      await sleep(300);
      expect(receiver.received).toHaveLength(0);

      // Same database, new process: only the committed job carries the delivery over.
      second = await startServer({ replicaOf: first });
      await waitFor(() => receiver.received.length === 1);
      await sleep(500);
      expect(receiver.received).toHaveLength(1);
      expect(receiver.received[0]).toMatchObject({ verified: true, body: { type: 'license.created', data: { object: { id: license.id, key: license.key } } } });
      expect((await second.request('GET', `/v1/webhook_endpoints/${hook.id}/deliveries`)).body.data).toHaveLength(1);
    } finally {
      await second?.close();
      await first.close();
      await receiver.close();
    }
  });
});

describe.runIf(dialectUnderTest === 'postgres')('two replicas sharing one PostgreSQL database', () => {
  it('deliver every event exactly once between them', async () => {
    const receiver = await startReceiver(verify);
    const a = await startServer();
    const b = await startServer({ replicaOf: a });
    try {
      const hook = (await a.request('POST', '/v1/webhook_endpoints', { body: { url: `${receiver.url}/replicas`, enabled_events: ['license.created'] } })).body;
      receiver.secrets.set('/replicas', hook.secret);
      const { policy } = await seedLicense(a);
      await waitFor(() => receiver.received.length === 1);
      const n = 60;
      const created = await Promise.all(
        Array.from({ length: n }, (_, i) => (i % 2 ? a : b).request('POST', '/v1/licenses', { body: { policy: policy.id } })),
      );
      expect(created.every((r) => r.status === 200)).toBe(true);
      await waitFor(() => receiver.received.length === n + 1, 30_000);
      await sleep(500);
      const ids = receiver.received.map((r) => r.body.id);
      expect(new Set(ids).size).toBe(n + 1);
      expect(ids).toHaveLength(n + 1);
      expect(receiver.received.every((r) => r.verified)).toBe(true);
      const licenseIds = new Set(receiver.received.map((r) => r.body.data.object.id));
      for (const r of created) expect(licenseIds.has(r.body.id)).toBe(true);
      const log = await a.db.kysely.selectFrom('webhook_deliveries').select(['event_id', 'succeeded']).execute();
      expect(log).toHaveLength(n + 1);
      expect(log.every((d) => d.succeeded === 1)).toBe(true);
    } finally {
      await b.close();
      await a.close();
      await receiver.close();
    }
  });
});
