import { describe, expect, it } from 'vitest';
import { parseSignatureHeader, verifyResponseSignature, type VerifyResponseOptions } from '../src/index.js';
import { IMPOSTOR, RETIRED, signResponse, trustedKeys } from './support/issuer.js';

const T = 1767225660;
const NONCE = 'QmFzZTY0dXJsTm9uY2VGb3JUZXN0cw';
const PATH = '/v1/licenses/validate';
const BODY = '{"object":"license_validation","valid":true,"code":"VALID","message":"valid","license":null,"device":null,"ts":1767225660}';

function options(overrides: Partial<VerifyResponseOptions> = {}): VerifyResponseOptions {
  return {
    header: signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY }),
    method: 'POST',
    path: PATH,
    nonce: NONCE,
    body: BODY,
    publicKeys: trustedKeys,
    now: T + 5,
    ...overrides,
  };
}
const reason = async (overrides: Partial<VerifyResponseOptions> = {}) => {
  const result = await verifyResponseSignature(options(overrides));
  return result.valid ? 'VALID' : result.reason;
};

describe('verifyResponseSignature', () => {
  it('accepts a response signed for this request, body as text or bytes', async () => {
    expect(await verifyResponseSignature(options())).toEqual({ valid: true, t: T, kid: trustedKeys.data[0].id });
    expect(await reason({ body: new TextEncoder().encode(BODY) })).toBe('VALID');
  });

  it('accepts the header members in another order, with spaces, and ignores unknown members', async () => {
    const header = signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY });
    const parts = header.split(',');
    expect(await reason({ header: `${parts.reverse().join(', ')},v2=future` })).toBe('VALID');
  });

  it('accepts a signature by a retired key that is still trusted', async () => {
    expect(await reason({ header: signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY, signer: RETIRED }) })).toBe('VALID');
  });

  it('MISSING_SIGNATURE when the server did not sign', async () => {
    expect(await reason({ header: null })).toBe('MISSING_SIGNATURE');
    expect(await reason({ header: '' })).toBe('MISSING_SIGNATURE');
  });

  it('MALFORMED for a header that does not parse', async () => {
    const good = signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY });
    for (const header of ['garbage', good.replace(/t=\d+/, 't=soon'), good.replace(/,sig=[^,]+/, ''), `${good},t=${T}`, good.replace(/sig=.{10}/, 'sig=')]) {
      expect(await reason({ header }), header).toBe('MALFORMED');
    }
    expect(parseSignatureHeader('t=1,kid=k,nonce=short,sig=x')).toBeNull();
  });

  it('NONCE_MISMATCH for a response captured for another request (a replay)', async () => {
    expect(await reason({ nonce: 'AnotherNonceOfTheClient123' })).toBe('NONCE_MISMATCH');
  });

  it('UNKNOWN_KEY_ID for a signing key id that is not trusted', async () => {
    const header = signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY, signer: { ...IMPOSTOR, id: 'kid_unknown' } });
    expect(await reason({ header })).toBe('UNKNOWN_KEY_ID');
  });

  describe('BAD_SIGNATURE', () => {
    it('for a server signing with another key under a trusted kid', async () => {
      expect(await reason({ header: signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY, signer: IMPOSTOR }) })).toBe('BAD_SIGNATURE');
    });

    it('for a body edited in transit', async () => {
      expect(await reason({ body: BODY.replace('"valid":true', '"valid":true ') })).toBe('BAD_SIGNATURE');
    });

    it('for a response to another path or method', async () => {
      expect(await reason({ path: '/v1/licenses/activate' })).toBe('BAD_SIGNATURE');
      expect(await reason({ method: 'GET' })).toBe('BAD_SIGNATURE');
    });

    it('for a timestamp edited to look fresh', async () => {
      const header = signResponse({ method: 'POST', path: PATH, t: T, nonce: NONCE, body: BODY }).replace(`t=${T}`, `t=${T + 3600}`);
      expect(await reason({ header, now: T + 3600 })).toBe('BAD_SIGNATURE');
    });
  });

  describe('STALE', () => {
    it('for a response older than the tolerance by the client clock', async () => {
      expect(await reason({ now: T + 300 })).toBe('VALID');
      expect(await reason({ now: T + 301 })).toBe('STALE');
      expect(await reason({ now: T + 1000, tolerance: 1000 })).toBe('VALID');
    });

    it('for a response older than the tolerance by the latest server time seen', async () => {
      expect(await reason({ now: T, lastServerTime: T + 301 })).toBe('STALE');
      expect(await reason({ now: T, lastServerTime: T + 200 })).toBe('VALID');
    });

    it('but not for a server clock ahead of the client', async () => {
      expect(await reason({ now: T - 3600 })).toBe('VALID');
    });
  });
});
