import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, type CliIo } from '../src/cli.js';
import { IMPOSTOR, issueKey, KEY, vectors, vectorsDir } from './support/issuer.js';

async function run(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    readStdin: async () => options.stdin ?? '',
    readFile: async (path) => readFileSync(path, 'utf8'),
    env: options.env ?? {},
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

const v = (name: string) => join(vectorsDir, name);
const AT = String(vectors.verify_at);
const PUBLIC = readFileSync(v('public-key.txt'), 'utf8').trim();

describe('keymint-verify', () => {
  it('verifies a key given inline with a base64url public key', async () => {
    const r = await run([KEY, '--public-key', PUBLIC]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('valid license key');
    expect(r.stdout).toContain(vectors.license_key.claims.lid);
  });

  it('takes the key from a file and public keys as PEM, @file, the signing-keys JSON and kid=key', async () => {
    for (const publicKey of [`@${v('public-key.pem')}`, `@${v('public-key.txt')}`, `@${v('signing-keys.json')}`, `${vectors.signing_keys[0].id}=${PUBLIC}`, readFileSync(v('public-key.pem'), 'utf8')]) {
      expect((await run([v('license-key.txt'), '--public-key', publicKey])).code, publicKey).toBe(0);
    }
  });

  it('reads public keys from KEYMINT_PUBLIC_KEYS', async () => {
    expect((await run([KEY], { env: { KEYMINT_PUBLIC_KEYS: PUBLIC } })).code).toBe(0);
  });

  it('exits 1 with the reason for a forged key', async () => {
    const r = await run([issueKey(vectors.license_key.claims, IMPOSTOR), '--public-key', PUBLIC]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^invalid license key: BAD_SIGNATURE: /);
  });

  it('prints JSON with --json', async () => {
    const r = await run([KEY, '--public-key', PUBLIC, '--json', '--env', 'live']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'license_key', valid: false, reason: 'WRONG_ENVIRONMENT' });
  });

  it('verifies license files: plain, encrypted, device-bound, from standard input', async () => {
    const plain = await run([v('license-file-plain.lic'), '--public-key', PUBLIC, '--key', KEY, '--now', AT]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('valid license file (base64+ed25519');
    expect(plain.stdout).toContain('not bound to a device');
    expect((await run([v('license-file-encrypted.lic'), `--public-key=${PUBLIC}`, `--key=${KEY}`, `--now=${AT}`])).code).toBe(0);
    const bound = await run([v('license-file-device.lic'), '--public-key', PUBLIC, '--key', KEY, '--fingerprint', vectors.fingerprint, '--now', AT]);
    expect(bound.code).toBe(0);
    expect(bound.stdout).toContain(vectors.fingerprint);
    const stdin = await run(['-', '--public-key', PUBLIC, '--key', KEY, '--now', AT], { stdin: readFileSync(v('license-file-plain.lic'), 'utf8') });
    expect(stdin.code).toBe(0);
  });

  it('exits 1 for an expired or wrong-device file', async () => {
    const expired = await run([v('license-file-plain.lic'), '--public-key', PUBLIC, '--key', KEY]);
    expect(expired.code).toBe(1);
    expect(expired.stdout).toMatch(/EXPIRED/);
    const wrong = await run([v('license-file-device.lic'), '--public-key', PUBLIC, '--key', KEY, '--fingerprint', 'other', '--now', AT]);
    expect(wrong.stdout).toMatch(/WRONG_DEVICE/);
  });

  it('exits 2 on usage errors', async () => {
    expect((await run([])).code).toBe(2);
    expect((await run([KEY])).stderr).toMatch(/--public-key/);
    expect((await run([v('license-file-plain.lic'), '--public-key', PUBLIC])).stderr).toMatch(/--key/);
    expect((await run([KEY, '--public-key', 'nonsense'])).code).toBe(2);
    expect((await run([KEY, '--public-key', PUBLIC, '--bogus'])).code).toBe(2);
    expect((await run([join(vectorsDir, 'missing.lic'), '--public-key', PUBLIC])).stderr).toMatch(/cannot read/);
    expect((await run([v('signing-keys.json'), '--public-key', PUBLIC])).stderr).toMatch(/neither a license key/);
    const help = await run(['--help']);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toMatch(/^usage: keymint-verify/);
  });
});
