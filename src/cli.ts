import { Command, InvalidArgumentError } from 'commander';
import { buildApp } from './app.js';
import { AccountService } from './accounts/accounts.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createSecretBox, loadMasterKey } from './crypto/secret-box.js';
import { migrateToLatest, openDatabase, pendingMigrations } from './db/database.js';
import type { Env } from './db/schema.js';
import { mailCommand } from './delivery/mailbox-commands.js';
import { SigningKeyService } from './licensing/signing-keys.js';

const now = () => Math.floor(Date.now() / 1000);

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keymint: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Opens the database, applies migrations when allowed, and makes sure the default account exists. */
async function prepare(cfg: Config, options: { migrate: boolean }) {
  const db = openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir });
  if (options.migrate) {
    await migrateToLatest(db);
  } else {
    const pending = await pendingMigrations(db);
    if (pending.length > 0) {
      await db.close();
      throw new Error(`the database needs migrations (${pending.join(', ')}); run \`keymint migrate\` first`);
    }
  }
  const box = createSecretBox(loadMasterKey(cfg.secret, cfg.dataDir));
  const accounts = new AccountService(db.kysely, db.dialect, new SigningKeyService(db.kysely, box, now), now);
  const accountId = await accounts.ensureDefaultAccount();
  return { db, accounts, accountId };
}

const program = new Command('keymint').description('Self-hosted license server for software sold through Stripe');

program
  .command('serve')
  .description('run the HTTP server (applies migrations first on SQLite)')
  .action(async () => {
    const cfg = config();
    const { db } = await prepare(cfg, { migrate: cfg.databaseUrl === null });
    const app = await buildApp(cfg, { db });
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      app.log.info({ signal }, 'shutting down: finishing in-flight requests');
      // A second signal, or a hang, must not keep the process alive forever.
      const force = setTimeout(() => process.exit(1), 30_000);
      force.unref();
      try {
        await app.close();
        await db.close();
      } finally {
        process.exit(0);
      }
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
    await app.listen({ port: cfg.port, host: cfg.host });
    app.log.info(`keymint listening on ${cfg.publicUrl} (${db.dialect})`);
  });

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async () => {
    const cfg = config();
    const db = openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir });
    try {
      const applied = await migrateToLatest(db);
      process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
    } finally {
      await db.close();
    }
  });

const apiKeys = program.command('api-keys').description('manage secret API keys');
apiKeys
  .command('create')
  .description('create a secret API key; it is printed once, alone on the last line')
  .requiredOption('--env <env>', 'test or live', (value: string): Env => {
    if (value !== 'test' && value !== 'live') throw new InvalidArgumentError('must be "test" or "live"');
    return value;
  })
  .option('--name <name>', 'a label to recognize the key by')
  .action(async (opts: { env: Env; name?: string }) => {
    const cfg = config();
    const { db, accounts, accountId } = await prepare(cfg, { migrate: cfg.databaseUrl === null });
    try {
      const key = await accounts.createApiKey(accountId, opts.env, opts.name?.trim() || null);
      process.stdout.write(`Created ${opts.env} API key ${key.id}${key.name ? ` (${key.name})` : ''}. Store it now: it is not shown again.\n`);
      process.stdout.write(`${key.secret}\n`);
    } finally {
      await db.close();
    }
  });

program.addCommand(mailCommand(config));

program
  .command('verify')
  .description('verify a license key or license file offline, against public keys (the SDK, packages/verify)')
  .allowUnknownOption()
  .helpOption(false)
  .argument('[args...]', 'see `keymint verify --help`')
  .action(async (args: string[]) => {
    // The SDK ships its own command; this is the same program under the main CLI. It lives in
    // packages/verify (built on install), outside this package's compiled sources, hence the runtime import.
    const sdkCli = new URL('../packages/verify/dist/esm/cli.js', import.meta.url);
    const { runCli } = (await import(sdkCli.href)) as { runCli: (argv: string[]) => Promise<number> };
    process.exitCode = await runCli(args);
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`keymint: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
