import { describe, expect, it } from 'vitest';
import { inspectLicenseFile, verifyLicenseFile, type VerifyLicenseFileOptions } from '../src/index.js';
import {
  DEVICE,
  envelopeOf,
  FINGERPRINT,
  IMPOSTOR,
  ISSUED,
  issueKey,
  issueLicenseFile,
  KEY,
  LICENSE,
  OTHER_LICENSE_KEY,
  payloadAt,
  RETIRED,
  trustedKeys,
  vectors,
  withEnvelope,
} from './support/issuer.js';

const TTL = 1_209_600;
const NOW = ISSUED + 3600;
const plain = issueLicenseFile(payloadAt(ISSUED, TTL));
const encrypted = issueLicenseFile(payloadAt(ISSUED, TTL), { encryptFor: { key: KEY } });
const bound = issueLicenseFile(payloadAt(ISSUED, TTL, DEVICE), { encryptFor: { key: KEY, fingerprint: FINGERPRINT } });
const boundPlain = issueLicenseFile(payloadAt(ISSUED, TTL, DEVICE));

const check = (file: string | { certificate: string }, options: Partial<VerifyLicenseFileOptions> = {}) =>
  verifyLicenseFile(file, { publicKeys: trustedKeys, key: KEY, now: NOW, ...options });
const reason = async (file: string, options: Partial<VerifyLicenseFileOptions> = {}) => {
  const result = await check(file, options);
  return result.valid ? 'VALID' : result.reason;
};

describe('verifyLicenseFile accepts', () => {
  it('a plain file, returning its payload', async () => {
    expect(await check(plain)).toEqual({ valid: true, payload: payloadAt(ISSUED, TTL), kid: trustedKeys.data[0].id, alg: 'base64+ed25519', encrypted: false });
  });

  it('an encrypted file, with the license key', async () => {
    expect(await check(encrypted)).toMatchObject({ valid: true, encrypted: true, payload: payloadAt(ISSUED, TTL) });
  });

  it('a device-bound file, with the key and the fingerprint', async () => {
    expect(await check(bound, { fingerprint: FINGERPRINT })).toMatchObject({ valid: true, payload: { device: { fingerprint: FINGERPRINT } } });
  });

  it('a license-wide file on any device', async () => {
    expect(await reason(encrypted, { fingerprint: 'any-device' })).toBe('VALID');
  });

  it('the checkout response object itself', async () => {
    expect(await reason({ object: 'license_file', certificate: plain } as never)).toBe('VALID');
  });

  it('CRLF line endings, re-wrapped lines and text around the armor', async () => {
    const body = plain.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const rewrapped = `Your license:\r\n-----BEGIN KEYMINT LICENSE FILE-----\r\n${body.match(/.{1,64}/g)!.join('\r\n')}\r\n-----END KEYMINT LICENSE FILE-----\r\nThanks!`;
    expect(await reason(rewrapped)).toBe('VALID');
  });

  it('a file signed by a retired key that is still trusted', async () => {
    expect(await reason(issueLicenseFile(payloadAt(ISSUED, TTL), { signer: RETIRED }))).toBe('VALID');
  });

  it('a file issued slightly in the future, within the clock skew allowance', async () => {
    expect(await reason(plain, { now: ISSUED - 299 })).toBe('VALID');
    expect(await reason(plain, { now: ISSUED - 599, clockSkew: 600 })).toBe('VALID');
  });
});

describe('verifyLicenseFile refuses', () => {
  describe('MALFORMED', () => {
    const env = envelopeOf(plain);
    const cases: Record<string, string> = {
      'not a file at all': 'hello',
      'no END line': plain.replace('-----END KEYMINT LICENSE FILE-----', ''),
      'another armor label': plain.replaceAll('KEYMINT LICENSE FILE', 'KEYMINT ACTIVATION REQUEST'),
      'two files in one': plain + plain,
      'a body that is not base64': plain.replace(/\n([A-Za-z0-9])/, '\n*'),
      'a body that is not JSON': withEnvelope({}).replace(/\n.*\n/, '\naGVsbG8=\n'),
      'an unknown algorithm': withEnvelope({ ...env, alg: 'rsa+sha256' }),
      'a missing kid': withEnvelope({ ...env, kid: undefined }),
      'a sig that is not 64 bytes': withEnvelope({ ...env, sig: env.sig.slice(0, 40) }),
      'enc that is not base64url': withEnvelope({ ...env, enc: `${env.enc}=` }),
    };
    for (const [name, file] of Object.entries(cases)) {
      it(`for ${name}`, async () => {
        expect(await reason(file)).toBe('MALFORMED');
      });
    }

    it('for a signed payload that is not a license snapshot', async () => {
      expect(await reason(issueLicenseFile({ license: LICENSE, issued: ISSUED }))).toBe('MALFORMED');
      expect(await reason(issueLicenseFile({ ...payloadAt(ISSUED, TTL), ttl: 0 }))).toBe('MALFORMED');
    });

    it('for an enormous input, before any work', async () => {
      expect(await reason('A'.repeat(300_000))).toBe('MALFORMED');
    });

    it('for something that is not text', async () => {
      expect(await reason(null as never)).toBe('MALFORMED');
    });
  });

  it('UNKNOWN_KEY_ID for a kid that is not trusted', async () => {
    expect(await reason(issueLicenseFile(payloadAt(ISSUED, TTL), { signer: { ...IMPOSTOR, id: 'kid_01kfq3zzzzzzzzzzzzzzzzzzzz' } }))).toBe('UNKNOWN_KEY_ID');
    expect(await reason(issueLicenseFile(payloadAt(ISSUED, TTL), { signer: RETIRED }), { publicKeys: [trustedKeys.data[0]] })).toBe('UNKNOWN_KEY_ID');
  });

  describe('BAD_SIGNATURE', () => {
    it('for a plain file whose payload was edited (a longer expiry)', async () => {
      const env = envelopeOf(plain);
      const payload = JSON.parse(Buffer.from(env.enc, 'base64url').toString('utf8'));
      payload.expires += 365 * 86400;
      payload.ttl += 365 * 86400;
      expect(await reason(withEnvelope({ ...env, enc: Buffer.from(JSON.stringify(payload)).toString('base64url') }))).toBe('BAD_SIGNATURE');
    });

    it('for an encrypted file with a flipped ciphertext bit', async () => {
      const env = envelopeOf(encrypted);
      const bytes = Buffer.from(env.enc, 'base64url');
      bytes[20]! ^= 1;
      expect(await reason(withEnvelope({ ...env, enc: bytes.toString('base64url') }))).toBe('BAD_SIGNATURE');
    });

    it('for a file signed by an impostor under a trusted kid', async () => {
      expect(await reason(issueLicenseFile(payloadAt(ISSUED, TTL), { signer: IMPOSTOR }))).toBe('BAD_SIGNATURE');
    });

    it('alg is outside the signature, but relabelling ciphertext as plain yields no payload, and swapping sigs fails', async () => {
      const env = envelopeOf(encrypted);
      expect(await reason(withEnvelope({ ...env, alg: 'base64+ed25519' }))).toBe('MALFORMED');
      expect(await reason(withEnvelope({ ...env, sig: envelopeOf(plain).sig }))).toBe('BAD_SIGNATURE');
    });

    it('before looking at the key, the device or the time', async () => {
      const forged = issueLicenseFile(payloadAt(ISSUED, TTL), { signer: IMPOSTOR });
      expect(await reason(forged, { key: OTHER_LICENSE_KEY, now: ISSUED + 10 * TTL })).toBe('BAD_SIGNATURE');
    });
  });

  describe('EXPIRED', () => {
    it('once the TTL has passed', async () => {
      expect(await reason(plain, { now: ISSUED + TTL - 1 })).toBe('VALID');
      expect(await reason(plain, { now: ISSUED + TTL })).toBe('EXPIRED');
    });

    it('by the sooner of expires and issued + ttl', async () => {
      const inconsistent = issueLicenseFile({ ...payloadAt(ISSUED, 60), expires: ISSUED + TTL });
      expect(await reason(inconsistent, { now: ISSUED + 61 })).toBe('EXPIRED');
    });

    it('by the system clock when no time is given', async () => {
      expect(await reason(plain, { now: undefined })).toBe('EXPIRED');
    });
  });

  it('NOT_YET_VALID when the clock is set back before the file was issued', async () => {
    expect(await reason(plain, { now: ISSUED - 301 })).toBe('NOT_YET_VALID');
    expect(await reason(plain, { now: ISSUED - 86_400 * 30 })).toBe('NOT_YET_VALID');
  });

  describe('WRONG_DEVICE', () => {
    it('for a device-bound file on another device (cannot decrypt)', async () => {
      expect(await check(bound, { fingerprint: 'another-device' })).toMatchObject({ valid: false, reason: 'WRONG_DEVICE', message: expect.stringMatching(/another device/) });
    });

    it('for a device-bound file without a fingerprint', async () => {
      expect(await check(bound)).toMatchObject({ valid: false, reason: 'WRONG_DEVICE', message: expect.stringMatching(/pass its fingerprint/) });
    });

    it('for a plain file naming another device', async () => {
      expect(await reason(boundPlain, { fingerprint: 'another-device' })).toBe('WRONG_DEVICE');
      expect(await reason(boundPlain)).toBe('WRONG_DEVICE');
      expect(await reason(boundPlain, { fingerprint: FINGERPRINT })).toBe('VALID');
    });
  });

  describe('WRONG_KEY', () => {
    it('for a plain file of another license', async () => {
      expect(await check(plain, { key: OTHER_LICENSE_KEY })).toMatchObject({ valid: false, reason: 'WRONG_KEY', message: expect.stringMatching(/another license/) });
    });

    it('for a malformed key', async () => {
      expect(await reason(plain, { key: 'not a key' })).toBe('WRONG_KEY');
      expect(await reason(plain, { key: undefined as never })).toBe('WRONG_KEY');
    });

    it('for a forged key that names the right license', async () => {
      const forged = issueKey(vectors.license_key.claims, IMPOSTOR);
      expect(await check(plain, { key: forged })).toMatchObject({ valid: false, reason: 'WRONG_KEY', message: expect.stringMatching(/not genuine/) });
    });

    it('an encrypted file cannot be opened with another license key', async () => {
      expect(await reason(encrypted, { key: OTHER_LICENSE_KEY })).toBe('WRONG_DEVICE');
    });
  });
});

describe('inspectLicenseFile', () => {
  it('shows a plain payload without verifying and hides an encrypted one', () => {
    expect(inspectLicenseFile(plain)).toMatchObject({ alg: 'base64+ed25519', encrypted: false, payload: { license: { id: LICENSE.id } } });
    expect(inspectLicenseFile(encrypted)).toMatchObject({ alg: 'aes-256-gcm+ed25519', encrypted: true, payload: null });
    expect(inspectLicenseFile('nope')).toBeNull();
  });
});
