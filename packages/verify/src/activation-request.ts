import { randomBytes } from './crypto.js';
import { armor, base64UrlEncode, dearmor, parseJsonObject, utf8, utf8Decode } from './encoding.js';

export const ACTIVATION_REQUEST_LABEL = 'KEYMINT ACTIVATION REQUEST';

export interface ActivationRequestInput {
  key: string;
  fingerprint: string;
  name?: string | null;
  platform?: string | null;
  metadata?: Record<string, string>;
  /** 16–128 characters of [A-Za-z0-9_-]; random (24 bytes, base64url) by default. */
  nonce?: string;
  /** Unix seconds; the system clock by default. */
  created?: number;
}

export interface ActivationRequest {
  v: 1;
  key: string;
  fingerprint: string;
  nonce: string;
  name?: string | null;
  platform?: string | null;
  metadata?: Record<string, string>;
  created: number;
}

export const NONCE_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;

/** A fresh nonce: 24 random bytes, base64url (32 characters). */
export async function createNonce(): Promise<string> {
  return base64UrlEncode(await randomBytes(24));
}

/**
 * The text an air-gapped machine hands over (a file, an email, a form field)
 * so that the vendor's API — `POST /v1/licenses/offline_activations
 * {"request": <this text>}` — can answer with a license file bound to this
 * device (docs/formats.md, "Activation requests"). The request carries the
 * license key itself, so treat it like the key.
 */
export async function createActivationRequest(input: ActivationRequestInput): Promise<string> {
  const key = typeof input.key === 'string' ? input.key.trim() : '';
  if (!key) throw new TypeError('key is required');
  if (typeof input.fingerprint !== 'string' || input.fingerprint.length === 0 || input.fingerprint.length > 255) {
    throw new TypeError('fingerprint must be 1–255 characters');
  }
  const nonce = input.nonce ?? (await createNonce());
  if (!NONCE_SHAPE.test(nonce)) throw new TypeError('nonce must be 16–128 characters of A-Z, a-z, 0-9, _ and -');
  const created = input.created ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(created) || created < 0) throw new TypeError('created must be unix seconds');

  // Members in the documented order, optional ones only when given.
  const request: ActivationRequest = {
    v: 1,
    key,
    fingerprint: input.fingerprint,
    nonce,
    ...(input.name !== undefined && { name: input.name }),
    ...(input.platform !== undefined && { platform: input.platform }),
    ...(input.metadata !== undefined && { metadata: input.metadata }),
    created,
  };
  return armor(utf8(JSON.stringify(request)), ACTIVATION_REQUEST_LABEL);
}

/** Reads an activation request back (what the server does with it); null if it is not one. */
export function parseActivationRequest(text: string): ActivationRequest | null {
  const bytes = dearmor(text, ACTIVATION_REQUEST_LABEL);
  const json = bytes && utf8Decode(bytes);
  const r = json ? parseJsonObject(json) : null;
  if (!r || r.v !== 1) return null;
  if (typeof r.key !== 'string' || typeof r.fingerprint !== 'string' || typeof r.nonce !== 'string' || !NONCE_SHAPE.test(r.nonce)) return null;
  if (!Number.isSafeInteger(r.created)) return null;
  return r as unknown as ActivationRequest;
}
