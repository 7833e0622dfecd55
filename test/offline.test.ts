import { generateKeyPairSync, sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KeymintClient,
  KeymintSignatureError,
  createActivationRequest,
  verifyKey,
  verifyLicenseFile,
  verifyResponseSignature,
} from '../packages/verify/src/index.js';
import { seedLicense, startServer, type TestServer } from './support/harness.js';

/**
 * The server's side of offline licensing, checked with the vendor SDK
 * (packages/verify) exactly as an app would use it: license files, signed
 * responses, air-gapped activation, key rotation.
 */
describe('offline licensing', () => {
  let server: TestServer;
  let publicKeys: unknown;

  beforeAll(async () => {
    server = await startServer();
    publicKeys = (await server.request('GET', '/v1/signing_keys')).body;
  });
  afterAll(async () => {
    await server?.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) => server.request('POST', path, { key: null, body, headers });
  const client = () => new KeymintClient({ baseUrl: server.url, publicKeys: publicKeys as never, timeoutMs: 5_000 });

  it('the SDK activates, validates with signed responses, and checks out a file it can verify offline', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 2, entitlements: ['pro'] } });
    const app = client();
    const device = await app.activate({ key: license.key, fingerprint: 'laptop-1', name: 'Laptop' });
    expect(device).toMatchObject({ object: 'device', fingerprint: 'laptop-1' });
    const validation = await app.validate({ key: license.key, fingerprint: 'laptop-1' });
    expect(validation).toMatchObject({ valid: true, code: 'VALID', offline: false });
    const file = await app.checkout({ key: license.key, fingerprint: 'laptop-1', encrypt: true });
    expect(file.payload).toMatchObject({ license: { id: license.id, entitlements: ['pro'] }, device: { fingerprint: 'laptop-1' }, ttl: 14 * 86_400 });
    const offline = await verifyLicenseFile(file.certificate, { publicKeys: publicKeys as never, key: license.key, fingerprint: 'laptop-1' });
    expect(offline.valid).toBe(true);
    const elsewhere = await verifyLicenseFile(file.certificate, { publicKeys: publicKeys as never, key: license.key, fingerprint: 'laptop-2' });
    expect(elsewhere).toMatchObject({ valid: false, reason: 'WRONG_DEVICE' });
  });

  it('plain files verify with the key alone; a tampered file does not', async () => {
    const { license } = await seedLicense(server);
    const res = await post('/v1/licenses/checkout', { key: license.key, ttl: 3600 });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ object: 'license_file', expires: res.body.issued + 3600 });
    expect(res.body.certificate).toMatch(/^-----BEGIN KEYMINT LICENSE FILE-----\n[A-Za-z0-9+/=\n]+-----END KEYMINT LICENSE FILE-----\n$/);
    for (const line of res.body.certificate.split('\n')) expect(line.length).toBeLessThanOrEqual(76);
    expect((await verifyLicenseFile(res.body.certificate, { publicKeys: publicKeys as never, key: license.key })).valid).toBe(true);
    const body = res.body.certificate.split('\n').slice(1, -2).join('');
    const envelope = JSON.parse(Buffer.from(body, 'base64').toString());
    const payload = JSON.parse(Buffer.from(envelope.enc, 'base64url').toString());
    payload.license.status = 'active';
    payload.expires += 10 * 365 * 86_400;
    const forged = { ...envelope, enc: Buffer.from(JSON.stringify(payload)).toString('base64url') };
    const text = `-----BEGIN KEYMINT LICENSE FILE-----\n${Buffer.from(JSON.stringify(forged)).toString('base64')}\n-----END KEYMINT LICENSE FILE-----\n`;
    expect(await verifyLicenseFile(text, { publicKeys: publicKeys as never, key: license.key })).toMatchObject({ valid: false, reason: 'BAD_SIGNATURE' });
  });

  it('refuses files for devices not activated, for revoked or suspended licenses, and TTLs outside the policy', async () => {
    const { license } = await seedLicense(server, { policy: { max_file_ttl: 7 * 86_400 } });
    const notActivated = await post('/v1/licenses/checkout', { key: license.key, fingerprint: 'stranger' });
    expect(notActivated.status).toBe(404);
    expect(notActivated.body.error.code).toBe('device_not_activated');
    expect((await post('/v1/licenses/checkout', { key: license.key, ttl: 30 * 86_400 })).body.error).toMatchObject({ code: 'parameter_invalid', param: 'ttl' });
    // The default 14 days is clamped to the policy's 7-day maximum.
    expect((await post('/v1/licenses/checkout', { key: license.key })).body.expires - server.clock.now()).toBe(7 * 86_400);
    await server.request('POST', `/v1/licenses/${license.id}/suspend`);
    expect((await post('/v1/licenses/checkout', { key: license.key })).status).toBe(403);
    await server.request('POST', `/v1/licenses/${license.id}/revoke`);
    const revoked = await post('/v1/licenses/checkout', { key: license.key });
    expect(revoked.status).toBe(403);
    expect(revoked.body.error.code).toBe('license_not_active');
    expect((await post('/v1/licenses/checkout', { key: 'KM1.nope.' + 'A'.repeat(86) })).status).toBe(404);
  });

  it('signs responses when asked, over the body, nonce, time and path', async () => {
    const { license } = await seedLicense(server);
    const nonce = 'n0nce-for-this-request-0001';
    const res = await fetch(`${server.url}/v1/licenses/validate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'keymint-accept-signature': nonce },
      body: JSON.stringify({ key: license.key }),
    });
    const body = await res.text();
    const header = res.headers.get('keymint-signature');
    expect(header).toMatch(new RegExp(`^t=\\d+,kid=kid_[0-9a-z]+,nonce=${nonce},sig=[A-Za-z0-9_-]{86}$`));
    const check = (overrides: Partial<Parameters<typeof verifyResponseSignature>[0]>) =>
      verifyResponseSignature({ header, method: 'POST', path: '/v1/licenses/validate', nonce, body, publicKeys: publicKeys as never, ...overrides });
    expect((await check({})).valid).toBe(true);
    // A replay of this response to another request, an edited body, another path: all refused.
    expect(await check({ nonce: 'another-nonce-entirely-0002' })).toMatchObject({ valid: false, reason: 'NONCE_MISMATCH' });
    expect(await check({ body: body.replace('"valid":true', '"valid":false') })).toMatchObject({ valid: false, reason: 'BAD_SIGNATURE' });
    expect(await check({ path: '/v1/licenses/activate' })).toMatchObject({ valid: false, reason: 'BAD_SIGNATURE' });
    // Errors are signed too; a bad nonce is refused, unsigned; no header, no signature.
    const conflict = await post('/v1/licenses/deactivate', { key: license.key, fingerprint: 'none' }, { 'keymint-accept-signature': nonce });
    expect(conflict.status).toBe(404);
    expect(conflict.headers.get('keymint-signature')).toContain(`nonce=${nonce}`);
    const bad = await post('/v1/licenses/validate', { key: license.key }, { 'keymint-accept-signature': 'short' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_signature_nonce');
    expect(bad.headers.get('keymint-signature')).toBeNull();
    expect((await post('/v1/licenses/validate', { key: license.key })).headers.get('keymint-signature')).toBeNull();
  });

  it('the SDK refuses a spoofed server that signs with another key', async () => {
    const { license } = await seedLicense(server);
    const { privateKey } = generateKeyPairSync('ed25519');
    const kid = JSON.parse(Buffer.from(license.key.split('.')[1], 'base64url').toString()).kid;
    // A fake server answering VALID, signing with a key of its own under the real kid.
    const http = await import('node:http');
    const spoof = http.createServer((req, res) => {
      const nonce = String(req.headers['keymint-accept-signature']);
      const body = JSON.stringify({ object: 'license_validation', valid: true, code: 'VALID', message: 'ok', license: null, device: null, ts: 1 });
      const t = Math.floor(Date.now() / 1000);
      const sig = sign(null, Buffer.concat([Buffer.from(`keymint-response/v1\nPOST /v1/licenses/validate\n${t}\n${nonce}\n`), Buffer.from(body)]), privateKey).toString('base64url');
      res.writeHead(200, { 'content-type': 'application/json', 'keymint-signature': `t=${t},kid=${kid},nonce=${nonce},sig=${sig}` });
      res.end(body);
    });
    await new Promise<void>((r) => spoof.listen(0, '127.0.0.1', () => r()));
    try {
      const { port } = spoof.address() as { port: number };
      const fooled = new KeymintClient({ baseUrl: `http://127.0.0.1:${port}`, publicKeys: publicKeys as never, offlineFallback: false });
      await expect(fooled.validate({ key: license.key })).rejects.toBeInstanceOf(KeymintSignatureError);
    } finally {
      spoof.close();
    }
  });

  it('air-gapped activation: a request text becomes a device-bound file, idempotently, within the device limit', async () => {
    const { license } = await seedLicense(server, { policy: { max_devices: 1 } });
    const text = await createActivationRequest({ key: license.key, fingerprint: 'vault-pc', name: 'Vault', platform: 'linux' });
    const first = await server.request('POST', '/v1/licenses/offline_activations', { body: { request: text } });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ object: 'license_file', device: { fingerprint: 'vault-pc', name: 'Vault', platform: 'linux' } });
    const verified = await verifyLicenseFile(first.body.certificate, { publicKeys: publicKeys as never, key: license.key, fingerprint: 'vault-pc' });
    expect(verified.valid).toBe(true);
    // Encrypted by default: without the fingerprint it cannot even be read.
    expect(await verifyLicenseFile(first.body.certificate, { publicKeys: publicKeys as never, key: license.key })).toMatchObject({ valid: false, reason: 'WRONG_DEVICE' });
    const again = await server.request('POST', '/v1/licenses/offline_activations', { body: { request: text } });
    expect(again.status).toBe(200);
    expect(again.body.device.id).toBe(first.body.device.id);
    const second = await createActivationRequest({ key: license.key, fingerprint: 'other-pc' });
    expect((await server.request('POST', '/v1/licenses/offline_activations', { body: { request: second } })).status).toBe(409);
    expect((await server.request('POST', '/v1/licenses/offline_activations', { key: server.liveKey, body: { request: text } })).status).toBe(404);
    const garbage = await server.request('POST', '/v1/licenses/offline_activations', { body: { request: 'hello' } });
    expect(garbage.status).toBe(400);
    expect(garbage.body.error.code).toBe('invalid_activation_request');
  });

  it('`keymint verify` checks a key and a license file offline', async () => {
    const { spawnSync } = await import('node:child_process');
    const { license } = await seedLicense(server);
    const pk = (publicKeys as { data: Array<{ public_key: string }> }).data[0]!.public_key;
    const run = (args: string[], input?: string) => spawnSync(process.execPath, ['bin/keymint.js', 'verify', ...args], { encoding: 'utf8', input });
    const ok = run([license.key, '--public-key', pk]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toContain(license.id);
    const tampered = license.key.slice(0, -3) + (license.key.endsWith('AAA') ? 'BBB' : 'AAA');
    expect(run([tampered, '--public-key', pk]).status).not.toBe(0);
    const file = (await post('/v1/licenses/checkout', { key: license.key })).body.certificate;
    const fileCheck = run(['-', '--public-key', pk, '--key', license.key], file);
    expect(fileCheck.status, fileCheck.stderr).toBe(0);
  });

  it('key rotation: new keys use the new key, old keys and their answers keep verifying, a used key cannot be removed', async () => {
    const { license: old, policy } = await seedLicense(server);
    const before = (await server.request('GET', '/v1/signing_keys')).body.data;
    const rotated = await server.request('POST', '/v1/signing_keys');
    expect(rotated.body).toMatchObject({ object: 'signing_key', status: 'active', algorithm: 'ed25519' });
    const keys = (await server.request('GET', '/v1/signing_keys')).body;
    expect(keys.data.filter((k: any) => k.status === 'active')).toHaveLength(1);
    expect(keys.data.find((k: any) => k.id === before[0].id).status).toBe('retired');

    const fresh = (await server.request('POST', '/v1/licenses', { body: { policy: policy.id } })).body;
    const kidOf = (key: string) => JSON.parse(Buffer.from(key.split('.')[1]!, 'base64url').toString()).kid;
    expect(kidOf(fresh.key)).toBe(rotated.body.id);
    expect(kidOf(old.key)).toBe(before[0].id);
    // An app holding every key verifies both; an app shipped before the rotation still verifies its old customers.
    expect((await verifyKey(fresh.key, keys)).valid).toBe(true);
    expect((await verifyKey(old.key, publicKeys as never)).valid).toBe(true);
    expect((await verifyKey(fresh.key, publicKeys as never)).valid).toBe(false);
    const file = await post('/v1/licenses/checkout', { key: old.key });
    expect((await verifyLicenseFile(file.body.certificate, { publicKeys: publicKeys as never, key: old.key })).valid).toBe(true);
    expect((await new KeymintClient({ baseUrl: server.url, publicKeys: publicKeys as never }).validate({ key: old.key })).code).toBe('VALID');

    expect((await server.request('DELETE', `/v1/signing_keys/${rotated.body.id}`)).body.error.code).toBe('signing_key_active');
    expect((await server.request('DELETE', `/v1/signing_keys/${before[0].id}`)).body.error.code).toBe('signing_key_in_use');
    publicKeys = keys;
  });
});
