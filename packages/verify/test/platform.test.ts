import { spawnSync } from 'node:child_process';
import { verify as nodeVerify, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKeySet, KeymintError, useEd25519, verifyKey, verifyLicenseFile } from '../src/index.js';
import { ensureBuilt, packageDir } from './support/build.js';
import { IMPOSTOR, issueKey, KEY, trustedKeys, vectors, vectorsDir } from './support/issuer.js';

afterEach(() => {
  useEd25519(null);
  vi.restoreAllMocks();
});

describe('platforms without Ed25519 in WebCrypto', () => {
  it('fail loudly with ED25519_UNSUPPORTED and say what to do', async () => {
    const original = crypto.subtle.importKey.bind(crypto.subtle);
    vi.spyOn(crypto.subtle, 'importKey').mockImplementation(((format: never, data: never, algorithm: { name?: string }, extractable: never, usages: never) => {
      if (algorithm?.name === 'Ed25519') return Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError'));
      return original(format, data, algorithm as never, extractable, usages);
    }) as never);
    const error = await verifyKey(KEY, createKeySet(trustedKeys)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeymintError);
    expect(error).toMatchObject({ code: 'ED25519_UNSUPPORTED', message: expect.stringMatching(/@noble\/ed25519.*useEd25519/) });
  });

  it('work with a verifier plugged in through useEd25519', async () => {
    const calls: number[] = [];
    useEd25519((signature, message, publicKey) => {
      calls.push(publicKey.length);
      const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' });
      return nodeVerify(null, message, key, signature);
    });
    const keys = createKeySet(trustedKeys);
    expect(await verifyKey(KEY, keys)).toMatchObject({ valid: true });
    expect(await verifyKey(issueKey(vectors.license_key.claims, IMPOSTOR), keys)).toMatchObject({ valid: false, reason: 'BAD_SIGNATURE' });
    const file = vectors.license_files.encrypted.certificate;
    expect(await verifyLicenseFile(file, { publicKeys: keys, key: KEY, now: vectors.verify_at })).toMatchObject({ valid: true });
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.every((n) => n === 32)).toBe(true);
  });

  it('a public key that is not a curve point is reported as INVALID_PUBLIC_KEY, not as a platform problem', async () => {
    // 32 bytes that decode to no point on the curve (y = 2 is not on Ed25519).
    const notAPoint = Buffer.alloc(32);
    notAPoint[0] = 2;
    const result = await verifyKey(KEY, { [vectors.license_key.claims.kid]: notAPoint.toString('base64url') }).catch((e: unknown) => e);
    // Some WebCrypto implementations accept any 32 bytes at import and simply fail to verify.
    if (result instanceof KeymintError) expect(result.code).toBe('INVALID_PUBLIC_KEY');
    else expect(result).toMatchObject({ valid: false, reason: 'BAD_SIGNATURE' });
  });
});

describe('Node without a global crypto (Node 18)', () => {
  beforeAll(ensureBuilt);

  // Removes the global the way Node 18 lacks it, then uses the built package: it must find WebCrypto in node:crypto.
  const script = (loader: string) => `
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true, writable: true });
    ${loader}
      .then(async (sdk) => {
        const keys = require(${JSON.stringify(join(vectorsDir, 'signing-keys.json'))});
        const key = ${JSON.stringify(KEY)};
        const result = await sdk.verifyKey(key, keys);
        const file = await sdk.verifyLicenseFile(${JSON.stringify(vectors.license_files.device_bound.certificate)}, { publicKeys: keys, key, fingerprint: ${JSON.stringify(vectors.fingerprint)}, now: ${vectors.verify_at} });
        const request = await sdk.createActivationRequest({ key, fingerprint: 'x' });
        console.log(JSON.stringify({ crypto: typeof globalThis.crypto, key: result.valid, file: file.valid, request: request.startsWith('-----BEGIN') }));
      });`;

  for (const [format, loader] of [
    ['ESM', "import('@keymint/verify')"],
    ['CommonJS', "Promise.resolve(require('@keymint/verify'))"],
  ] as const) {
    it(`${format}: finds WebCrypto in node:crypto`, () => {
      const run = spawnSync(process.execPath, ['-e', script(loader)], { cwd: packageDir, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(JSON.parse(run.stdout)).toEqual({ crypto: 'undefined', key: true, file: true, request: true });
    });
  }
});
