import { Ed25519PublicKey } from './crypto.js';
import { base64Decode, base64UrlDecode } from './encoding.js';

/**
 * One signing key as `GET /v1/signing_keys` lists it (extra members are
 * ignored), or the same with `kid`/`publicKey` spellings. `public_key` is the
 * raw 32-byte Ed25519 key, base64url; a PEM (`-----BEGIN PUBLIC KEY-----`,
 * SPKI) is accepted in any of the key members.
 */
export interface PublicKeyEntry {
  id?: string;
  kid?: string;
  public_key?: string;
  public_key_pem?: string;
  publicKey?: string;
  algorithm?: string;
  status?: string;
}

/**
 * Where verifiers take their trusted keys from. Every form maps key ids to
 * keys, so a vendor can paste the signing-keys list as it is:
 *
 * - the list response itself, `{ object: 'list', data: [...] }`, or its `data`;
 * - an array of entries (or of bare key strings);
 * - `{ [kid]: key }` or a `Map` of the same;
 * - a bare key string (base64url or PEM), trusted for any `kid`.
 *
 * A key's `status` does not matter: retired keys still verify what they
 * signed, until the vendor removes them from this set.
 */
export type PublicKeyInput =
  | string
  | PublicKeyEntry
  | ReadonlyArray<PublicKeyEntry | string>
  | { object: 'list'; data: ReadonlyArray<PublicKeyEntry> }
  | Readonly<Record<string, string>>
  | ReadonlyMap<string, string>
  | KeySet;

/** Trusted keys by id, prepared for verification. Build one with `createKeySet` and reuse it. */
export class KeySet {
  private readonly byId = new Map<string, Ed25519PublicKey>();
  /** Keys given without an id: tried for any `kid`. */
  private readonly anyId: Ed25519PublicKey[] = [];

  constructor(entries: Iterable<{ kid: string | null; key: string | Uint8Array }>) {
    for (const { kid, key } of entries) {
      const publicKey = new Ed25519PublicKey(typeof key === 'string' ? parsePublicKey(key) : key);
      if (kid === null) this.anyId.push(publicKey);
      else this.byId.set(kid, publicKey);
    }
    if (this.byId.size === 0 && this.anyId.length === 0) throw new TypeError('publicKeys is empty');
  }

  /** The keys that may have made a signature labelled `kid`; empty means the id is unknown. */
  candidates(kid: string): Ed25519PublicKey[] {
    const exact = this.byId.get(kid);
    return exact ? [exact, ...this.anyId] : this.anyId;
  }

  get ids(): string[] {
    return [...this.byId.keys()];
  }
}

/** Builds a reusable key set from any accepted form; throws a TypeError for key material that is not an Ed25519 public key. */
export function createKeySet(input: PublicKeyInput): KeySet {
  if (input instanceof KeySet) return input;
  return new KeySet(publicKeyEntries(input));
}

const objectCache = new WeakMap<object, KeySet>();
const stringCache = new Map<string, KeySet>();

/**
 * The key set for an input, built once per input object or string: callers
 * that pass the same `publicKeys` on every call pay for parsing and importing
 * only the first time.
 */
export function keySetFor(input: PublicKeyInput): KeySet {
  if (input instanceof KeySet) return input;
  if (typeof input === 'string') {
    let set = stringCache.get(input);
    if (!set) {
      set = createKeySet(input);
      if (stringCache.size >= 32) stringCache.delete(stringCache.keys().next().value as string);
      stringCache.set(input, set);
    }
    return set;
  }
  let set = objectCache.get(input);
  if (!set) {
    set = createKeySet(input);
    objectCache.set(input, set);
  }
  return set;
}

/** The (kid, key text) pairs of any accepted form except a `KeySet`; `kid` null for keys trusted under any id. */
export function publicKeyEntries(input: Exclude<PublicKeyInput, KeySet>): Array<{ kid: string | null; key: string }> {
  if (typeof input === 'string') return [{ kid: null, key: input }];
  if (input instanceof Map) return [...input].map(([kid, key]) => ({ kid, key: requireString(key, kid) }));
  if (Array.isArray(input)) return input.map((e: PublicKeyEntry | string) => (typeof e === 'string' ? { kid: null, key: e } : entryOf(e)));
  const object = input as Record<string, unknown>;
  if (object.object === 'list' && Array.isArray(object.data)) return (object.data as PublicKeyEntry[]).map(entryOf);
  if ('public_key' in object || 'public_key_pem' in object || 'publicKey' in object) return [entryOf(object as PublicKeyEntry)];
  return Object.entries(object).map(([kid, key]) => ({ kid, key: requireString(key, kid) }));
}

function entryOf(entry: PublicKeyEntry): { kid: string | null; key: string } {
  if (entry === null || typeof entry !== 'object') throw new TypeError('a publicKeys entry must be an object or a string');
  if (entry.algorithm !== undefined && entry.algorithm !== 'ed25519') throw new TypeError(`unsupported signing algorithm ${String(entry.algorithm)}`);
  const kid = entry.id ?? entry.kid ?? null;
  const key = entry.public_key ?? entry.publicKey ?? entry.public_key_pem;
  return { kid, key: requireString(key, kid ?? 'entry') };
}

function requireString(value: unknown, label: string): string {
  if (typeof value !== 'string') throw new TypeError(`the public key for ${label} must be a string`);
  return value;
}

/** The fixed DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow it. */
const ED25519_SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/** Raw 32 bytes from base64url (the API's `public_key`) or a PEM SPKI block (`public_key_pem`). */
export function parsePublicKey(text: string): Uint8Array {
  const trimmed = text.trim();
  if (trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
    const match = /^-----BEGIN PUBLIC KEY-----([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----$/.exec(trimmed);
    const der = match ? base64Decode(match[1]!.replace(/\s+/g, '')) : null;
    if (!der || der.length !== 44 || ED25519_SPKI_PREFIX.some((b, i) => der[i] !== b)) {
      throw new TypeError('the PEM public key is not an Ed25519 SubjectPublicKeyInfo');
    }
    return der.slice(12);
  }
  const raw = base64UrlDecode(trimmed);
  if (!raw || raw.length !== 32) throw new TypeError('a public key must be 32 bytes, base64url without padding (or a PEM)');
  return raw;
}
