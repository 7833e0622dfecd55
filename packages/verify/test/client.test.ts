import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  createActivationRequest,
  KeymintApiError,
  KeymintClient,
  KeymintNetworkError,
  KeymintOfflineError,
  KeymintSignatureError,
  MemoryStorage,
  parseActivationRequest,
  type KeymintClientOptions,
} from '../src/index.js';
import { FileStorage } from '../src/node.js';
import { FakeKeymint } from './support/fake-keymint.js';
import { DEVICE, envelopeOf, FINGERPRINT, IMPOSTOR, issueKey, issueLicenseFile, KEY, LICENSE, OTHER_LICENSE_KEY, trustedKeys, vectors, withEnvelope } from './support/issuer.js';

let server: FakeKeymint;
let clock: number;
let dirs: string[] = [];

beforeEach(async () => {
  server = await new FakeKeymint().start();
  clock = server.now;
});
afterEach(async () => {
  await server.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs = [];
});

function client(options: Partial<KeymintClientOptions> = {}) {
  return new KeymintClient({ baseUrl: server.url, publicKeys: trustedKeys, timeoutMs: 2_000, now: () => clock, ...options });
}
function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'keymint-storage-'));
  dirs.push(dir);
  return dir;
}
const checkouts = () => server.requests.filter((r) => r.path === '/v1/licenses/checkout');
const rejection = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

describe('online', () => {
  it('activates, keeps a device-bound encrypted license file, and validates with the server', async () => {
    const storage = new MemoryStorage();
    const km = client({ storage });
    const device = await km.activate({ key: KEY, fingerprint: FINGERPRINT, name: 'laptop', platform: 'linux' });
    expect(device).toMatchObject({ object: 'device', fingerprint: FINGERPRINT, name: 'laptop' });
    expect(checkouts()).toHaveLength(1);
    expect(checkouts()[0]!.body).toEqual({ key: KEY, fingerprint: FINGERPRINT, encrypt: true });

    const result = await km.validate({ key: KEY, fingerprint: FINGERPRINT });
    expect(result).toMatchObject({ offline: false, valid: true, code: 'VALID', license: { id: LICENSE.id }, device: { fingerprint: FINGERPRINT } });
    // The file is fresh: validation does not check out again.
    expect(checkouts()).toHaveLength(1);
  });

  it('sends the key trimmed, as pasted keys often carry whitespace', async () => {
    expect(await client().validate({ key: `  ${KEY}\n` })).toMatchObject({ valid: true });
    expect(server.requests[0]!.body.key).toBe(KEY);
  });

  it('asks every response to be signed, with a fresh nonce each time', async () => {
    const km = client();
    await km.validate({ key: KEY });
    await km.validate({ key: KEY });
    const nonces = server.requests.map((r) => r.headers['keymint-accept-signature']);
    expect(nonces.every((n) => typeof n === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(n))).toBe(true);
    expect(new Set(nonces).size).toBe(nonces.length);
  });

  it('checks out a license file, verifies it, and returns its payload', async () => {
    const km = client({ autoCheckout: false });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    const file = await km.checkout({ key: KEY, fingerprint: FINGERPRINT, ttl: 3600, encrypt: true });
    expect(file).toMatchObject({ object: 'license_file', issued: server.now, expires: server.now + 3600, payload: { ttl: 3600, device: { fingerprint: FINGERPRINT } } });
    expect(file.certificate).toMatch(/^-----BEGIN KEYMINT LICENSE FILE-----\n/);
  });

  it('refreshes the stored file after a valid validation once it is half-way to expiry', async () => {
    const km = client({ checkoutTtl: 1000 });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    expect(checkouts()).toHaveLength(1);
    server.now += 400;
    clock += 400;
    await km.validate({ key: KEY, fingerprint: FINGERPRINT });
    expect(checkouts()).toHaveLength(1);
    server.now += 200;
    clock += 200;
    await km.validate({ key: KEY, fingerprint: FINGERPRINT });
    expect(checkouts()).toHaveLength(2);
  });

  it('heartbeats and deactivates, forgetting the device file', async () => {
    const storage = new MemoryStorage();
    const km = client({ storage });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    expect(await km.heartbeat({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ lease_expires_at: server.now + 600 });
    expect(await km.deactivate({ key: KEY, fingerprint: FINGERPRINT })).toEqual({ id: DEVICE.id, object: 'device', deleted: true });
    await server.close();
    const error = await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }));
    expect(error).toMatchObject({ fileReason: 'NO_LICENSE_FILE' });
  });

  it('raises the API error of a signed 4xx', async () => {
    const error = await rejection(client().activate({ key: OTHER_LICENSE_KEY, fingerprint: FINGERPRINT }));
    expect(error).toBeInstanceOf(KeymintApiError);
    expect(error).toMatchObject({ status: 404, code: 'license_not_found', type: 'not_found_error', requestId: 'req_test' });
  });

  it('answers NOT_FOUND for a key that is not genuine without asking the server', async () => {
    const km = client();
    const forged = issueKey(vectors.license_key.claims, IMPOSTOR);
    for (const key of ['KM1.garbage', forged]) {
      expect(await km.validate({ key })).toMatchObject({ valid: false, code: 'NOT_FOUND', offline: false, local: true, license: null });
    }
    const calls = [
      () => km.activate({ key: forged, fingerprint: FINGERPRINT }),
      () => km.checkout({ key: forged }),
      () => km.heartbeat({ key: forged, fingerprint: FINGERPRINT }),
      () => km.deactivate({ key: 'KM1.x', fingerprint: FINGERPRINT }),
    ];
    for (const call of calls) expect(await rejection(call())).toMatchObject({ code: 'INVALID_LICENSE_KEY' });
    expect(server.requests).toEqual([]);
  });

  it('forgets the stored file when the server says the license was revoked', async () => {
    const km = client();
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    server.licenseStatus = 'revoked';
    expect(await km.validate({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ offline: false, valid: false, code: 'REVOKED' });
    await server.close();
    expect(await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }))).toMatchObject({ fileReason: 'NO_LICENSE_FILE' });
  });
});

describe('a spoofed server', () => {
  it('signing with another key is rejected, even with a good file stored', async () => {
    const km = client();
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    server.signer = IMPOSTOR;
    const error = await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }));
    expect(error).toBeInstanceOf(KeymintSignatureError);
    expect(error).toMatchObject({ reason: 'BAD_SIGNATURE', code: 'RESPONSE_SIGNATURE_INVALID' });
  });

  it('that does not sign is rejected', async () => {
    server.signer = null;
    const error = await rejection(client().validate({ key: KEY }));
    expect(error).toBeInstanceOf(KeymintSignatureError);
    expect(error).toMatchObject({ reason: 'MISSING_SIGNATURE' });
    // Its error answers are not believed either.
    expect(await rejection(client().activate({ key: OTHER_LICENSE_KEY, fingerprint: 'f' }))).toMatchObject({ reason: 'MISSING_SIGNATURE' });
  });

  it('cannot sell a license file that its own key signed', async () => {
    const km = client();
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    server.signer = IMPOSTOR;
    expect(await rejection(km.checkout({ key: KEY }))).toBeInstanceOf(KeymintSignatureError);
  });

  it('is accepted only when signature checks are turned off', async () => {
    server.signer = null;
    const km = client({ verifyResponses: false });
    expect(await km.validate({ key: KEY })).toMatchObject({ valid: true });
    expect(server.requests[0]!.headers['keymint-accept-signature']).toBeUndefined();
  });
});

describe('a replayed or altered response', () => {
  it('captured for another request (another nonce) is rejected', async () => {
    const km = client();
    await km.validate({ key: KEY });
    const captured = server.responses.find((r) => r.path === '/v1/licenses/validate')!;
    // Later the license is revoked, and an attacker replays the old VALID answer.
    server.licenseStatus = 'revoked';
    server.replay = captured;
    const error = await rejection(km.validate({ key: KEY }));
    expect(error).toBeInstanceOf(KeymintSignatureError);
    expect(error).toMatchObject({ reason: 'NONCE_MISMATCH' });
  });

  it('signed for another path is rejected', async () => {
    server.signedPathOverride = '/v1/licenses/heartbeat';
    expect(await rejection(client().validate({ key: KEY }))).toMatchObject({ reason: 'BAD_SIGNATURE' });
  });

  it('edited in transit is rejected', async () => {
    server.tamperBody = (body) => Buffer.from(body.toString('utf8').replace('"max_devices":3', '"max_devices":99'));
    expect(await rejection(client().validate({ key: KEY }))).toMatchObject({ reason: 'BAD_SIGNATURE' });
  });

  it('older than the tolerance by the device clock is rejected', async () => {
    server.now = clock - 301;
    expect(await rejection(client().validate({ key: KEY }))).toMatchObject({ reason: 'STALE' });
    expect(await client({ signatureTolerance: 600 }).validate({ key: KEY })).toMatchObject({ valid: true });
  });

  it('older than a server time already seen is rejected, whatever the device clock says', async () => {
    const km = client();
    await km.validate({ key: KEY });
    server.now -= 600;
    clock -= 600;
    expect(await rejection(km.validate({ key: KEY }))).toMatchObject({ reason: 'STALE' });
  });
});

describe('offline fallback', () => {
  it('answers from the stored file when the server is down, marked offline', async () => {
    const km = client({ storage: new FileStorage(tempDir()) });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    const result = await km.validate({ key: KEY, fingerprint: FINGERPRINT, entitlements: ['pro'] });
    expect(result).toMatchObject({ offline: true, valid: true, code: 'VALID', license: { id: LICENSE.id }, device: { fingerprint: FINGERPRINT } });
    if (!result.offline) throw new Error('expected offline');
    expect(result.file).toMatchObject({ encrypted: true, issued: server.now, kid: trustedKeys.data[0].id });
    expect(result.cause).toBeInstanceOf(KeymintNetworkError);
    expect(result.cause).toMatchObject({ code: 'NETWORK_ERROR' });
  });

  it('answers offline on a timeout and on a 5xx', async () => {
    const km = client({ timeoutMs: 200 });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    server.delayMs = 1_000;
    const timedOut = await km.validate({ key: KEY, fingerprint: FINGERPRINT });
    expect(timedOut).toMatchObject({ offline: true, valid: true, cause: { code: 'TIMEOUT' } });
    server.delayMs = 0;
    server.failWith = 502;
    expect(await km.validate({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ offline: true, valid: true, cause: { code: 'SERVER_ERROR', status: 502 } });
  });

  it('survives a restart while offline with FileStorage', async () => {
    const dir = tempDir();
    await client({ storage: new FileStorage(dir) }).activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    const restarted = client({ storage: new FileStorage(dir) });
    expect(await restarted.validate({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ offline: true, valid: true });
    const names = readdirSync(dir);
    expect(names.some((n) => n.startsWith('license-file.'))).toBe(true);
    for (const name of names) expect(statSync(join(dir, name)).mode & 0o777).toBe(0o600);
    expect(names.join(' ')).not.toContain(FINGERPRINT);
  });

  it('refuses a tampered stored file', async () => {
    const dir = tempDir();
    const km = client({ storage: new FileStorage(dir) });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    const name = readdirSync(dir).find((n) => n.startsWith('license-file.'))!;
    const envelope = envelopeOf(readFileSync(join(dir, name), 'utf8'));
    const enc = Buffer.from(envelope.enc, 'base64url');
    enc[30]! ^= 0x20;
    writeFileSync(join(dir, name), withEnvelope({ ...envelope, enc: enc.toString('base64url') }));

    const error = await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }));
    expect(error).toBeInstanceOf(KeymintOfflineError);
    expect(error).toMatchObject({ code: 'OFFLINE_UNAVAILABLE', fileReason: 'BAD_SIGNATURE' });
    expect((error as Error).message).toMatch(/refused/);
  });

  it('refuses a file swapped for one signed by another key', async () => {
    const storage = new MemoryStorage();
    const km = client({ storage });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    const forged = issueLicenseFile(
      { license: { ...LICENSE, expires_at: null }, device: { ...DEVICE }, issued: clock, expires: clock + 10 * 365 * 86400, ttl: 10 * 365 * 86400 },
      { signer: IMPOSTOR, encryptFor: { key: KEY, fingerprint: FINGERPRINT } },
    );
    const [[name]] = [[...(storage as unknown as { values: Map<string, string> }).values.keys()].filter((n) => n.startsWith('license-file.'))];
    storage.set(name!, forged);
    expect(await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }))).toMatchObject({ fileReason: 'BAD_SIGNATURE' });
  });

  it('refuses an expired file', async () => {
    const km = client({ checkoutTtl: 3600 });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    clock += 3600;
    expect(await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }))).toMatchObject({ fileReason: 'EXPIRED' });
  });

  it('is not fooled by setting the clock back after a later server time was seen', async () => {
    const dir = tempDir();
    const km = client({ storage: new FileStorage(dir), autoCheckout: false });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await km.checkout({ key: KEY, fingerprint: FINGERPRINT, ttl: 3600, encrypt: true });
    server.now += 7200;
    clock += 7200;
    await km.validate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    clock -= 7200 - 60;
    expect(await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }))).toMatchObject({ fileReason: 'EXPIRED' });
    // Remembered across restarts too.
    const restarted = client({ storage: new FileStorage(dir) });
    expect(await rejection(restarted.validate({ key: KEY, fingerprint: FINGERPRINT }))).toMatchObject({ fileReason: 'EXPIRED' });
  });

  it('refuses a device-bound file on another device', async () => {
    const km = client();
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    expect(await rejection(km.validate({ key: KEY, fingerprint: 'another-device' }))).toMatchObject({ fileReason: 'NO_LICENSE_FILE' });
  });

  it('judges the snapshot: a license that expires while offline, missing entitlements', async () => {
    const km = client({ checkoutTtl: 30 * 86400 });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    expect(await km.validate({ key: KEY, fingerprint: FINGERPRINT, entitlements: ['sso'] })).toMatchObject({ offline: true, valid: false, code: 'ENTITLEMENTS_MISSING' });
    expect(await km.validate({ key: KEY, fingerprint: FINGERPRINT, product: 'pdt_01kfq3zzzzzzzzzzzzzzzzzzzz' })).toMatchObject({ offline: true, code: 'PRODUCT_MISMATCH' });
    clock = LICENSE.expires_at;
    const expiredLicense = issueLicenseFile({ license: LICENSE, device: DEVICE, issued: clock - 10, expires: clock + 86400, ttl: 86410 }, { encryptFor: { key: KEY, fingerprint: FINGERPRINT } });
    expect((await km.importLicenseFile(expiredLicense, { key: KEY, fingerprint: FINGERPRINT })).valid).toBe(true);
    expect(await km.validate({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ offline: true, valid: false, code: 'EXPIRED' });
  });

  it('throws when nothing is stored, with the network error as the cause', async () => {
    await server.close();
    const error = await rejection(client().validate({ key: KEY }));
    expect(error).toBeInstanceOf(KeymintOfflineError);
    expect(error).toMatchObject({ fileReason: 'NO_LICENSE_FILE', retryable: true });
    expect((error as Error).cause).toBeInstanceOf(KeymintNetworkError);
  });

  it('is off with offlineFallback: false', async () => {
    const km = client({ offlineFallback: false });
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    await server.close();
    expect(await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }))).toBeInstanceOf(KeymintNetworkError);
  });

  it('does not answer offline when the caller aborts', async () => {
    const km = client();
    await km.activate({ key: KEY, fingerprint: FINGERPRINT });
    server.delayMs = 1_000;
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('user cancelled')), 50);
    expect(await rejection(km.validate({ key: KEY, fingerprint: FINGERPRINT }, { signal: controller.signal }))).toMatchObject({ message: 'user cancelled' });
  });
});

describe('air-gapped activation', () => {
  it('writes a request, and a license file made from it validates offline', async () => {
    const text = await createActivationRequest({ key: KEY, fingerprint: FINGERPRINT, name: 'lab pc', metadata: { room: '4' }, created: clock });
    expect(text).toMatch(/^-----BEGIN KEYMINT ACTIVATION REQUEST-----\n([A-Za-z0-9+/=]{1,76}\n)+-----END KEYMINT ACTIVATION REQUEST-----\n$/);
    const request = parseActivationRequest(text)!;
    expect(request).toMatchObject({ v: 1, key: KEY, fingerprint: FINGERPRINT, name: 'lab pc', metadata: { room: '4' }, created: clock });
    expect(request.nonce).toMatch(/^[A-Za-z0-9_-]{32}$/);

    // What the vendor's API does with it (POST /v1/licenses/offline_activations).
    const file = issueLicenseFile(
      { license: LICENSE, device: { ...DEVICE, fingerprint: request.fingerprint, name: request.name }, issued: clock, expires: clock + 86400, ttl: 86400 },
      { encryptFor: { key: request.key, fingerprint: request.fingerprint } },
    );
    await server.close();
    const km = client();
    expect(await km.importLicenseFile(file, { key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ valid: true });
    expect(await km.validate({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ offline: true, valid: true });
    expect(await km.validateOffline({ key: KEY, fingerprint: FINGERPRINT })).toMatchObject({ offline: true, valid: true, device: { name: 'lab pc' } });
  });

  it('refuses bad input', async () => {
    await expect(createActivationRequest({ key: '', fingerprint: 'x' })).rejects.toThrow(TypeError);
    await expect(createActivationRequest({ key: KEY, fingerprint: '' })).rejects.toThrow(TypeError);
    await expect(createActivationRequest({ key: KEY, fingerprint: 'x', nonce: 'short' })).rejects.toThrow(/nonce/);
    expect(parseActivationRequest('nope')).toBeNull();
  });
});
