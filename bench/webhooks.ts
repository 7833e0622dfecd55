/**
 * Benchmark: vendor webhook deliveries per second to a local receiver.
 *
 *   npm run build:bench && node bench/.build/bench/webhooks.js
 *
 * Queues BENCH_EVENTS `license.created` events (each fanned out to one
 * endpoint through the real event log, so one delivery job per event), then
 * starts the job worker and times until the receiver — another process that
 * verifies every signature — has accepted them all. Each delivery does what a
 * production one does: claim the job, read the endpoint, read the event,
 * re-derive the license key, open the secret, sign, POST over a kept-alive
 * connection, log the attempt, finish the job. Runs once per worker
 * concurrency in BENCH_CONCURRENCY (default "4,16"; 4 is the default worker).
 * SQLite by default; DATABASE_URL=postgres://… runs on a fresh PostgreSQL
 * database created (and dropped) next to the one it names.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { migrateToLatest, openDatabase } from '../src/db/database.js';
import type { Scope } from '../src/db/schema.js';
import type { AdminLicenseView } from '../src/licensing/views.js';
import type { FromReceiver, ToReceiver } from './webhook-receiver.js';
import { freshDatabase } from './database.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 5000);
const CONCURRENCY = (process.env.BENCH_CONCURRENCY ?? '4,16').split(',').map(Number);
const LICENSES = 20;


function ask(child: ChildProcess, message: ToReceiver): Promise<FromReceiver> {
  return new Promise((resolve) => {
    child.once('message', (m: FromReceiver) => resolve(m));
    child.send(message);
  });
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;

async function main(): Promise<void> {
  const database = await freshDatabase();
  const receiver = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'webhook-receiver.js'));
  try {
    const listening = await new Promise<FromReceiver>((resolve) => receiver.once('message', resolve));
    if (listening.type !== 'listening') throw new Error('receiver did not start');
    const config = loadConfig({
      KEYMINT_DATA_DIR: database.dataDir,
      ...(database.databaseUrl && { DATABASE_URL: database.databaseUrl }),
      KEYMINT_LOG_LEVEL: 'warn',
      KEYMINT_RATE_LIMIT: '0',
    });
    const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 20 });
    await migrateToLatest(db);
    console.log(`webhook deliveries to a local receiver — ${db.dialect}, ${EVENTS} events per run, ${os.cpus().length} CPUs, load ${os.loadavg()[0]?.toFixed(2)}`);
    console.log('concurrency  deliveries/s  seconds  attempt p50 ms  attempt p99 ms  invalid');

    let delivered = 0;
    for (const concurrency of CONCURRENCY) {
      const app = await buildApp(config, { db, logger: false, worker: { start: false, concurrency } });
      await app.ready();
      const { services } = app;
      const scope: Scope = { accountId: await services.accounts.ensureDefaultAccount(), env: 'test' };
      // A fresh endpoint per run; the previous run's is deleted so it receives nothing more.
      for (const e of (await services.webhooks.list(scope, { limit: 100 })).data) await services.webhooks.delete(scope, e.id);
      const endpoint = await services.webhooks.create(scope, { url: `${listening.url}/bench`, enabled_events: ['license.created'] });
      receiver.send({ type: 'secret', secret: endpoint.secret } satisfies ToReceiver);

      // Real licenses (each writes its own event), then more events about them, written as the log writes them.
      const product = await services.catalog.createProduct(scope, { name: `Bench ${concurrency}` });
      const policy = await services.catalog.createPolicy(scope, { product: product.id, name: 'Pro', license_type: 'subscription', duration: '1y', max_devices: 3, entitlements: ['pro'] });
      const licenses: AdminLicenseView[] = [];
      for (let i = 0; i < LICENSES; i++) licenses.push(await services.licenses.create(scope, { policy: policy.id, customer: { email: `bench${i}@example.com` } }));
      for (let done = LICENSES; done < EVENTS; ) {
        const batch = Math.min(500, EVENTS - done);
        await db.kysely.transaction().execute(async (trx) => {
          for (let i = 0; i < batch; i++) await services.events.record(trx, scope, 'license.created', licenses[(done + i) % LICENSES]!);
        });
        done += batch;
      }

      const started = process.hrtime.bigint();
      app.worker.start();
      let count: FromReceiver;
      for (;;) {
        count = await ask(receiver, { type: 'count' });
        if (count.type === 'count' && count.valid - delivered >= EVENTS) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      delivered += EVENTS;
      const durations = (await db.kysely.selectFrom('webhook_deliveries').select('duration_ms').where('endpoint_id', '=', endpoint.id).execute())
        .map((d) => d.duration_ms)
        .sort((a, b) => a - b);
      const failed = await db.kysely.selectFrom('webhook_deliveries').select('id').where('endpoint_id', '=', endpoint.id).where('succeeded', '=', 0).execute();
      if (durations.length !== EVENTS || failed.length > 0) throw new Error(`expected ${EVENTS} successful attempts, logged ${durations.length} (${failed.length} failed)`);
      console.log(
        `${String(concurrency).padStart(11)}  ${(EVENTS / seconds).toFixed(0).padStart(12)}  ${seconds.toFixed(2).padStart(7)}  ${String(percentile(durations, 50)).padStart(14)}  ${String(percentile(durations, 99)).padStart(14)}  ${String(count.type === 'count' ? count.invalid : '?').padStart(7)}`,
      );
      await app.close();
    }
    await db.close();
  } finally {
    receiver.disconnect();
    await database.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
