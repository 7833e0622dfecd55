import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A fresh, empty place to run Keymint: a temporary data dir, plus a new
 * PostgreSQL database when `serverUrl` names a server (created next to the
 * database it names; the user needs CREATEDB). `drop()` removes both.
 * Shared by the test harness and the benchmarks.
 */
export interface ScratchDatabase {
  dataDir: string;
  databaseUrl: string | null;
  drop(): Promise<void>;
}

/** `purpose` names the dir (`keymint-<purpose>-…`) and the database (`keymint_<purpose>_…`), so leftovers say where they came from. */
export async function scratchDatabase(serverUrl: string | null, purpose: string): Promise<ScratchDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `keymint-${purpose}-`));
  const removeDir = () => fs.rmSync(dataDir, { recursive: true, force: true });
  if (!serverUrl) return { dataDir, databaseUrl: null, drop: async () => removeDir() };

  const name = `keymint_${purpose}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  try {
    await admin.connect();
    await admin.query(`create database ${name}`);
  } catch (err) {
    removeDir();
    throw err;
  } finally {
    await admin.end().catch(() => undefined);
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    dataDir,
    databaseUrl: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        // Not WITH (FORCE): that kills connections a pool is still closing and
        // turns a clean shutdown into errors. Closed connections leave in a moment.
        for (let attempt = 0; ; attempt++) {
          try {
            await c.query(`drop database if exists ${name}`);
            break;
          } catch (err) {
            if (attempt >= 50) throw err;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
        }
      } finally {
        await c.end();
        removeDir();
      }
    },
  };
}
