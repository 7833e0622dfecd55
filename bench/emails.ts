/**
 * Emails per second through the outbox to a local SMTP server.
 *
 *   npm run bench:emails
 *
 * Seeds licenses with customers, enqueues one license delivery email per
 * license (each in its own transaction, as `POST /v1/licenses` with
 * `send_email: true` does), then starts the job worker and times how long it
 * takes until the SMTP server (smtp-server, in this process, counting and
 * discarding messages) has received every one and every email is logged as
 * sent. Each email is rendered with a re-derived key, so the figure includes
 * the Ed25519 signature, the database round trips and SMTP.
 *
 * BENCH_EMAILS (default 2000) emails per run; BENCH_CONCURRENCY (default
 * "4,16") the worker concurrencies to measure, one run each; DATABASE_URL a
 * PostgreSQL server to run against (a fresh database, dropped afterwards).
 */
import os from 'node:os';
import { SMTPServer } from 'smtp-server';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { migrateToLatest, openDatabase } from '../src/db/database.js';
import type { Scope } from '../src/db/schema.js';
import { freshDatabase } from './database.js';

const EMAILS = Number(process.env.BENCH_EMAILS ?? 2000);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '4,16').split(',').map(Number);


async function smtpServer(): Promise<{ url: string; received: () => number; close(): Promise<void> }> {
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 1000,
    onData(stream, _session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        received++;
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as { port: number };
  return { url: `smtp://127.0.0.1:${port}`, received: () => received, close: () => new Promise((r) => server.close(() => r())) };
}

async function main(): Promise<void> {
  const database = await freshDatabase();
  const smtp = await smtpServer();
  const config = loadConfig({
    KEYMINT_DATA_DIR: database.dataDir,
    ...(database.databaseUrl && { DATABASE_URL: database.databaseUrl }),
    KEYMINT_SMTP_URL: smtp.url,
    KEYMINT_LOG_LEVEL: 'warn',
  });
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const results: Array<{ concurrency: number; enqueuePerS: number; sendPerS: number; seconds: number }> = [];
  try {
    await migrateToLatest(db);
    for (const concurrency of CONCURRENCIES) {
      const app = await buildApp(config, { db, logger: false, worker: { start: false, concurrency }, scheduler: { start: false } });
      await app.ready();
      const { services } = app;
      const scope: Scope = { accountId: await services.accounts.ensureDefaultAccount(), env: 'live' };
      const product = await services.catalog.createProduct(scope, { name: 'Bench App', email: { button_url: 'https://example.com/download' } });
      const policy = await services.catalog.createPolicy(scope, { product: product.id, name: 'Yearly', license_type: 'timed', duration: '1y' });
      const ids: string[] = [];
      for (let i = 0; i < EMAILS; i++) {
        ids.push((await services.licenses.create(scope, { policy: policy.id, customer: { email: `buyer${concurrency}-${i}@example.com`, name: `Buyer ${i}` } })).id);
      }

      const before = smtp.received();
      const enqueueStart = process.hrtime.bigint();
      for (const id of ids) await db.kysely.transaction().execute((trx) => services.emails.enqueueLicenseDelivery(trx, scope, [id]));
      const enqueueS = Number(process.hrtime.bigint() - enqueueStart) / 1e9;

      const sendStart = process.hrtime.bigint();
      app.worker.start();
      for (;;) {
        if (smtp.received() - before >= EMAILS) {
          const sent = await db.kysely
            .selectFrom('emails')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('status', '=', 'sent')
            .where('license_ids', 'in', ids.map((id) => JSON.stringify([id])))
            .executeTakeFirstOrThrow();
          if (Number(sent.n) >= EMAILS) break;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      const sendS = Number(process.hrtime.bigint() - sendStart) / 1e9;
      await app.close();
      if (smtp.received() - before !== EMAILS) throw new Error(`expected ${EMAILS} messages, the server received ${smtp.received() - before}`);
      results.push({ concurrency, enqueuePerS: EMAILS / enqueueS, sendPerS: EMAILS / sendS, seconds: sendS });
    }
  } finally {
    await db.close();
    await smtp.close();
    await database.drop();
  }

  process.stdout.write(`\nEmails through the outbox to a local SMTP server (${db.dialect}, ${EMAILS} emails per run, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(2)})\n\n`);
  process.stdout.write('| worker concurrency | enqueue (1 tx each) | delivered to SMTP | drain time |\n|---|---|---|---|\n');
  for (const r of results) {
    process.stdout.write(`| ${r.concurrency} | ${r.enqueuePerS.toFixed(0)} emails/s | ${r.sendPerS.toFixed(0)} emails/s | ${r.seconds.toFixed(2)} s |\n`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
