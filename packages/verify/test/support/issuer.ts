import { createCipheriv, createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * What the server does, written with node:crypto only — none of the SDK's
 * code — so that SDK tests check the SDK against an independent issuer, with
 * the TEST-ONLY keys of the committed vectors.
 */

export const vectorsDir = fileURLToPath(new URL('../vectors/', import.meta.url));
export const vectors = JSON.parse(readFileSync(`${vectorsDir}vectors.json`, 'utf8'));
export const signingKeysList = JSON.parse(readFileSync(`${vectorsDir}signing-keys.json`, 'utf8'));

export interface Signer {
  id: string;
  privateKey: KeyObject;
  publicKey: string;
}

function signerFromSeed(id: string, seedHex: string): Signer {
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(seedHex, 'hex')]),
    format: 'der',
    type: 'pkcs8',
  });
  return { id, privateKey, publicKey: createPublicKey(privateKey).export({ format: 'jwk' }).x! };
}

export const ACTIVE = signerFromSeed(vectors.signing_keys[0].id, vectors.signing_keys[0].seed_hex);
export const RETIRED = signerFromSeed(vectors.signing_keys[1].id, vectors.signing_keys[1].seed_hex);
/** Not trusted by anyone: what a spoofing server would sign with, labelled with a trusted kid. */
export const IMPOSTOR = signerFromSeed(ACTIVE.id, vectors.untrusted_key.seed_hex);

/** The trusted keys as an app ships them: the signing-keys list. */
export const trustedKeys = signingKeysList;

export const KEY: string = vectors.license_key.key;
export const OTHER_LICENSE_KEY: string = vectors.license_key_of_another_license.key;
export const FINGERPRINT: string = vectors.fingerprint;
export const LICENSE = vectors.license_files.plain.payload.license;
export const DEVICE = vectors.license_files.device_bound.payload.device;
export const ISSUED: number = vectors.license_files.plain.payload.issued;

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

export function issueKey(claims: Record<string, unknown>, signer: Signer = ACTIVE): string {
  const signed = `KM1.${b64url(Buffer.from(JSON.stringify(claims), 'utf8'))}`;
  return `${signed}.${b64url(sign(null, Buffer.from(signed, 'ascii'), signer.privateKey))}`;
}

export interface FileOptions {
  signer?: Signer;
  /** Encrypt for this license key (and fingerprint, for a device-bound file). */
  encryptFor?: { key: string; fingerprint?: string };
  alg?: string;
}

export function issueLicenseFile(payload: unknown, options: FileOptions = {}): string {
  const signer = options.signer ?? ACTIVE;
  const plain = Buffer.from(JSON.stringify(payload), 'utf8');
  let encBytes: Buffer = plain;
  if (options.encryptFor) {
    const aesKey = createHash('sha256')
      .update(Buffer.from(options.encryptFor.key, 'utf8'))
      .update(Buffer.from(options.encryptFor.fingerprint ?? '', 'utf8'))
      .digest();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
    encBytes = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  }
  const enc = b64url(encBytes);
  const envelope = {
    alg: options.alg ?? (options.encryptFor ? 'aes-256-gcm+ed25519' : 'base64+ed25519'),
    kid: signer.id,
    enc,
    sig: b64url(sign(null, Buffer.from(`license/${enc}`, 'ascii'), signer.privateKey)),
  };
  return armorText('KEYMINT LICENSE FILE', Buffer.from(JSON.stringify(envelope), 'utf8'));
}

export function armorText(label: string, bytes: Uint8Array): string {
  const lines = Buffer.from(bytes).toString('base64').match(/.{1,76}/g)!.join('\n');
  return `-----BEGIN ${label}-----\n${lines}\n-----END ${label}-----\n`;
}

/** Reads a file's envelope back (to tamper with it in tests). */
export function envelopeOf(file: string): { alg: string; kid: string; enc: string; sig: string } {
  const body = file.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
  return JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
}

export function withEnvelope(envelope: object): string {
  return armorText('KEYMINT LICENSE FILE', Buffer.from(JSON.stringify(envelope), 'utf8'));
}

export function payloadAt(issued: number, ttl: number, device: unknown = null, license: unknown = LICENSE) {
  return { license, device, issued, expires: issued + ttl, ttl };
}

export function signResponse(params: { method: string; path: string; t: number; nonce: string; body: Buffer | string; signer?: Signer }): string {
  const signer = params.signer ?? ACTIVE;
  const message = Buffer.concat([
    Buffer.from(`keymint-response/v1\n${params.method} ${params.path}\n${params.t}\n${params.nonce}\n`, 'utf8'),
    Buffer.isBuffer(params.body) ? params.body : Buffer.from(params.body, 'utf8'),
  ]);
  return `t=${params.t},kid=${signer.id},nonce=${params.nonce},sig=${b64url(sign(null, message, signer.privateKey))}`;
}
