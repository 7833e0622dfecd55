import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { preparedQueries } from '../src/db/prepared.js';
import { dialectUnderTest, freshDatabase, type TestDatabase } from './support/harness.js';

/**
 * PostgreSQL runs the validation query as a named prepared statement
 * (src/db/prepared.ts). Every validation test on PostgreSQL goes through it;
 * these cover what happens where named statements stop working.
 */
describe.runIf(dialectUnderTest === 'postgres')('named prepared statements', () => {
  let database: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    database = await freshDatabase();
    // One connection, so the statement prepared first is the one run again.
    pool = new pg.Pool({ connectionString: database.databaseUrl!, max: 1 });
    await pool.query('create table things (id text primary key, n integer not null)');
    await pool.query(`insert into things values ('a', 1), ('b', 2)`);
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it('answer like unnamed queries, and fall back to them for good when the statement no longer fits its table', async () => {
    const fallbacks: string[] = [];
    const queries = preparedQueries(pool, (reason) => fallbacks.push(reason));
    const find = (id: string) => queries.rows<{ id: string; n: unknown }>('find_thing', 'select id, n from things where id = $1', [id]);
    expect(await find('a')).toEqual([{ id: 'a', n: 1 }]);
    expect(await find('b')).toEqual([{ id: 'b', n: 2 }]);
    expect(fallbacks).toEqual([]);

    // A migration changes a selected column's type under the prepared statement.
    await pool.query('alter table things alter column n type text');
    expect(await find('a')).toEqual([{ id: 'a', n: '1' }]);
    expect(await find('b')).toEqual([{ id: 'b', n: '2' }]);
    expect(fallbacks).toHaveLength(1);
    expect(fallbacks[0]).toContain('0A000');
  });

  it('pass on errors that are about the query, not about named statements', async () => {
    const fallbacks: string[] = [];
    const queries = preparedQueries(pool, (reason) => fallbacks.push(reason));
    await expect(queries.rows('bad', 'select nope from things', [])).rejects.toMatchObject({ code: '42703' });
    expect(fallbacks).toEqual([]);
  });
});
