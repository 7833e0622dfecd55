import { aesGcmDecrypt, sha256 } from './crypto.js';
import type { LicenseFileRejection } from './errors.js';
import { base64UrlDecode, concatBytes, dearmor, parseJsonObject, utf8, utf8Decode } from './encoding.js';
import { parseKey, verifyKey } from './license-key.js';
import { keySetFor, type PublicKeyInput } from './public-keys.js';
import type { Device, License } from './types.js';

export const LICENSE_FILE_LABEL = 'KEYMINT LICENSE FILE';
export type LicenseFileAlgorithm = 'base64+ed25519' | 'aes-256-gcm+ed25519';

/** The signed snapshot inside a license file (docs/formats.md). */
export interface LicenseFilePayload {
  license: License;
  device: Device | null;
  issued: number;
  expires: number;
  ttl: number;
  [member: string]: unknown;
}

export interface VerifyLicenseFileOptions {
  publicKeys: PublicKeyInput;
  /** The license key the app was given: decrypts encrypted files and ties the file to this license. */
  key: string;
  /** This device's fingerprint: required for files bound to a device. */
  fingerprint?: string;
  /** Unix seconds; defaults to the system clock. Pass a trusted time when you have one (see `KeymintClient`). */
  now?: number;
  /** How far in the future `issued` may be before the clock counts as rolled back; default 300 s. */
  clockSkew?: number;
}

export type LicenseFileVerification =
  | { valid: true; payload: LicenseFilePayload; kid: string; alg: LicenseFileAlgorithm; encrypted: boolean }
  | { valid: false; reason: LicenseFileRejection; message: string };

/** Far larger than any real file (a license with 50 metadata entries is a few KiB); bounds the work on hostile input. */
export const MAX_LICENSE_FILE_LENGTH = 256 * 1024;
export const DEFAULT_CLOCK_SKEW = 300;

const fail = (reason: LicenseFileRejection, message: string): LicenseFileVerification => ({ valid: false, reason, message });

/**
 * Verifies a license file (the `certificate` of `POST /v1/licenses/checkout`,
 * or the checkout response itself) and returns its payload.
 *
 * Order, each a reason: `MALFORMED` (armor, envelope), `UNKNOWN_KEY_ID`,
 * `BAD_SIGNATURE` — the signature covers `enc` as written, so it is checked
 * before anything inside is decrypted or parsed — then `WRONG_DEVICE` (cannot
 * decrypt: bound to another fingerprint, or none given), `MALFORMED`
 * (payload), `WRONG_KEY` (a file for another license, or a key that is
 * malformed or not genuine), `WRONG_DEVICE` (bound to another fingerprint), `NOT_YET_VALID`
 * (issued in the future: the clock was set back) and `EXPIRED` (past its TTL).
 */
export async function verifyLicenseFile(
  file: string | { certificate: string },
  options: VerifyLicenseFileOptions,
): Promise<LicenseFileVerification> {
  const keys = keySetFor(options.publicKeys);
  const text = typeof file === 'string' ? file : file?.certificate;
  if (typeof text !== 'string') return fail('MALFORMED', 'a license file must be text');
  if (text.length > MAX_LICENSE_FILE_LENGTH) return fail('MALFORMED', 'the license file is too large');

  const envelope = parseEnvelope(text);
  if (!envelope) return fail('MALFORMED', 'not a Keymint license file');
  const { alg, kid, enc, sig } = envelope;

  const candidates = keys.candidates(kid);
  if (candidates.length === 0) return fail('UNKNOWN_KEY_ID', `the file was signed with ${kid}, which is not among the trusted public keys`);
  const signed = utf8(`license/${enc}`);
  let genuine = false;
  for (const candidate of candidates) {
    if (await candidate.verify(sig, signed)) {
      genuine = true;
      break;
    }
  }
  if (!genuine) return fail('BAD_SIGNATURE', 'the license file does not carry a valid signature: it was edited or not issued by this vendor');

  const key = typeof options.key === 'string' ? options.key.trim() : '';
  const parsedKey = parseKey(key);
  if (!parsedKey.ok) return fail('WRONG_KEY', `the license key is malformed: ${parsedKey.message}`);
  const fingerprint = options.fingerprint;
  const encBytes = base64UrlDecode(enc)!;
  let plain: Uint8Array;
  if (alg === 'base64+ed25519') {
    plain = encBytes;
  } else {
    if (encBytes.length < 12 + 16) return fail('MALFORMED', 'the encrypted license file is truncated');
    const opened = await decrypt(encBytes, key, fingerprint);
    if (!opened) {
      return fail(
        'WRONG_DEVICE',
        fingerprint === undefined
          ? 'cannot decrypt the license file: it is bound to a device (pass its fingerprint) or belongs to another license key'
          : 'cannot decrypt the license file: it is bound to another device or belongs to another license key',
      );
    }
    plain = opened;
  }

  const json = utf8Decode(plain);
  const payload = json === null ? null : parseJsonObject(json);
  if (!payload || !isPayload(payload)) return fail('MALFORMED', 'the license file payload is not a license snapshot');

  // The file must be about the license this key belongs to, and the key must be
  // genuine: otherwise any valid file (a colleague's, a leaked one) would unlock
  // any key typed into the app.
  if (parsedKey.claims.lid !== payload.license.id) return fail('WRONG_KEY', 'the license file belongs to another license');
  const keyCheck = await verifyKey(key, keys);
  if (!keyCheck.valid) return fail('WRONG_KEY', `the license key is not genuine: ${keyCheck.message}`);

  if (payload.device !== null) {
    if (fingerprint === undefined) return fail('WRONG_DEVICE', 'the license file is bound to a device: pass its fingerprint');
    if (payload.device.fingerprint !== fingerprint) return fail('WRONG_DEVICE', 'the license file is bound to another device');
  }

  const now = Math.floor(options.now ?? Date.now() / 1000);
  const skew = options.clockSkew ?? DEFAULT_CLOCK_SKEW;
  if (payload.issued > now + skew) {
    return fail('NOT_YET_VALID', `the license file was issued ${payload.issued - now} s in the future: the clock is wrong or was set back`);
  }
  // `expires` should equal issued + ttl; trust whichever ends sooner.
  const expires = Math.min(payload.expires, payload.issued + payload.ttl);
  if (now >= expires) return fail('EXPIRED', `the license file expired ${now - expires} s ago: check out a new one`);

  return { valid: true, payload, kid, alg, encrypted: alg === 'aes-256-gcm+ed25519' };
}

interface Envelope {
  alg: LicenseFileAlgorithm;
  kid: string;
  enc: string;
  sig: Uint8Array;
}

function parseEnvelope(text: string): Envelope | null {
  const bytes = dearmor(text, LICENSE_FILE_LABEL);
  const json = bytes && utf8Decode(bytes);
  const object = json ? parseJsonObject(json) : null;
  if (!object) return null;
  const { alg, kid, enc, sig } = object;
  if (alg !== 'base64+ed25519' && alg !== 'aes-256-gcm+ed25519') return null;
  if (typeof kid !== 'string' || kid.length === 0 || typeof enc !== 'string' || typeof sig !== 'string') return null;
  if (base64UrlDecode(enc) === null) return null;
  const signature = base64UrlDecode(sig);
  if (!signature || signature.length !== 64) return null;
  return { alg, kid, enc, sig: signature };
}

/**
 * The AES key is SHA-256 of the license key's bytes, followed by the
 * fingerprint's bytes for a device-bound file. Nothing in the envelope says
 * which, so with a fingerprint both are tried, bound first; GCM's tag makes a
 * wrong key fail rather than decrypt to garbage.
 */
async function decrypt(encBytes: Uint8Array, key: string, fingerprint: string | undefined): Promise<Uint8Array | null> {
  const iv = encBytes.subarray(0, 12);
  const body = encBytes.subarray(12);
  const keyBytes = utf8(key);
  if (fingerprint !== undefined) {
    const bound = await aesGcmDecrypt(await sha256(concatBytes(keyBytes, utf8(fingerprint))), iv, body);
    if (bound) return bound;
  }
  return aesGcmDecrypt(await sha256(keyBytes), iv, body);
}

function isPayload(p: Record<string, unknown>): p is LicenseFilePayload {
  const license = p.license as Record<string, unknown> | null | undefined;
  if (!license || typeof license !== 'object' || typeof license.id !== 'string') return false;
  const device = p.device as Record<string, unknown> | null | undefined;
  if (device === undefined || (device !== null && (typeof device !== 'object' || typeof device.fingerprint !== 'string'))) return false;
  return Number.isSafeInteger(p.issued) && Number.isSafeInteger(p.expires) && Number.isSafeInteger(p.ttl) && (p.ttl as number) > 0;
}

/** Reads a license file's envelope and payload without verifying anything — for display and debugging only. */
export function inspectLicenseFile(file: string): { alg: string; kid: string; encrypted: boolean; payload: unknown } | null {
  const bytes = dearmor(file, LICENSE_FILE_LABEL);
  const json = bytes && utf8Decode(bytes);
  const object = json ? parseJsonObject(json) : null;
  if (!object || typeof object.alg !== 'string' || typeof object.kid !== 'string' || typeof object.enc !== 'string') return null;
  const encrypted = object.alg !== 'base64+ed25519';
  let payload: unknown = null;
  if (!encrypted) {
    const raw = base64UrlDecode(object.enc);
    const text = raw && utf8Decode(raw);
    payload = text ? parseJsonObject(text) : null;
  }
  return { alg: object.alg, kid: object.kid, encrypted, payload };
}
