import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dialectUnderTest, freshDatabase, type TestDatabase } from './support/harness.js';

const BIN = path.resolve('bin/keymint.js');

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

describe('the keymint command', () => {
  let database: TestDatabase;
  let env: Record<string, string>;

  const run = (args: string[], extra: Record<string, string> = {}) =>
    spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, ...env, ...extra }, encoding: 'utf8' });

  beforeAll(async () => {
    database = await freshDatabase();
    env = { KEYMINT_DATA_DIR: database.dataDir, KEYMINT_LOG_LEVEL: 'warn', ...(database.databaseUrl && { DATABASE_URL: database.databaseUrl }) };
  });
  afterAll(async () => {
    await database?.drop();
  });

  it.runIf(dialectUnderTest === 'postgres')('on PostgreSQL, serve refuses to start before `keymint migrate`, which applies the migrations once', () => {
    const early = run(['serve'], { PORT: '0' });
    expect(early.status).toBe(1);
    expect(early.stderr).toContain('keymint migrate');
    const first = run(['migrate']);
    expect(first.status).toBe(0);
    expect(first.stdout).toContain('applied: 0001-core');
    expect(run(['migrate']).stdout).toContain('up to date');
  });

  it('api-keys create prints the new secret key alone on the last line', () => {
    if (dialectUnderTest === 'postgres') run(['migrate']);
    const res = run(['api-keys', 'create', '--env', 'live', '--name', 'deploy']);
    expect(res.status).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^km_live_[A-Za-z0-9]{40}$/);
  });

  it('api-keys create refuses an unknown environment', () => {
    const res = run(['api-keys', 'create', '--env', 'staging']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain('test');
  });

  it('refuses an invalid configuration with a clear message', () => {
    const res = run(['serve'], { PORT: 'eighty' });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain('PORT must be a whole number');
  });

  it('serve answers requests with a created key, and shuts down cleanly on SIGTERM', async () => {
    if (dialectUnderTest === 'postgres') run(['migrate']);
    const key = run(['api-keys', 'create', '--env', 'test']).stdout.trim().split('\n').at(-1)!;
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve'], { env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' }, stdio: 'pipe' });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let ready = false;
      for (let i = 0; i < 100 && !ready; i++) {
        ready = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.ok, () => false);
        if (!ready) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready).toBe(true);
      const products = await fetch(`http://127.0.0.1:${port}/v1/products`, { headers: { authorization: `Bearer ${key}` } });
      expect(products.status).toBe(200);
      expect(products.headers.get('request-id')).toMatch(/^req_/);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
