import { sql } from 'kysely';
import type { Config } from '../src/config.js';
import { createSecretBox, loadMasterKey, sha256Hex } from '../src/crypto/secret-box.js';
import { migrateToLatest, openDatabase } from '../src/db/database.js';
import type { LicenseRow } from '../src/db/repositories/licenses.js';
import type { Scope } from '../src/db/schema.js';
import { newId } from '../src/ids.js';
import { encodeKey } from '../src/licensing/license-key.js';
import { createServices } from '../src/services.js';

export interface SeedOptions {
  licenses: number;
  /** How many of the generated keys to keep for the load. */
  sample: number;
}

export interface SeedResult {
  /** A uniform random sample of the issued keys. */
  keys: string[];
  seconds: number;
}

/** Rows per INSERT: ~30 columns × 500 stays below both SQLite's (32766) and PostgreSQL's (65535) bound-parameter limits. */
const ROWS_PER_INSERT = 500;
/** Rows per transaction: large enough that commits are not the cost, small enough to keep the WAL modest. */
const ROWS_PER_TRANSACTION = 10_000;

/**
 * Fills a fresh database with one product, one policy and `licenses` licenses.
 *
 * Everything up to the first license goes through the services, so it is
 * exactly what the admin API would create. The other licenses are
 * bulk-inserted instead: LicenseService.create costs a transaction and an
 * event per license, which would make seeding 100,000 of them take minutes.
 * Each bulk row is a copy of the row the service wrote for the first license,
 * with its own id and key, so the copies keep up with whatever columns
 * LicenseService writes; one of them is read back through the service to
 * prove the copy is sound.
 */
export async function seed(config: Config, options: SeedOptions): Promise<SeedResult> {
  const started = process.hrtime.bigint();
  // One frozen clock, so the service-made template and the copies share their timestamps.
  const now = Math.floor(Date.now() / 1000);
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const services = createServices(db, createSecretBox(loadMasterKey(config.secret, config.dataDir)), () => now, config);
  try {
    await migrateToLatest(db);
    const accountId = await services.accounts.ensureDefaultAccount();
    const scope: Scope = { accountId, env: 'live' };
    const product = await services.catalog.createProduct(scope, { name: 'Bench App', code: 'bench-app' });
    // A typical paid plan: yearly, a few seats, some entitlements, a grace period,
    // so the validation answer carries a realistic amount of data.
    const policy = await services.catalog.createPolicy(scope, {
      product: product.id,
      name: 'Pro, yearly',
      license_type: 'subscription',
      duration: '1y',
      max_devices: 3,
      entitlements: ['pro', 'export', 'sync'],
      grace_period: '7d',
    });
    const signingKey = await services.signingKeys.active(scope);
    const first = await services.licenses.create(scope, { policy: policy.id });
    const template: LicenseRow = await db.kysely.selectFrom('licenses').selectAll().where('id', '=', first.id).executeTakeFirstOrThrow();
    if (template.key_kid !== signingKey.id) throw new Error(`license ${first.id} was signed with ${template.key_kid}, not the active key ${signingKey.id}`);

    const keys: string[] = [];
    let seen = 0;
    const sample = (key: string) => {
      // Reservoir sampling (algorithm R): a uniform sample without holding every key.
      if (keys.length < options.sample) keys.push(key);
      else {
        const j = Math.floor(Math.random() * (seen + 1));
        if (j < options.sample) keys[j] = key;
      }
      seen++;
    };
    sample(first.key);
    let probe: { id: string; key: string } | null = null;
    const makeRow = (): LicenseRow => {
      const id = newId('license');
      const key = encodeKey({ lid: id, pid: template.product_id, env: template.env, kid: template.key_kid, iat: template.key_iat }, signingKey.privateKey);
      sample(key);
      probe ??= { id, key };
      return { ...template, id, key_hash: sha256Hex(key) };
    };

    const remaining = options.licenses - 1;
    for (let done = 0; done < remaining; done += ROWS_PER_TRANSACTION) {
      const inThisTransaction = Math.min(ROWS_PER_TRANSACTION, remaining - done);
      await db.kysely.transaction().execute(async (trx) => {
        for (let i = 0; i < inThisTransaction; i += ROWS_PER_INSERT) {
          const rows = Array.from({ length: Math.min(ROWS_PER_INSERT, inThisTransaction - i) }, makeRow);
          await trx.insertInto('licenses').values(rows).execute();
        }
      });
    }

    // The service re-derives a license's key from the stored row; a copy it
    // cannot read back as written would make the benchmark meaningless.
    if (probe) {
      const { id, key } = probe;
      const view = await services.licenses.get(scope, id);
      if (view.key !== key || view.status !== 'active') throw new Error(`seeded license ${id} does not read back as written`);
    }
    // PostgreSQL plans from statistics that autovacuum would only gather later.
    if (db.dialect === 'postgres') await sql`analyze`.execute(db.kysely);

    return { keys, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
  } finally {
    await services.close();
    await db.close();
  }
}
