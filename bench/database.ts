import { scratchDatabase, type ScratchDatabase } from '../test/support/scratch-database.js';

/**
 * A fresh database for one benchmark run: a temporary data dir, plus a new
 * PostgreSQL database when DATABASE_URL is set (created next to the one it
 * names, dropped afterwards). Shared by every benchmark in bench/.
 */
export function freshDatabase(): Promise<ScratchDatabase> {
  return scratchDatabase(process.env.DATABASE_URL?.trim() || null, 'bench');
}
