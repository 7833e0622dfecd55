import type { KeyRejection } from './errors.js';
import { base64UrlDecode, parseJsonObject, utf8, utf8Decode } from './encoding.js';
import { keySetFor, type PublicKeyInput } from './public-keys.js';

/**
 * What a license key proves offline: this vendor issued license `lid` of
 * product `pid` in environment `env`, signed with key `kid` at `iat`. Members
 * the server adds later are kept as they are.
 */
export interface KeyClaims {
  v: 1;
  lid: string;
  pid: string;
  env: 'test' | 'live';
  kid: string;
  iat: number;
  [claim: string]: unknown;
}

export type KeyVerification =
  | { valid: true; claims: KeyClaims }
  | { valid: false; reason: KeyRejection; message: string };

export interface VerifyKeyOptions {
  /** Also require this product id (`pdt_…`): a genuine key for another of the vendor's products is `WRONG_PRODUCT`. */
  product?: string;
  /** Also require this environment: a genuine test key in a live build is `WRONG_ENVIRONMENT`. */
  env?: 'test' | 'live';
}

/** Real keys are ~230 characters; the server refuses anything over 1,024, and so do we before any work. */
export const MAX_KEY_LENGTH = 1024;
const KEY_SHAPE = /^KM1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{86})$/;

const fail = (reason: KeyRejection, message: string): KeyVerification => ({ valid: false, reason, message });

/**
 * Checks that `key` is a genuine Keymint license key (`KM1.<payload>.<sig>`,
 * docs/formats.md) signed by one of `publicKeys`. Says nothing about the
 * license's current state — expiry, suspension, devices — which only online
 * validation or a license file can tell.
 *
 * Checks, in order: shape and claims (`MALFORMED`), the signing key id
 * (`UNKNOWN_KEY_ID`), the signature (`BAD_SIGNATURE`), then the caller's
 * expectations (`WRONG_ENVIRONMENT`, `WRONG_PRODUCT`) — those last only for a
 * key already known to be genuine, so they never vouch for a forgery.
 */
export async function verifyKey(key: string, publicKeys: PublicKeyInput, options: VerifyKeyOptions = {}): Promise<KeyVerification> {
  const keys = keySetFor(publicKeys);
  const parsed = parseKey(key);
  if (!parsed.ok) return fail('MALFORMED', parsed.message);
  const { claims, signedPart, signature } = parsed;

  const candidates = keys.candidates(claims.kid);
  if (candidates.length === 0) return fail('UNKNOWN_KEY_ID', `the key was signed with ${claims.kid}, which is not among the trusted public keys`);
  const message = utf8(signedPart);
  let genuine = false;
  for (const candidate of candidates) {
    if (await candidate.verify(signature, message)) {
      genuine = true;
      break;
    }
  }
  if (!genuine) return fail('BAD_SIGNATURE', 'the key does not carry a valid signature by its signing key');

  if (options.env !== undefined && claims.env !== options.env) return fail('WRONG_ENVIRONMENT', `the key is for the ${claims.env} environment, not ${options.env}`);
  if (options.product !== undefined && claims.pid !== options.product) return fail('WRONG_PRODUCT', `the key is for product ${claims.pid}, not ${options.product}`);
  return { valid: true, claims };
}

type ParsedKey = { ok: true; claims: KeyClaims; signedPart: string; signature: Uint8Array } | { ok: false; message: string };

/** Decodes a key without checking its signature; exported for tools that only need the claims (never trust them unverified). */
export function parseKey(key: string): ParsedKey {
  if (typeof key !== 'string') return { ok: false, message: 'a license key must be a string' };
  const trimmed = key.trim();
  if (trimmed.length > MAX_KEY_LENGTH) return { ok: false, message: 'the key is too long to be a Keymint license key' };
  const match = KEY_SHAPE.exec(trimmed);
  if (!match) return { ok: false, message: 'the key is not of the form KM1.<payload>.<signature>' };
  const payloadBytes = base64UrlDecode(match[1]!);
  const signature = base64UrlDecode(match[2]!);
  if (!payloadBytes || !signature || signature.length !== 64) return { ok: false, message: 'the key is not valid base64url' };
  const json = utf8Decode(payloadBytes);
  const claims = json === null ? null : parseJsonObject(json);
  if (!claims) return { ok: false, message: 'the key payload is not a JSON object' };
  if (claims.v !== 1) return { ok: false, message: 'the key payload has an unsupported version' };
  for (const name of ['lid', 'pid', 'kid'] as const) {
    if (typeof claims[name] !== 'string' || (claims[name] as string).length === 0) return { ok: false, message: `the key payload has no ${name}` };
  }
  if (claims.env !== 'test' && claims.env !== 'live') return { ok: false, message: 'the key payload has no valid env' };
  if (!Number.isSafeInteger(claims.iat)) return { ok: false, message: 'the key payload has no valid iat' };
  return { ok: true, claims: claims as KeyClaims, signedPart: trimmed.slice(0, trimmed.lastIndexOf('.')), signature };
}
