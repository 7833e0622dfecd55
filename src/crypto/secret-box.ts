import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * Secrets at rest (signing keys, Stripe credentials, cached idempotent
 * responses) are sealed with AES-256-GCM under a key derived from the master
 * key. The sealed form is `v1.<base64url(iv ‖ ciphertext ‖ tag)>`; the
 * version prefix leaves room to change the scheme without guessing.
 */
export interface SecretBox {
  seal(plaintext: string | Buffer, context: string): string;
  open(sealed: string, context: string): Buffer;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function createSecretBox(masterKey: Buffer): SecretBox {
  // A separate key for sealing, so the master key itself is never used directly.
  const key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.from('keymint'), Buffer.from('secret-box/v1'), 32));
  return {
    seal(plaintext, context) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // The context (e.g. "signing_key:<kid>") is authenticated, so a sealed value
      // cannot be moved to another row and still open.
      cipher.setAAD(Buffer.from(context));
      const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return `v1.${Buffer.concat([iv, ct, cipher.getAuthTag()]).toString('base64url')}`;
    },
    open(sealed, context) {
      if (!sealed.startsWith('v1.')) throw new Error('unknown sealed-secret version');
      const raw = Buffer.from(sealed.slice(3), 'base64url');
      const iv = raw.subarray(0, IV_BYTES);
      const tag = raw.subarray(raw.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
    },
  };
}

/**
 * The master key: derived from `KEYMINT_SECRET` when set, otherwise read from
 * (or generated into) `<dataDir>/master.key`, readable by the owner only.
 */
export function loadMasterKey(secret: string | null, dataDir: string): Buffer {
  if (secret !== null) return createHash('sha256').update(secret, 'utf8').digest();
  const file = path.join(dataDir, 'master.key');
  fs.mkdirSync(dataDir, { recursive: true });
  try {
    // 'wx' fails if the file exists, so two processes starting at once cannot
    // each write a different key.
    fs.writeFileSync(file, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
  return key;
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}
