import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type Migration, type MigrationProvider, type SqliteDatabase } from 'kysely';
import pg from 'pg';
import * as m0001 from './migrations/0001-core.js';
import * as m0002 from './migrations/0002-jobs.js';
import * as m0003 from './migrations/0003-stripe.js';
import * as m0004 from './migrations/0004-email.js';
import * as m0005 from './migrations/0005-webhooks.js';
import * as m0006 from './migrations/0006-license-files.js';
import * as m0007 from './migrations/0007-license-activity.js';
import type { Database } from './schema.js';
import { SqliteChangeWatch, type ChangeWatch } from './change-watch.js';
import { preparedQueries, type PreparedQueries } from './prepared.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  kysely: Kysely<Database>;
  dialect: Dialect;
  /** Reports changes to what license validation reads; SQLite only (null on PostgreSQL, see docs/design.md). */
  changes: ChangeWatch | null;
  /** The hot path's queries as named prepared statements; PostgreSQL only (see src/db/prepared.ts). */
  prepared: PreparedQueries | null;
  close(): Promise<void>;
}

const PG_INT8 = 20;
const PG_NUMERIC = 1700;

/** How many prepared statements the SQLite connection keeps; the app issues a few hundred distinct SQL texts. */
const STATEMENT_CACHE_SIZE = 500;
/** Longer SQL (multi-row inserts, long `in` lists) is rarely repeated verbatim; it is prepared and let go. */
const MAX_CACHED_SQL_LENGTH = 8_192;

/**
 * Kysely's SQLite driver calls `prepare(sql)` for every query, and preparing
 * costs several times what running a small indexed query does. This hands it
 * the same better-sqlite3 Statement for the same SQL text (a bounded LRU).
 * A statement is reusable once `all()`/`run()` return; one still being
 * iterated (Kysely's `stream()`) is busy, so that caller gets a fresh one.
 * SQLite re-prepares a cached statement by itself after a schema change.
 */
function withStatementCache(sqlite: SQLite.Database): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sql) {
      const cached = cache.get(sql);
      if (cached !== undefined && !cached.busy) {
        // Map order is insertion order: re-inserting marks it most recently used.
        cache.delete(sql);
        cache.set(sql, cached);
        return cached;
      }
      const statement = sqlite.prepare(sql);
      if (cached === undefined && sql.length <= MAX_CACHED_SQL_LENGTH) {
        cache.set(sql, statement);
        if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      }
      return statement;
    },
  };
}

export function openDatabase(options: { databaseUrl: string | null; dataDir: string; poolSize?: number }): Db {
  if (options.databaseUrl) {
    const pool = new pg.Pool({
      connectionString: options.databaseUrl,
      max: options.poolSize ?? 10,
      // Timestamps are BIGINT and counts are int8; both fit a JS number for
      // any date this software will see, so read them as numbers, not strings.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === PG_INT8 || oid === PG_NUMERIC
            ? (value: string) => Number(value)
            : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    const prepared = preparedQueries(pool, (reason) =>
      process.emitWarning(`named prepared statements do not work with this database connection (${reason}); using unnamed queries`, { code: 'KEYMINT_UNNAMED_QUERIES' }),
    );
    return { kysely, dialect: 'postgres', changes: null, prepared, close: () => kysely.destroy() };
  }
  fs.mkdirSync(options.dataDir, { recursive: true });
  const sqlite = new SQLite(path.join(options.dataDir, 'keymint.sqlite'));
  sqlite.pragma('journal_mode = WAL');
  // NORMAL is durable across application crashes in WAL mode; only an OS
  // crash can lose the last transactions, never corrupt the file.
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  // A REPLACE deletes the row it replaces; only with recursive triggers does
  // that delete fire DELETE triggers, which the change watch relies on.
  sqlite.pragma('recursive_triggers = ON');
  sqlite.pragma('busy_timeout = 5000');
  // A 64 MiB page cache (the default is 2 MiB) keeps the pages validation reads
  // (index and license rows) in the process: a page cache miss is a read() call.
  // It fills only as pages are read.
  sqlite.pragma('cache_size = -65536');
  const kysely = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  return { kysely, dialect: 'sqlite', changes: new SqliteChangeWatch(sqlite), prepared: null, close: () => kysely.destroy() };
}

const migrations: Record<string, Migration> = {
  '0001-core': m0001,
  '0002-jobs': m0002,
  '0003-stripe': m0003,
  '0004-email': m0004,
  '0005-webhooks': m0005,
  '0006-license-files': m0006,
  '0007-license-activity': m0007,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

const migrator = (db: Db) =>
  new Migrator({ db: db.kysely, provider, migrationTableName: 'keymint_migrations', migrationLockTableName: 'keymint_migrations_lock' });

/** Applies every pending migration; safe to run from several processes at once on PostgreSQL (Kysely takes a lock). */
export async function migrateToLatest(db: Db): Promise<string[]> {
  const { error, results } = await migrator(db).migrateToLatest();
  db.changes?.reset();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await migrator(db).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
