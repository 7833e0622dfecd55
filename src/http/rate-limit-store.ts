import type { Kysely } from 'kysely';
import { countRequest, deleteRateLimitsBefore } from '../db/repositories/rate-limits.js';
import type { Database } from '../db/schema.js';

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;

/**
 * A store for @fastify/rate-limit that keeps fixed-window counters in
 * PostgreSQL, so every replica enforces one shared limit. Costs one upsert
 * per counted request; vendors who limit at their proxy set
 * KEYMINT_RATE_LIMIT=0.
 */
export function databaseRateLimitStore(db: Kysely<Database>) {
  let lastSweep = 0;
  return class DatabaseRateLimitStore {
    // @fastify/rate-limit passes the window as a third argument (its type declaration omits it).
    incr(key: string, cb: Callback, timeWindow = 60_000): void {
      const now = Date.now();
      const windowStart = Math.floor(now / timeWindow) * timeWindow;
      countRequest(db, key, windowStart).then(
        (current) => cb(null, { current, ttl: windowStart + timeWindow - now }),
        (err: Error) => cb(err),
      );
      // Old windows are dead weight; any replica may sweep them now and then.
      if (now - lastSweep > 60_000) {
        lastSweep = now;
        deleteRateLimitsBefore(db, windowStart - timeWindow).catch(() => undefined);
      }
    }

    child(): DatabaseRateLimitStore {
      return new DatabaseRateLimitStore();
    }
  };
}
