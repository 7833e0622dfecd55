import type SQLite from 'better-sqlite3';

/**
 * Called with the id of a license whose validation inputs changed (its row or
 * one of its devices), or with null when anything may have changed: a policy
 * or a product (every license of it), or a write by another process.
 */
export type ChangeListener = (licenseId: string | null) => void;

/**
 * Tells in-memory copies of licensing data (the validation cache) that the
 * rows they were made from changed. SQLite only: see SqliteChangeWatch.
 */
export interface ChangeWatch {
  subscribe(listener: ChangeListener): () => void;
  /** Tells the watch that this connection changed the schema (see SqliteChangeWatch.reset). */
  reset(): void;
  /**
   * Reports writes made by other connections since the last call (as one
   * null change) and answers whether every change is being reported. False
   * while the watch cannot work (the tables do not exist yet): nothing may be
   * kept in memory then.
   */
  sync(): boolean;
}

const FUNCTION = 'keymint_changed';

/**
 * The triggers, one per statement kind and table. They are TEMP triggers:
 * they live in this connection only, are not part of the schema, and cannot
 * break another program that opens the file (the sqlite3 shell, a backup
 * tool), which would not know the function they call.
 * ("Last validated" bookkeeping lives in a table of its own,
 * license_activity, which no answer reads and no trigger watches.)
 */
const TRIGGERS: Record<string, string> = {
  licenses_insert: `AFTER INSERT ON main.licenses BEGIN SELECT ${FUNCTION}(new.id); END`,
  licenses_update: `AFTER UPDATE ON main.licenses BEGIN SELECT ${FUNCTION}(old.id); SELECT ${FUNCTION}(new.id); END`,
  licenses_delete: `AFTER DELETE ON main.licenses BEGIN SELECT ${FUNCTION}(old.id); END`,
  devices_insert: `AFTER INSERT ON main.devices BEGIN SELECT ${FUNCTION}(new.license_id); END`,
  devices_update: `AFTER UPDATE ON main.devices BEGIN SELECT ${FUNCTION}(old.license_id); SELECT ${FUNCTION}(new.license_id); END`,
  devices_delete: `AFTER DELETE ON main.devices BEGIN SELECT ${FUNCTION}(old.license_id); END`,
  policies_update: `AFTER UPDATE ON main.policies BEGIN SELECT ${FUNCTION}(NULL); END`,
  policies_delete: `AFTER DELETE ON main.policies BEGIN SELECT ${FUNCTION}(NULL); END`,
  products_update: `AFTER UPDATE ON main.products BEGIN SELECT ${FUNCTION}(NULL); END`,
  products_delete: `AFTER DELETE ON main.products BEGIN SELECT ${FUNCTION}(NULL); END`,
};

const WATCHED_TABLES = ['licenses', 'devices', 'policies', 'products'];

/**
 * Row-level change reports for one SQLite connection, the way
 * `sqlite3_update_hook` would give them (better-sqlite3 does not expose that
 * hook): TEMP triggers on the watched tables call a JavaScript function,
 * synchronously, inside the statement that made the change, so no write path
 * of this process can forget to report one, raw SQL included.
 *
 * Another process writing the same file (a second `keymint serve`, a script)
 * does not fire this connection's triggers; `PRAGMA data_version`, which
 * changes exactly when another connection commits, catches those, and they
 * are reported as "anything may have changed". A report can come for a
 * change that is then rolled back; reporting too much is safe, too little
 * is not.
 */
export class SqliteChangeWatch implements ChangeWatch {
  private readonly listeners = new Set<ChangeListener>();
  private readonly dataVersion: SQLite.Statement<[], number>;
  private lastDataVersion: number;
  private installed = false;
  private checkedThisTurn = false;
  private readonly nextTurn = () => {
    this.checkedThisTurn = false;
  };

  constructor(private readonly sqlite: SQLite.Database) {
    sqlite.function(FUNCTION, { deterministic: false, varargs: false }, (licenseId: unknown) => {
      this.report(typeof licenseId === 'string' ? licenseId : null);
      return null;
    });
    this.dataVersion = sqlite.prepare<[], number>('PRAGMA data_version').pluck();
    this.lastDataVersion = this.dataVersion.get() as number;
  }

  subscribe(listener: ChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  sync(): boolean {
    // Inside a transaction on this connection (Kysely holds one across
    // awaits), data_version answers for the transaction's snapshot and misses
    // what other processes commit meanwhile; a database read would wait for
    // the transaction instead, so that is what happens.
    if (this.sqlite.inTransaction) return false;
    if (this.checkedThisTurn) return this.installed;
    // Reading data_version takes SQLite's WAL read lock (system calls): once per
    // turn of the event loop, not per request. Requests served in one turn are
    // answered as of its first check; a commit elsewhere after it is concurrent
    // with them.
    this.checkedThisTurn = true;
    setImmediate(this.nextTurn);
    let version: number;
    try {
      version = this.dataVersion.get() as number;
    } catch {
      // The connection is busy or closed: without the check, nothing may be answered from memory.
      this.installed = false;
      return false;
    }
    if (version !== this.lastDataVersion) {
      this.lastDataVersion = version;
      // Another process may also have rebuilt a table (a migration), which drops its triggers.
      this.installed = false;
      this.report(null);
    }
    if (!this.installed) {
      this.installed = this.install();
      // Writes made while there were no triggers went unreported: whatever
      // was read before now (a read in flight included) may be stale.
      if (this.installed) this.report(null);
    }
    return this.installed;
  }

  /**
   * After a schema change made on this connection (migrations): a table
   * rebuilt here drops its TEMP triggers without changing data_version for
   * this connection, so they are created again at the next sync().
   */
  reset(): void {
    this.installed = false;
    this.checkedThisTurn = false;
  }

  private report(licenseId: string | null): void {
    for (const listener of this.listeners) listener(licenseId);
  }

  /**
   * Creates the triggers once the tables exist (after the first migration);
   * answers whether they are in place. Never inside a transaction (sync()
   * checks): its rollback would take the triggers with it.
   */
  private install(): boolean {
    try {
      const present = this.sqlite
        .prepare<string[], string>(`SELECT name FROM main.sqlite_master WHERE type = 'table' AND name IN (${WATCHED_TABLES.map(() => '?').join(', ')})`)
        .pluck()
        .all(...WATCHED_TABLES);
      if (present.length !== WATCHED_TABLES.length) return false;
      for (const [name, body] of Object.entries(TRIGGERS)) this.sqlite.exec(`CREATE TEMP TRIGGER IF NOT EXISTS keymint_watch_${name} ${body}`);
      return true;
    } catch {
      return false;
    }
  }
}
