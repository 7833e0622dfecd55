/**
 * `npm run bench:stripe`: the Stripe side of Keymint, each figure beside a
 * baseline measured in the same run.
 *
 * 1. Webhook ingest: signed events per second that Keymint verifies and
 *    stores (inbox row + commit), against a bare Fastify route that accepts
 *    the same bodies and stores nothing.
 * 2. Purchase to valid: from posting `checkout.session.completed` to the
 *    moment the new key validates VALID (verify, store, queue, worker reads the
 *    session and line items from Stripe, issues, commits), against creating a
 *    license through the admin API and validating it.
 *
 * Keymint, the baseline and the fake Stripe run in this one process (the load
 * generator too), so absolute numbers are pessimistic; the ratios are what to
 * read. SQLite by default; DATABASE_URL=postgres://… for PostgreSQL.
 */
import autocannon from 'autocannon';
import Fastify from 'fastify';
import Stripe from 'stripe';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { migrateToLatest, openDatabase } from '../src/db/database.js';
import { FakeStripe } from '../test/support/fake-stripe.js';
import { freshDatabase } from './database.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const PURCHASES = Number(process.env.BENCH_PURCHASES ?? 200);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const STRIPE_KEY = 'rk_test_keymintBenchRestrictedKey0001';

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const ms = (n: number) => `${n.toFixed(2)} ms`;


/** autocannon over a fixed list of bodies, each sent once; returns requests per second. */
async function blast(url: string, bodies: Array<{ body: string; signature: string }>): Promise<{ rps: number; non2xx: number }> {
  let next = 0;
  const started = performance.now();
  const result = await autocannon({
    url,
    method: 'POST',
    connections: CONNECTIONS,
    amount: bodies.length,
    requests: [
      {
        setupRequest: (req) => {
          const item = bodies[next++ % bodies.length]!;
          return { ...req, body: item.body, headers: { 'content-type': 'application/json', 'stripe-signature': item.signature } };
        },
      },
    ],
  });
  // Timed here: autocannon reports whole seconds, too coarse for a run of a few seconds.
  const seconds = (performance.now() - started) / 1000;
  return { rps: result.requests.total / seconds, non2xx: result.non2xx + result.errors };
}

async function main(): Promise<void> {
  const database = await freshDatabase();
  const { dataDir } = database;
  const fake = await FakeStripe.start();
  fake.addKey(STRIPE_KEY, { mode: 'test' });
  const config = loadConfig({
    KEYMINT_DATA_DIR: dataDir,
    KEYMINT_STRIPE_API_URL: fake.url,
    KEYMINT_RATE_LIMIT: '0',
    ...(database.databaseUrl && { DATABASE_URL: database.databaseUrl }),
  });
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir, poolSize: 20 });
  await migrateToLatest(db);
  const app = await buildApp(config, { db, logger: false, worker: { pollMs: 50 } });
  const accountId = await app.services.accounts.ensureDefaultAccount();
  const apiKey = (await app.services.accounts.createApiKey(accountId, 'test', 'bench')).secret;
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const call = async (method: string, p: string, body?: unknown, auth = true) => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { ...(auth && { authorization: `Bearer ${apiKey}` }), ...(body !== undefined && { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await res.json()) as any;
  };

  const connection = await call('PUT', '/v1/stripe/connection', { secret_key: STRIPE_KEY });
  const endpoint = fake.endpoints()[0]!;
  const secret = fake.webhookSecretFor(endpoint.url);
  const webhookUrl = `${base}/stripe/webhooks/${connection.id}`;
  const product = await call('POST', '/v1/products', { name: 'Bench' });
  const policy = await call('POST', '/v1/policies', { product: product.id, name: 'Lifetime', license_type: 'perpetual' });
  const price = fake.price();
  await call('POST', '/v1/stripe/price_mappings', { price: price.id, policy: policy.id });

  // The baseline receiver: same bodies, parsed as raw bytes, nothing verified or stored.
  const bare = Fastify();
  bare.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  bare.post('/bare', async () => ({ received: true, duplicate: false }));
  const bareUrl = `${await bare.listen({ port: 0, host: '127.0.0.1' })}/bare`;

  // ── 1. ingest ──
  console.log(`signing ${EVENTS} events…`);
  const customer = fake.customer({ email: 'bench@example.com' });
  const signed = (n: number) =>
    Array.from({ length: n }, () => {
      // An event type Keymint stores as ignored: this measures verify + store, not processing.
      const body = JSON.stringify(fake.event('customer.created', customer), null, 2);
      return { body, signature: Stripe.webhooks.generateTestHeaderString({ payload: body, secret }) };
    });
  await blast(bareUrl, signed(1000)); // warm-up
  await blast(webhookUrl, signed(1000));
  const bareIngest = await blast(bareUrl, signed(EVENTS));
  const keymintIngest = await blast(webhookUrl, signed(EVENTS));
  const stored = await db.kysely.selectFrom('stripe_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();

  // ── 2. purchase to valid ──
  console.log(`timing ${PURCHASES} purchases…`);
  const viaStripe: number[] = [];
  const viaAdmin: number[] = [];
  for (let i = 0; i < PURCHASES; i++) {
    const session = fake.checkoutSession({ mode: 'payment', email: `buyer${i}@example.com`, lineItems: [{ price, quantity: 1 }] });
    const event = fake.event('checkout.session.completed', session);
    const t0 = performance.now();
    const res = await fake.send(webhookUrl, event, { secret });
    if (res.status !== 200) throw new Error(`webhook refused: ${JSON.stringify(res.body)}`);
    let key: string | null = null;
    for (;;) {
      if (!key) {
        const shown = await call('GET', `/v1/stripe/events/${event.id}`);
        if (shown.status === 'processed') key = (await call('GET', `/v1/licenses/${shown.outcome.licenses[0]}`)).key;
        else if (shown.status === 'failed' || shown.status === 'ignored') throw new Error(`purchase not fulfilled: ${JSON.stringify(shown)}`);
      }
      if (key && (await call('POST', '/v1/licenses/validate', { key }, false)).code === 'VALID') break;
      await new Promise((r) => setTimeout(r, 1));
    }
    viaStripe.push(performance.now() - t0);

    const t1 = performance.now();
    const license = await call('POST', '/v1/licenses', { policy: policy.id, customer: { email: `direct${i}@example.com` } });
    const verdict = await call('POST', '/v1/licenses/validate', { key: license.key }, false);
    if (verdict.code !== 'VALID') throw new Error('baseline license did not validate');
    viaAdmin.push(performance.now() - t1);
  }
  viaStripe.sort((a, b) => a - b);
  viaAdmin.sort((a, b) => a - b);

  console.log(`\nKeymint Stripe benchmark (${db.dialect}, ${CONNECTIONS} connections, everything in one process)\n`);
  console.log('webhook ingest (events/s)        keymint (verify+store)   bare route      ratio');
  console.log(`                                 ${keymintIngest.rps.toFixed(0).padStart(12)}   ${bareIngest.rps.toFixed(0).padStart(12)}   ${(keymintIngest.rps / bareIngest.rps).toFixed(3)}`);
  console.log(`  stored ${stored.n} events (${keymintIngest.non2xx} non-2xx from Keymint, ${bareIngest.non2xx} from the bare route)\n`);
  console.log('purchase → VALID                 via Stripe event         admin create+validate');
  console.log(`  p50                            ${ms(percentile(viaStripe, 50)).padStart(12)}   ${ms(percentile(viaAdmin, 50)).padStart(12)}`);
  console.log(`  p99                            ${ms(percentile(viaStripe, 99)).padStart(12)}   ${ms(percentile(viaAdmin, 99)).padStart(12)}`);

  await bare.close();
  await app.close();
  await db.close();
  await fake.close();
  await database.drop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
