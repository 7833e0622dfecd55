import { sign, type KeyObject } from 'node:crypto';
import type { Env } from '../db/schema.js';

/**
 * License keys, wire format fixed by API.md:
 *
 *   KM1.<base64url(payload JSON)>.<base64url(Ed25519 signature over "KM1.<payload>")>
 *
 * The payload's properties are written in one fixed order, and Ed25519
 * signatures are deterministic, so the same license always re-derives the same
 * key: keys are stored only as a SHA-256 hash and rebuilt when they must be
 * shown or re-sent.
 */
export interface KeyClaims {
  v: 1;
  lid: string;
  pid: string;
  env: Env;
  kid: string;
  iat: number;
}

/** Generous upper bound; real keys are ~230 characters. Anything longer is not ours. */
export const MAX_KEY_LENGTH = 1024;
const KEY_SHAPE = /^KM1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/;

export function encodeKey(claims: Omit<KeyClaims, 'v'>, privateKey: KeyObject): string {
  const ordered: KeyClaims = { v: 1, lid: claims.lid, pid: claims.pid, env: claims.env, kid: claims.kid, iat: claims.iat };
  const signed = `KM1.${Buffer.from(JSON.stringify(ordered), 'utf8').toString('base64url')}`;
  const signature = sign(null, Buffer.from(signed, 'ascii'), privateKey).toString('base64url');
  return `${signed}.${signature}`;
}

/** Cheap shape check before any lookup: a string that cannot be a key is NOT_FOUND without touching the database. */
export function hasKeyShape(key: string): boolean {
  return key.length <= MAX_KEY_LENGTH && KEY_SHAPE.test(key);
}
