import { describe, expect, it } from 'vitest';
import { createKeySet, parsePublicKey, verifyKey } from '../src/index.js';
import { ACTIVE, IMPOSTOR, issueKey, KEY, RETIRED, trustedKeys, vectors } from './support/issuer.js';

const claims = vectors.license_key.claims;
const reason = async (key: string, keys: unknown = trustedKeys, options = {}) => {
  const result = await verifyKey(key, keys as never, options);
  return result.valid ? 'VALID' : result.reason;
};

describe('verifyKey', () => {
  it('returns the claims of a genuine key', async () => {
    expect(await verifyKey(KEY, trustedKeys)).toEqual({ valid: true, claims });
  });

  it('accepts surrounding whitespace from a copy-paste', async () => {
    expect(await reason(`  ${KEY}\n`)).toBe('VALID');
  });

  it('keeps verifying keys signed by a retired signing key (rotation)', async () => {
    expect(await reason(issueKey({ ...claims, kid: RETIRED.id }, RETIRED))).toBe('VALID');
  });

  it('takes the public keys in every documented form', async () => {
    const [active, retired] = trustedKeys.data;
    const forms = [
      trustedKeys,
      trustedKeys.data,
      { [active.id]: active.public_key, [retired.id]: retired.public_key },
      new Map([[active.id, active.public_key_pem]]),
      [{ kid: active.id, publicKey: active.public_key }],
      { id: active.id, public_key_pem: active.public_key_pem },
      active.public_key,
      active.public_key_pem,
      createKeySet(trustedKeys),
    ];
    for (const form of forms) expect(await reason(KEY, form)).toBe('VALID');
  });

  it('refuses public keys that are not Ed25519 keys, loudly', () => {
    expect(() => createKeySet('not-a-key')).toThrow(TypeError);
    expect(() => createKeySet([])).toThrow(/empty/);
    expect(() => createKeySet({ id: 'kid_x', algorithm: 'rsa', public_key: ACTIVE.publicKey })).toThrow(/unsupported/);
    const rsaPem = '-----BEGIN PUBLIC KEY-----\nMFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMOxzFhvX3nMcmFH1Yb7kKt7ODSXbGqq\nYhH7Ur7R7u0ONHtkJVYv0pEGmv2R5e5GTk2s3ysOMNshZyUAn0vlSKUCAwEAAQ==\n-----END PUBLIC KEY-----';
    expect(() => parsePublicKey(rsaPem)).toThrow(/Ed25519/);
  });

  describe('MALFORMED', () => {
    const cases: Record<string, string> = {
      'empty string': '',
      'another prefix': KEY.replace(/^KM1/, 'KM2'),
      'a missing part': KEY.split('.').slice(0, 2).join('.'),
      'a short signature': KEY.slice(0, -2),
      'a character outside base64url': KEY.replace(/\.(.)/, '.+'),
      'an over-long key': `KM1.${'A'.repeat(1100)}.${KEY.split('.')[2]}`,
      'a payload that is not JSON': `KM1.${Buffer.from('hello').toString('base64url')}.${KEY.split('.')[2]}`,
      'a JSON array payload': `KM1.${Buffer.from('[1]').toString('base64url')}.${KEY.split('.')[2]}`,
      'version 2': issueKey({ ...claims, v: 2 }),
      'no lid': issueKey({ ...claims, lid: undefined }),
      'an unknown env': issueKey({ ...claims, env: 'staging' }),
      'a fractional iat': issueKey({ ...claims, iat: 1.5 }),
      // Same bytes, different spelling: the last character carries non-zero padding bits.
      'a non-canonical signature encoding': (() => {
        const sig = KEY.split('.')[2]!;
        const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(sig.at(-1)!);
        return `${KEY.slice(0, KEY.lastIndexOf('.') + 1)}${sig.slice(0, -1)}${'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'[last | 1]}`;
      })(),
    };
    for (const [name, key] of Object.entries(cases)) {
      it(`for ${name}`, async () => {
        expect(await reason(key)).toBe('MALFORMED');
      });
    }

    it('for something that is not a string', async () => {
      expect(await reason(42 as unknown as string)).toBe('MALFORMED');
    });
  });

  it('UNKNOWN_KEY_ID for a kid missing from the trusted set', async () => {
    const result = await verifyKey(issueKey({ ...claims, kid: 'kid_01kfq3zzzzzzzzzzzzzzzzzzzz' }), trustedKeys);
    expect(result).toMatchObject({ valid: false, reason: 'UNKNOWN_KEY_ID' });
  });

  it('UNKNOWN_KEY_ID once the retired key is removed from the set', async () => {
    expect(await reason(issueKey({ ...claims, kid: RETIRED.id }, RETIRED), [trustedKeys.data[0]])).toBe('UNKNOWN_KEY_ID');
  });

  describe('BAD_SIGNATURE', () => {
    it('for an edited payload (another license id)', async () => {
      const [, , sig] = KEY.split('.');
      const forged = `KM1.${Buffer.from(JSON.stringify({ ...claims, lid: 'lic_01kfq3zzzzzzzzzzzzzzzzzzzz' })).toString('base64url')}.${sig}`;
      expect(await reason(forged)).toBe('BAD_SIGNATURE');
    });

    it('for a key signed by an impostor under a trusted kid', async () => {
      expect(await reason(issueKey(claims, IMPOSTOR))).toBe('BAD_SIGNATURE');
    });

    it('for a flipped signature bit', async () => {
      const sig = Buffer.from(KEY.split('.')[2]!, 'base64url');
      sig[10]! ^= 1;
      expect(await reason(`${KEY.slice(0, KEY.lastIndexOf('.'))}.${sig.toString('base64url')}`)).toBe('BAD_SIGNATURE');
    });

    it('for a key signed by the retired key but labelled with the active kid', async () => {
      expect(await reason(issueKey(claims, { ...RETIRED, id: ACTIVE.id }))).toBe('BAD_SIGNATURE');
    });

    it('with a single id-less key, any kid is tried against it and still must verify', async () => {
      expect(await reason(issueKey(claims, IMPOSTOR), ACTIVE.publicKey)).toBe('BAD_SIGNATURE');
      expect(await reason(KEY, ACTIVE.publicKey)).toBe('VALID');
    });
  });

  it('WRONG_ENVIRONMENT and WRONG_PRODUCT when the caller asks for them', async () => {
    expect(await reason(KEY, trustedKeys, { env: 'live' })).toBe('WRONG_ENVIRONMENT');
    expect(await reason(KEY, trustedKeys, { env: 'test' })).toBe('VALID');
    expect(await reason(KEY, trustedKeys, { product: 'pdt_01kfq3zzzzzzzzzzzzzzzzzzzz' })).toBe('WRONG_PRODUCT');
    expect(await reason(KEY, trustedKeys, { product: claims.pid })).toBe('VALID');
  });

  it('never reports WRONG_PRODUCT for a forgery: the signature comes first', async () => {
    expect(await reason(issueKey(claims, IMPOSTOR), trustedKeys, { product: 'pdt_other' })).toBe('BAD_SIGNATURE');
  });
});
