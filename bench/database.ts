import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A fresh database for one benchmark run: a temporary data dir, plus a new
 * PostgreSQL database when DATABASE_URL is set (created next to the one it
 * names, dropped afterwards). Shared by every benchmark in bench/.
 */
export interface BenchDatabase {
  dataDir: string;
  databaseUrl: string | null;
  drop(): Promise<void>;
}

export async function freshDatabase(): Promise<BenchDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keymint-bench-'));
  const removeDir = () => fs.rmSync(dataDir, { recursive: true, force: true });
  const serverUrl = process.env.DATABASE_URL?.trim();
  if (!serverUrl) return { dataDir, databaseUrl: null, drop: async () => removeDir() };

  const name = `keymint_bench_${randomBytes(6).toString('hex')}`;
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
        // The server's pool may still be letting go of its connections; retry
        // rather than WITH (FORCE), which would turn that into errors.
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
