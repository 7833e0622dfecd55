import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, packageDir } from './support/build.js';
import { FakeKeymint } from './support/fake-keymint.js';
import { KEY, vectors, vectorsDir } from './support/issuer.js';

/** The package as a consumer gets it: both module formats, types, the bin, the example. */
beforeAll(ensureBuilt);

const execFileAsync = promisify(execFile);
const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
const node = (args: string[], input?: string) => spawnSync(process.execPath, args, { cwd: packageDir, encoding: 'utf8', input, timeout: 60_000 });

describe('@keymint/verify as published', () => {
  it('has no runtime dependencies', () => {
    expect(manifest.dependencies ?? {}).toEqual({});
    expect(manifest.peerDependencies ?? {}).toEqual({});
  });

  it('every export target exists, with types for import and require', () => {
    for (const [subpath, conditions] of Object.entries(manifest.exports as Record<string, unknown>)) {
      if (typeof conditions === 'string') continue;
      for (const condition of ['import', 'require'] as const) {
        const target = (conditions as Record<string, { types: string; default: string }>)[condition]!;
        expect(existsSync(join(packageDir, target.default)), `${subpath} ${condition}`).toBe(true);
        expect(existsSync(join(packageDir, target.types)), `${subpath} ${condition} types`).toBe(true);
      }
    }
  });

  it('import and require give the same API, and CommonJS really is CommonJS', async () => {
    const script = `
      const cjs = require('@keymint/verify');
      import('@keymint/verify').then(async (esm) => {
        const names = (m) => Object.keys(m).filter((k) => k !== 'default' && k !== '__esModule').sort();
        const keys = require('./test/vectors/signing-keys.json');
        const result = await cjs.verifyKey(${JSON.stringify(KEY)}, keys);
        console.log(JSON.stringify({ same: JSON.stringify(names(cjs)) === JSON.stringify(names(esm)), count: names(cjs).length, valid: result.valid, node: typeof require('@keymint/verify/node').FileStorage }));
      });`;
    const run = node(['-e', script]);
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ same: true, count: expect.any(Number), valid: true, node: 'function' });
  });

  it('the main entry pulls in no Node built-in, so it bundles for the browser', () => {
    const seen = new Set<string>();
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const source = readFileSync(file, 'utf8');
      expect(source, file).not.toMatch(/from ['"]node:|require\(['"]node:/);
      for (const [, spec] of source.matchAll(/from '(\.[^']+)'/g)) visit(join(file, '..', spec!));
    };
    visit(join(packageDir, 'dist/esm/index.js'));
    expect(seen.size).toBeGreaterThan(5);
  });

  it('the keymint-verify bin runs', () => {
    const bin = join(packageDir, manifest.bin['keymint-verify']);
    const ok = node([bin, KEY, '--public-key', `@${join(vectorsDir, 'public-key.pem')}`]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('valid license key');
    const file = node([bin, '-', '--public-key', `@${join(vectorsDir, 'signing-keys.json')}`, '--key', KEY, '--now', String(vectors.verify_at)], readFileSync(join(vectorsDir, 'license-file-encrypted.lic'), 'utf8'));
    expect(file.status).toBe(0);
    expect(file.stdout).toContain('aes-256-gcm+ed25519');
    expect(node([bin, 'KM1.bad.key', '--public-key', `@${join(vectorsDir, 'public-key.txt')}`]).status).toBe(1);
    expect(execFileSync('sh', ['-c', `test -x ${bin} && echo executable`], { encoding: 'utf8' }).trim()).toBe('executable');
  });
});

describe('the example app', () => {
  it('activates, validates, survives going offline and refuses a tampered file (demo mode)', () => {
    const run = node([join(packageDir, 'examples/app.mjs'), '--demo']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^activate\s+ok /m);
    expect(run.stdout).toMatch(/^validate \(online\)\s+ok +VALID/m);
    expect(run.stdout).toMatch(/^validate \(offline\)\s+ok +VALID from the license file/m);
    expect(run.stdout).toMatch(/^tampered file\s+ok +refused: BAD_SIGNATURE/m);
    expect(run.stdout).toMatch(/all steps behaved as expected\n$/);
  });

  it('runs the same steps against a Keymint given by environment variables', async () => {
    const fake = await new FakeKeymint().start();
    fake.now = Math.floor(Date.now() / 1000);
    try {
      const { stdout, stderr } = await execFileAsync(process.execPath, [join(packageDir, 'examples/app.mjs')], {
        cwd: packageDir,
        env: { PATH: process.env.PATH, KEYMINT_URL: fake.url, KEYMINT_LICENSE_KEY: KEY, KEYMINT_PUBLIC_KEYS: `@${join(vectorsDir, 'signing-keys.json')}`, KEYMINT_FINGERPRINT: 'example-machine' },
      });
      expect(stderr).toBe('');
      expect(stdout).toMatch(/^validate \(offline\)\s+ok +VALID/m);
      expect(stdout).toMatch(/^tampered file\s+ok +refused: BAD_SIGNATURE/m);
      expect(stdout).toMatch(/^deactivate\s+released/m);
      expect(fake.requests.map((r) => r.path)).toEqual(['/v1/licenses/activate', '/v1/licenses/checkout', '/v1/licenses/validate', '/v1/licenses/deactivate']);
      expect(fake.devices.size).toBe(0);
    } finally {
      await fake.close();
    }
  });

  it('asks for its settings outside demo mode', () => {
    const run = spawnSync(process.execPath, [join(packageDir, 'examples/app.mjs')], { cwd: packageDir, encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/KEYMINT_URL/);
  });
});
