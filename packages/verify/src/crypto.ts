import { KeymintError } from './errors.js';

/**
 * Every primitive comes from WebCrypto, which Node (≥ 18.4), Electron,
 * Chromium, Firefox, Safari 17+, Deno and Bun all have, so the package has no
 * runtime dependencies. Where WebCrypto lacks Ed25519 (older browsers and
 * WebViews), `useEd25519()` plugs in a verifier such as `@noble/ed25519`.
 */

/** Verifies an Ed25519 signature; `publicKey` is the raw 32 bytes. */
export type Ed25519Verifier = (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) => boolean | Promise<boolean>;

let customVerifier: Ed25519Verifier | null = null;

/**
 * Replaces WebCrypto for Ed25519 signature checks, e.g. on a platform whose
 * WebCrypto has no Ed25519:
 *
 *   import * as ed from '@noble/ed25519';
 *   useEd25519((sig, msg, pub) => ed.verifyAsync(sig, msg, pub));
 *
 * Pass `null` to go back to WebCrypto.
 */
export function useEd25519(verifier: Ed25519Verifier | null): void {
  customVerifier = verifier;
}

let subtlePromise: Promise<SubtleCrypto> | null = null;

function subtle(): Promise<SubtleCrypto> {
  subtlePromise ??= (async () => {
    const global = (globalThis as { crypto?: Crypto }).crypto;
    if (global?.subtle) return global.subtle;
    // Node 18 has WebCrypto but not as a global. The specifier is a variable so
    // that bundlers for the browser leave it alone.
    const specifier = 'node:crypto';
    const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as { webcrypto?: Crypto };
    if (mod.webcrypto?.subtle) return mod.webcrypto.subtle;
    throw new KeymintError('CRYPTO_UNAVAILABLE', 'this platform has no WebCrypto (crypto.subtle); a secure context is required in browsers');
  })();
  subtlePromise.catch(() => {
    subtlePromise = null;
  });
  return subtlePromise;
}

export async function randomBytes(length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  const global = (globalThis as { crypto?: Crypto }).crypto;
  if (global?.getRandomValues) return global.getRandomValues(bytes);
  const specifier = 'node:crypto';
  const mod = (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier)) as { webcrypto: Crypto };
  return mod.webcrypto.getRandomValues(bytes);
}

// TypeScript's DOM typings want ArrayBuffer-backed views; ours always are.
const buf = (bytes: Uint8Array) => bytes as Uint8Array<ArrayBuffer>;

export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await (await subtle()).digest('SHA-256', buf(bytes)));
}

/** AES-256-GCM with a 12-byte IV and a 16-byte tag, no associated data; null if the tag does not verify. */
export async function aesGcmDecrypt(key: Uint8Array, iv: Uint8Array, ciphertextAndTag: Uint8Array): Promise<Uint8Array | null> {
  const s = await subtle();
  const cryptoKey = await s.importKey('raw', buf(key), { name: 'AES-GCM' }, false, ['decrypt']);
  try {
    return new Uint8Array(await s.decrypt({ name: 'AES-GCM', iv: buf(iv), tagLength: 128 }, cryptoKey, buf(ciphertextAndTag)));
  } catch {
    return null;
  }
}

/** A public key prepared once and reused: importing is the slow part of a verification. */
export class Ed25519PublicKey {
  private imported: Promise<CryptoKey> | null = null;

  constructor(readonly raw: Uint8Array) {
    if (raw.length !== 32) throw new TypeError('an Ed25519 public key is 32 bytes');
  }

  async verify(signature: Uint8Array, message: Uint8Array): Promise<boolean> {
    if (signature.length !== 64) return false;
    if (customVerifier) return (await customVerifier(signature, message, this.raw)) === true;
    const s = await subtle();
    return s.verify({ name: 'Ed25519' }, await this.cryptoKey(s), buf(signature), buf(message));
  }

  private cryptoKey(s: SubtleCrypto): Promise<CryptoKey> {
    this.imported ??= s.importKey('raw', buf(this.raw), { name: 'Ed25519' }, false, ['verify']).catch((cause: unknown) => {
      this.imported = null;
      if ((cause as { name?: unknown } | null)?.name !== 'NotSupportedError') {
        throw new KeymintError('INVALID_PUBLIC_KEY', 'a public key in publicKeys is not a valid Ed25519 key', { cause });
      }
      throw new KeymintError(
        'ED25519_UNSUPPORTED',
        "this platform's WebCrypto cannot verify Ed25519 signatures; install @noble/ed25519 and call useEd25519((sig, msg, pub) => ed.verifyAsync(sig, msg, pub))",
        { cause },
      );
    });
    return this.imported;
  }
}
