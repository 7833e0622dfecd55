import { execFileSync, spawnSync } from 'node:child_process';
import { createDecipheriv, createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyKey, verifyLicenseFile, verifyResponseSignature, parseActivationRequest } from '../src/index.js';
import { vectorsDir } from './support/issuer.js';

const read = (name: string) => readFileSync(join(vectorsDir, name), 'utf8');
const vectors = JSON.parse(read('vectors.json'));
const signingKeys = JSON.parse(read('signing-keys.json'));

/**
 * The committed vectors, checked with node:crypto and nothing else — what an
 * implementer in another language would do from docs/formats.md alone.
 */
describe('test vectors, checked with plain node:crypto', () => {
  const publicKeyFor = (kid: string) => {
    const entry = signingKeys.data.find((k: { id: string }) => k.id === kid);
    if (!entry) throw new Error(`unknown kid ${kid}`);
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: entry.public_key }, format: 'jwk' });
  };

  it('the public key files agree: raw base64url, PEM and the signing-keys list', () => {
    const raw = read('public-key.txt').trim();
    expect(Buffer.from(raw, 'base64url')).toHaveLength(32);
    const fromPem = createPublicKey(read('public-key.pem')).export({ format: 'jwk' }).x;
    expect(fromPem).toBe(raw);
    expect(signingKeys.data[0]).toMatchObject({ public_key: raw, status: 'active', algorithm: 'ed25519' });
    expect(signingKeys.data[1].status).toBe('retired');
  });

  it('the license key is KM1.<payload>.<signature> with an Ed25519 signature over "KM1.<payload>"', () => {
    const key = read('license-key.txt').trim();
    expect(key).toMatch(/^KM1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/);
    const [prefix, payload, signature] = key.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    expect(claims).toEqual({ v: 1, lid: expect.stringMatching(/^lic_/), pid: expect.stringMatching(/^pdt_/), env: 'test', kid: signingKeys.data[0].id, iat: 1767225600 });
    expect(verify(null, Buffer.from(`${prefix}.${payload}`, 'ascii'), publicKeyFor(claims.kid), Buffer.from(signature!, 'base64url'))).toBe(true);
    // One flipped character in the payload breaks it.
    const edited = `${prefix}.${payload!.slice(0, -2)}${payload!.at(-2) === 'A' ? 'B' : 'A'}${payload!.at(-1)}`;
    expect(verify(null, Buffer.from(edited, 'ascii'), publicKeyFor(claims.kid), Buffer.from(signature!, 'base64url'))).toBe(false);
  });

  it('a key signed by the retired key verifies with the retired public key', () => {
    const key: string = vectors.license_key_signed_by_retired_key.key;
    const [prefix, payload, signature] = key.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
    expect(claims.kid).toBe(signingKeys.data[1].id);
    expect(verify(null, Buffer.from(`${prefix}.${payload}`), publicKeyFor(claims.kid), Buffer.from(signature!, 'base64url'))).toBe(true);
  });

  const openFile = (name: string, fingerprint?: string) => {
    const text = read(name);
    const lines = text.split('\n');
    expect(lines[0]).toBe('-----BEGIN KEYMINT LICENSE FILE-----');
    expect(lines.at(-2)).toBe('-----END KEYMINT LICENSE FILE-----');
    expect(lines.at(-1)).toBe('');
    const body = lines.slice(1, -2);
    expect(body.slice(0, -1).every((l) => l.length === 76)).toBe(true);
    const envelope = JSON.parse(Buffer.from(body.join(''), 'base64').toString('utf8'));
    expect(Object.keys(envelope)).toEqual(['alg', 'kid', 'enc', 'sig']);
    const signed = verify(null, Buffer.from(`license/${envelope.enc}`, 'ascii'), publicKeyFor(envelope.kid), Buffer.from(envelope.sig, 'base64url'));
    expect(signed).toBe(true);
    const enc = Buffer.from(envelope.enc, 'base64url');
    if (envelope.alg === 'base64+ed25519') return { envelope, payload: JSON.parse(enc.toString('utf8')) };
    expect(envelope.alg).toBe('aes-256-gcm+ed25519');
    const key = read('license-key.txt').trim();
    const aesKey = createHash('sha256').update(key, 'utf8').update(fingerprint ?? '', 'utf8').digest();
    const decipher = createDecipheriv('aes-256-gcm', aesKey, enc.subarray(0, 12));
    decipher.setAuthTag(enc.subarray(enc.length - 16));
    const plain = Buffer.concat([decipher.update(enc.subarray(12, enc.length - 16)), decipher.final()]);
    return { envelope, payload: JSON.parse(plain.toString('utf8')) };
  };

  it('the plain license file: base64url payload JSON, signed over "license/" + enc', () => {
    const { payload } = openFile('license-file-plain.lic');
    expect(payload).toEqual(vectors.license_files.plain.payload);
    expect(payload.expires).toBe(payload.issued + payload.ttl);
    expect(payload.device).toBeNull();
  });

  it('the encrypted license file: iv ‖ ciphertext ‖ tag, AES-256-GCM keyed by SHA-256(license key)', () => {
    const { payload } = openFile('license-file-encrypted.lic');
    expect(payload).toEqual(vectors.license_files.plain.payload);
    const key = read('license-key.txt').trim();
    expect(createHash('sha256').update(key, 'utf8').digest('hex')).toBe(vectors.license_files.encrypted.aes_key_hex);
  });

  it('the device-bound file: AES key SHA-256(license key ‖ fingerprint), and the payload names the device', () => {
    const { payload } = openFile('license-file-device.lic', vectors.fingerprint);
    expect(payload.device.fingerprint).toBe(vectors.fingerprint);
    expect(() => openFile('license-file-device.lic')).toThrow(/unable to authenticate|auth/i);
  });

  it('the signed response: Ed25519 over "keymint-response/v1\\nPOST <path>\\n<t>\\n<nonce>\\n" + raw body', () => {
    const r = JSON.parse(read('signed-response.json'));
    const header = Object.fromEntries(r.headers['Keymint-Signature'].split(',').map((kv: string) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    expect(Object.keys(header)).toEqual(['t', 'kid', 'nonce', 'sig']);
    expect(header.nonce).toBe(r.request.headers['Keymint-Accept-Signature']);
    const message = Buffer.concat([Buffer.from(`keymint-response/v1\n${r.request.method} ${r.request.path}\n${header.t}\n${header.nonce}\n`, 'utf8'), Buffer.from(r.body, 'utf8')]);
    expect(createHash('sha256').update(message).digest('hex')).toBe(r.signed_message_sha256_hex);
    expect(verify(null, message, publicKeyFor(header.kid), Buffer.from(header.sig, 'base64url'))).toBe(true);
    const otherPath = Buffer.from(message.toString('utf8').replace('/v1/licenses/validate', '/v1/licenses/activate'), 'utf8');
    expect(verify(null, otherPath, publicKeyFor(header.kid), Buffer.from(header.sig, 'base64url'))).toBe(false);
  });

  it('the activation request: base64 JSON wrapped at 76 between the armor lines', () => {
    const text = read('activation-request.txt');
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('-----BEGIN KEYMINT ACTIVATION REQUEST-----');
    expect(lines.at(-1)).toBe('-----END KEYMINT ACTIVATION REQUEST-----');
    const json = JSON.parse(Buffer.from(lines.slice(1, -1).join(''), 'base64').toString('utf8'));
    expect(Object.keys(json)).toEqual(['v', 'key', 'fingerprint', 'nonce', 'name', 'platform', 'created']);
    expect(json.key).toBe(read('license-key.txt').trim());
    expect(json.nonce).toMatch(/^[A-Za-z0-9_-]{16,128}$/);
  });
});

describe('test vectors are reproducible', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keymint-vectors-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('running generate.mjs again writes the same bytes as the committed files', () => {
    execFileSync(process.execPath, [join(vectorsDir, 'generate.mjs'), dir]);
    const committed = readdirSync(vectorsDir).filter((f) => !['generate.mjs', 'verify_vectors.py'].includes(f)).sort();
    expect(readdirSync(dir).sort()).toEqual(committed);
    for (const name of committed) expect(readFileSync(join(dir, name), 'utf8'), name).toBe(read(name));
  });
});

const hasPythonCryptography = spawnSync('python3', ['-c', 'import cryptography'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasPythonCryptography)('test vectors, checked by a Python verifier written from docs/formats.md', () => {
  it('verify_vectors.py passes every check', () => {
    const run = spawnSync('python3', [join(vectorsDir, 'verify_vectors.py')], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^10 passed, 0 failed$/m);
    expect(run.status).toBe(0);
  });
});

describe('the SDK accepts the vectors', () => {
  const at = vectors.verify_at as number;
  const key = read('license-key.txt');

  it('keys: by the active key (raw, PEM, list) and by the retired one', async () => {
    for (const keys of [signingKeys, signingKeys.data, read('public-key.txt'), read('public-key.pem')]) {
      expect(await verifyKey(key, keys)).toEqual({ valid: true, claims: vectors.license_key.claims });
    }
    expect((await verifyKey(vectors.license_key_signed_by_retired_key.key, signingKeys)).valid).toBe(true);
  });

  it('files: plain, encrypted and device-bound', async () => {
    const plain = await verifyLicenseFile(read('license-file-plain.lic'), { publicKeys: signingKeys, key, now: at });
    expect(plain).toMatchObject({ valid: true, encrypted: false, payload: vectors.license_files.plain.payload });
    const encrypted = await verifyLicenseFile(read('license-file-encrypted.lic'), { publicKeys: signingKeys, key, now: at });
    expect(encrypted).toMatchObject({ valid: true, encrypted: true, payload: vectors.license_files.plain.payload });
    const bound = await verifyLicenseFile(read('license-file-device.lic'), { publicKeys: signingKeys, key, fingerprint: vectors.fingerprint, now: at });
    expect(bound).toMatchObject({ valid: true, encrypted: true, payload: vectors.license_files.device_bound.payload });
    const retired = await verifyLicenseFile(vectors.license_files.signed_by_retired_key.certificate, { publicKeys: signingKeys, key, now: at });
    expect(retired.valid).toBe(true);
  });

  it('the signed response', async () => {
    const r = JSON.parse(read('signed-response.json'));
    const result = await verifyResponseSignature({
      header: r.headers['Keymint-Signature'],
      method: r.request.method,
      path: r.request.path,
      nonce: r.request.headers['Keymint-Accept-Signature'],
      body: r.body,
      publicKeys: signingKeys,
      now: 1767225660 + 10,
    });
    expect(result).toEqual({ valid: true, t: 1767225660, kid: signingKeys.data[0].id });
  });

  it('the activation request', () => {
    expect(parseActivationRequest(read('activation-request.txt'))).toEqual(JSON.parse(vectors.activation_request.json));
  });
});
