import { NONCE_SHAPE } from './activation-request.js';
import type { ResponseRejection } from './errors.js';
import { base64UrlDecode, concatBytes, utf8 } from './encoding.js';
import { keySetFor, type PublicKeyInput } from './public-keys.js';

export const ACCEPT_SIGNATURE_HEADER = 'Keymint-Accept-Signature';
export const SIGNATURE_HEADER = 'Keymint-Signature';
export const DEFAULT_SIGNATURE_TOLERANCE = 300;

export interface VerifyResponseOptions {
  /** The `Keymint-Signature` response header (null or undefined when absent). */
  header: string | null | undefined;
  /** The request's method, e.g. `POST`. */
  method: string;
  /** The API path requested, from `/v1/` on, without query string, e.g. `/v1/licenses/validate`. */
  path: string;
  /** The nonce sent in `Keymint-Accept-Signature`. */
  nonce: string;
  /** The response body exactly as received: bytes, or the text they decode to. */
  body: Uint8Array | string;
  publicKeys: PublicKeyInput;
  /** Unix seconds; the system clock by default. */
  now?: number;
  /** The latest server time seen in an earlier verified response, if any. */
  lastServerTime?: number;
  /** How old `t` may be, in seconds, relative to `now` and to `lastServerTime`; default 300. */
  tolerance?: number;
}

export type ResponseVerification =
  | { valid: true; t: number; kid: string }
  | { valid: false; reason: ResponseRejection; message: string };

interface SignatureHeader {
  t: number;
  kid: string;
  nonce: string;
  sig: Uint8Array;
}

const fail = (reason: ResponseRejection, message: string): ResponseVerification => ({ valid: false, reason, message });

/**
 * The message a response signature covers (docs/formats.md, "Signed
 * responses"): UTF-8 of `keymint-response/v1\n<METHOD> <PATH>\n<t>\n<nonce>\n`
 * followed by the raw body bytes.
 */
export function responseSigningMessage(method: string, path: string, t: number, nonce: string, body: Uint8Array | string): Uint8Array {
  const head = utf8(`keymint-response/v1\n${method.toUpperCase()} ${path}\n${t}\n${nonce}\n`);
  return concatBytes(head, typeof body === 'string' ? utf8(body) : body);
}

/**
 * Checks that a response was produced by the vendor's Keymint for this very
 * request. Order: `MISSING_SIGNATURE`, `MALFORMED` (header syntax),
 * `NONCE_MISMATCH` (a response to another request: a replay),
 * `UNKNOWN_KEY_ID`, `BAD_SIGNATURE` (another signer, an edited body, another
 * method or path), then `STALE` — checked only once `t` is known to be
 * genuine, since a forged `t` proves nothing.
 */
export async function verifyResponseSignature(options: VerifyResponseOptions): Promise<ResponseVerification> {
  const keys = keySetFor(options.publicKeys);
  if (options.header === null || options.header === undefined || options.header === '') {
    return fail('MISSING_SIGNATURE', 'the response is not signed: the server is not Keymint, or a proxy stripped the Keymint-Signature header');
  }
  const header = parseSignatureHeader(options.header);
  if (!header) return fail('MALFORMED', 'the Keymint-Signature header is malformed');
  if (header.nonce !== options.nonce) return fail('NONCE_MISMATCH', 'the response was signed for another request: it is a replay');

  const candidates = keys.candidates(header.kid);
  if (candidates.length === 0) return fail('UNKNOWN_KEY_ID', `the response was signed with ${header.kid}, which is not among the trusted public keys`);
  const message = responseSigningMessage(options.method, options.path, header.t, header.nonce, options.body);
  let genuine = false;
  for (const candidate of candidates) {
    if (await candidate.verify(header.sig, message)) {
      genuine = true;
      break;
    }
  }
  if (!genuine) return fail('BAD_SIGNATURE', 'the response signature does not verify: another server signed it, or the body, method or path differ');

  const tolerance = options.tolerance ?? DEFAULT_SIGNATURE_TOLERANCE;
  const now = Math.floor(options.now ?? Date.now() / 1000);
  if (header.t < now - tolerance) {
    return fail('STALE', `the response was signed ${now - header.t} s before this device's clock: an old response, or a clock that is fast`);
  }
  if (options.lastServerTime !== undefined && header.t < options.lastServerTime - tolerance) {
    return fail('STALE', `the response was signed ${options.lastServerTime - header.t} s before a response already seen: an old response`);
  }
  return { valid: true, t: header.t, kid: header.kid };
}

/** `t=<unix>,kid=<id>,nonce=<nonce>,sig=<base64url>`; members in any order, unknown ones ignored, none repeated. */
export function parseSignatureHeader(value: string): SignatureHeader | null {
  if (value.length > 1024) return null;
  const members = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const name = part.slice(0, eq).trim();
    if (members.has(name)) return null;
    members.set(name, part.slice(eq + 1).trim());
  }
  const t = members.get('t');
  const kid = members.get('kid');
  const nonce = members.get('nonce');
  const sig = members.get('sig');
  if (!t || !/^[0-9]{1,12}$/.test(t) || !kid || !/^[A-Za-z0-9_-]{1,128}$/.test(kid) || !nonce || !NONCE_SHAPE.test(nonce) || !sig) return null;
  const signature = base64UrlDecode(sig);
  if (!signature || signature.length !== 64) return null;
  return { t: Number(t), kid, nonce, sig: signature };
}
