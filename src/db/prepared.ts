import type pg from 'pg';

/**
 * The hot path's queries as named prepared statements (PostgreSQL).
 *
 * Kysely sends every query unnamed, so PostgreSQL parses and plans it each
 * time. For the validation query (three joins, two correlated subqueries)
 * planning takes about four times as long as running it (0.13–0.19 ms
 * against 0.03–0.05 ms, `EXPLAIN ANALYZE` on a warm connection), and on a
 * machine where the database shares the cores with the server that is what
 * bounds throughput. A named statement is parsed and planned once per
 * connection (pg remembers which of its connections has prepared which
 * name). SQLite needs none of this: its statements are already kept by SQL
 * text (src/db/database.ts).
 *
 * Named statements do not survive every deployment: a pooler in transaction
 * mode (PgBouncer before 1.21, or without `max_prepared_statements`) hands
 * the next query to another server connection, and a statement whose result
 * columns changed type under it (a migration while servers run) fails. On
 * any of those errors this process goes back to unnamed queries for good,
 * logging why once.
 */
export interface PreparedQueries {
  rows<R>(name: string, sql: string, values: readonly unknown[]): Promise<R[]>;
}

/** SQLSTATEs that mean "named statements do not work here", not "this query is wrong". */
const NAMED_STATEMENTS_UNUSABLE = new Set([
  '26000', // invalid_sql_statement_name: prepared on another server connection (a pooler)
  '42P05', // duplicate_prepared_statement: likewise
  '0A000', // feature_not_supported: "cached plan must not change result type"
]);

export function preparedQueries(pool: pg.Pool, onFallback: (reason: string) => void = () => undefined): PreparedQueries {
  let named = true;
  return {
    async rows<R>(name: string, sql: string, values: readonly unknown[]): Promise<R[]> {
      if (named) {
        try {
          return (await pool.query({ name, text: sql, values: values as unknown[] })).rows as R[];
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          if (typeof code !== 'string' || !NAMED_STATEMENTS_UNUSABLE.has(code)) throw err;
          if (named) onFallback(`${code}: ${(err as Error).message}`);
          named = false;
        }
      }
      return (await pool.query({ text: sql, values: values as unknown[] })).rows as R[];
    },
  };
}
