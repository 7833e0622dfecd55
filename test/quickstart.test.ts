import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialectUnderTest, freshDatabase, type TestDatabase } from './support/harness.js';

/**
 * The README's quickstart, run for real: the shell block marked
 * `<!-- quickstart … -->` is executed with bash, exactly as written, against a
 * `node bin/keymint.js serve` child process on a fresh database. If a newcomer
 * would see an error, this test fails.
 */

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');

function quickstartScript(): string {
  const match = /<!--\s*quickstart\b[^>]*-->\s*```(?:sh|bash)\n([\s\S]*?)\n```/.exec(readme);
  if (!match?.[1]) throw new Error('README.md has no ```sh block after a <!-- quickstart --> marker');
  return match[1];
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The environment of a user's shell: ours, minus anything that would point Keymint elsewhere. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('KEYMINT_') || k === 'DATABASE_URL' || k === 'PORT' || k === 'HOST') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

describe(`README quickstart (${dialectUnderTest})`, () => {
  let database: TestDatabase;
  let server: ChildProcess | undefined;
  let serverLog = '';
  let baseUrl = '';
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    // bin/keymint.js runs dist/, which vitest's global setup (test/support/build.ts) compiles once
    // before any test file starts. Building here again would rewrite dist/ under other files' feet.
    if (!fs.existsSync(path.join(root, 'dist/cli.js'))) throw new Error('dist/cli.js is missing: run the tests through vitest.config.ts (its globalSetup builds dist/)');

    database = await freshDatabase();
    const port = await freePort();
    baseUrl = `http://127.0.0.1:${port}`;
    env = cleanEnv({
      KEYMINT_DATA_DIR: database.dataDir,
      ...(database.databaseUrl && { DATABASE_URL: database.databaseUrl }),
      PORT: String(port),
      HOST: '127.0.0.1',
      KEYMINT_LOG_LEVEL: 'warn',
    });
    // On PostgreSQL, `serve` does not migrate by itself (README: PostgreSQL).
    if (database.databaseUrl) await run(process.execPath, ['bin/keymint.js', 'migrate'], { cwd: root, env });

    const child = spawn(process.execPath, ['bin/keymint.js', 'serve'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    child.stdout.on('data', (d) => (serverLog += d));
    child.stderr.on('data', (d) => (serverLog += d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`keymint serve exited with ${child.exitCode}:\n${serverLog}`);
      try {
        if ((await fetch(`${baseUrl}/health`)).ok) break;
      } catch {
        /* not listening yet */
      }
      if (Date.now() > deadline) throw new Error(`keymint serve did not answer on ${baseUrl}/health within 30s:\n${serverLog}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);

  afterAll(async () => {
    const child = server;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await database?.drop();
  }, 60_000);

  it('starts with the install-and-start and install-and-test commands', () => {
    const top = readme.split('\n').slice(0, 8).join('\n');
    expect(top).toContain('npm ci && npm start');
    expect(top).toContain('npm ci && npm test');
  });

  it('runs as written and gives a valid license on an activated device', async () => {
    const script = quickstartScript();
    const file = path.join(database.dataDir, 'quickstart.sh');
    fs.writeFileSync(file, script);

    let stdout: string;
    try {
      ({ stdout } = await run('bash', ['-euo', 'pipefail', file], {
        cwd: root,
        env: { ...env, KEYMINT_URL: baseUrl },
        timeout: 60_000,
      }));
    } catch (err) {
      const e = err as { message: string; stdout?: string; stderr?: string };
      throw new Error(`the quickstart failed: ${e.message}\n--- stdout\n${e.stdout}\n--- stderr\n${e.stderr}\n--- server log\n${serverLog}`);
    }
    const lines = stdout.trim().split('\n');
    const value = (label: string) => lines.find((l) => l.startsWith(`${label}: `))?.slice(label.length + 2);

    // What the user sees, step by step.
    const apiKey = value('api key');
    expect(apiKey).toMatch(/^km_test_\S+$/);
    expect(value('product')).toMatch(/^pdt_[0-9a-z]{26}$/);
    expect(value('policy')).toMatch(/^pol_[0-9a-z]{26}$/);
    const key = value('license key');
    expect(key).toMatch(/^KM1\.[\w-]+\.[\w-]+$/);
    const license = JSON.parse(lines.find((l) => l.startsWith('{"id":"lic_'))!);
    expect(license).toMatchObject({ object: 'license', status: 'active', key, max_devices: 2, active_devices: 0, policy: value('policy'), product: value('product') });
    expect(license.customer).toMatch(/^ctm_/);
    expect(license.expires_at).toBeGreaterThan(Date.now() / 1000 + 360 * 86_400);
    const device = value('device');
    expect(device).toMatch(/^dev_[0-9a-z]{26}$/);
    // The validation verdicts, in order: no fingerprint, the activated one, an unknown one.
    expect(lines.filter((l) => /^[A-Z_]+$/.test(l))).toEqual(['VALID', 'VALID', 'DEVICE_NOT_ACTIVATED']);

    // And the server really holds what the quickstart says it made.
    const admin = (p: string) => fetch(`${baseUrl}${p}`, { headers: { authorization: `Bearer ${apiKey}` } }).then((r) => r.json() as Promise<any>);
    const devices = await admin(`/v1/licenses/${license.id}/devices`);
    expect(devices.data).toHaveLength(1);
    expect(devices.data[0]).toMatchObject({ id: device, fingerprint: 'laptop-1', name: 'Work laptop' });
    const customer = await admin(`/v1/customers/${license.customer}`);
    expect(customer).toMatchObject({ email: 'ada@example.com', name: 'Ada' });
    const check = await fetch(`${baseUrl}/v1/licenses/validate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key, fingerprint: 'laptop-1' }),
    }).then((r) => r.json() as Promise<any>);
    expect(check).toMatchObject({ valid: true, code: 'VALID', device: { id: device }, license: { id: license.id, active_devices: 1 } });
  });

  it('serves the API docs the README points to', async () => {
    const docs = await fetch(`${baseUrl}/docs`, { redirect: 'follow' });
    expect(docs.status).toBe(200);
    const spec = (await fetch(`${baseUrl}/openapi.json`).then((r) => r.json())) as { openapi: string; paths: Record<string, unknown> };
    expect(spec.openapi).toBe('3.1.0');
    expect(Object.keys(spec.paths)).toEqual(expect.arrayContaining(['/v1/products', '/v1/policies', '/v1/licenses', '/v1/licenses/validate', '/v1/licenses/activate']));
  });
});
