import type { FastifyInstance } from 'fastify';
import { buildApp, type AppOptions } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { scratchDatabase, type ScratchDatabase } from './scratch-database.js';
import { migrateToLatest, openDatabase, type Db } from '../../src/db/database.js';

/**
 * The database the suite runs on: SQLite by default, PostgreSQL when
 * KEYMINT_TEST_DATABASE_URL points at a server (any database on it; each test
 * file gets a fresh database of its own, dropped afterwards).
 */
export const TEST_PG_URL = process.env.KEYMINT_TEST_DATABASE_URL || null;
export const dialectUnderTest = TEST_PG_URL ? 'postgres' : 'sqlite';

export type TestDatabase = ScratchDatabase;

/** Polls `check` every 25 ms until it gives a truthy value, and returns that value; fails after `ms`. */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A fresh, empty database (and data directory) for one test file. */
export function freshDatabase(): Promise<TestDatabase> {
  return scratchDatabase(TEST_PG_URL, 'test');
}

export interface Clock {
  now(): number;
  set(unix: number): void;
  advance(seconds: number): void;
}

export function testClock(start = Math.floor(Date.now() / 1000)): Clock {
  let t = start;
  return { now: () => t, set: (u) => (t = u), advance: (s) => (t += s) };
}

export interface Response<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface TestServer {
  url: string;
  app: FastifyInstance;
  db: Db;
  config: Config;
  clock: Clock;
  /** Secret keys of the default account. */
  testKey: string;
  liveKey: string;
  /** A real HTTP request to the running server; `key` is the bearer secret (defaults to the test key; `null` sends none). */
  request<T = any>(method: string, path: string, options?: { body?: unknown; rawBody?: string; key?: string | null; headers?: Record<string, string> }): Promise<Response<T>>;
  close(): Promise<void>;
}

export interface ServerOptions {
  rateLimit?: number;
  env?: Record<string, string>;
  replicaOf?: TestServer;
  worker?: AppOptions['worker'];
  /** Off unless asked for: tests run it with `app.scheduler.runOnce()` so clock-driven events never surprise another test. */
  scheduler?: AppOptions['scheduler'];
}

/** Fast retries for tests: the backoff shape is the production one, scaled down. */
export const TEST_WORKER = { pollMs: 50, backoffBaseMs: 20, backoffMaxMs: 200 };

export async function startServer(options: ServerOptions = {}): Promise<TestServer> {
  // A replica shares its primary's database and data directory (and so its master key), as a second `keymint serve` would.
  const database: TestDatabase = options.replicaOf
    ? { dataDir: options.replicaOf.config.dataDir, databaseUrl: options.replicaOf.config.databaseUrl, drop: async () => undefined }
    : await freshDatabase();
  const config = loadConfig({
    KEYMINT_DATA_DIR: database.dataDir,
    ...(database.databaseUrl && { DATABASE_URL: database.databaseUrl }),
    KEYMINT_RATE_LIMIT: String(options.rateLimit ?? 0),
    KEYMINT_LOG_LEVEL: 'silent',
    // Kept forever unless a test asks: scheduler tests move the clock by years.
    KEYMINT_EVENT_RETENTION_DAYS: '0',
    ...options.env,
  });
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 20 });
  await migrateToLatest(db);
  const clock = testClock();
  const app = await buildApp(config, { db, now: clock.now, logger: false, worker: { ...TEST_WORKER, ...options.worker }, scheduler: { start: false, ...options.scheduler } });
  const accountId = await app.services.accounts.ensureDefaultAccount();
  const testKey = options.replicaOf?.testKey ?? (await app.services.accounts.createApiKey(accountId, 'test', 'tests')).secret;
  const liveKey = options.replicaOf?.liveKey ?? (await app.services.accounts.createApiKey(accountId, 'live', 'tests')).secret;
  const url = await app.listen({ port: 0, host: '127.0.0.1' });

  return {
    url,
    app,
    db,
    config,
    clock,
    testKey,
    liveKey,
    async request(method, p, opts = {}) {
      const headers: Record<string, string> = { ...opts.headers };
      const key = opts.key === undefined ? testKey : opts.key;
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let body: string | undefined = opts.rawBody;
      if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
      const res = await fetch(`${url}${p}`, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.status, headers: res.headers, body: parsed as any };
    },
    async close() {
      await app.close();
      await db.close();
      await database.drop();
    },
  };
}

/** Creates a product, a policy and a license through the API; returns all three. */
export async function seedLicense(
  server: TestServer,
  options: { product?: Record<string, unknown>; policy?: Record<string, unknown>; license?: Record<string, unknown>; key?: string } = {},
) {
  const key = options.key;
  const product = await server.request('POST', '/v1/products', { key, body: { name: 'Editor', ...options.product } });
  if (product.status !== 200) throw new Error(`product: ${JSON.stringify(product.body)}`);
  const policy = await server.request('POST', '/v1/policies', {
    key,
    body: { product: product.body.id, name: 'Standard', license_type: 'perpetual', ...options.policy },
  });
  if (policy.status !== 200) throw new Error(`policy: ${JSON.stringify(policy.body)}`);
  const license = await server.request('POST', '/v1/licenses', { key, body: { policy: policy.body.id, ...options.license } });
  if (license.status !== 200) throw new Error(`license: ${JSON.stringify(license.body)}`);
  return { product: product.body, policy: policy.body, license: license.body };
}
