import type { SelectQueryBuilder } from 'kysely';

export interface PageParams {
  limit: number;
  starting_after?: string;
  ending_before?: string;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

/** The same page with each row shown as `view` shows it. */
export function mapPage<Row, View>(page: Page<Row>, view: (row: Row) => View): Page<View> {
  return { data: page.data.map((row) => view(row)), has_more: page.has_more };
}

/**
 * Stripe-style cursor pagination over time-sortable ids, newest first.
 * `starting_after` pages towards older objects, `ending_before` towards newer
 * ones; either way one extra row is fetched to know whether there is more.
 */
// Kysely's builder types are too deep to name generically here; the column is always `<table>.id`.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function paginate<Row>(query: SelectQueryBuilder<any, any, Row>, idColumn: string, page: PageParams): Promise<Page<Row>> {
  if (page.ending_before !== undefined) {
    const rows = await query
      .where(idColumn, '>', page.ending_before)
      .orderBy(idColumn, 'asc')
      .limit(page.limit + 1)
      .execute();
    const has_more = rows.length > page.limit;
    return { data: rows.slice(0, page.limit).reverse(), has_more };
  }
  let q = query;
  if (page.starting_after !== undefined) q = q.where(idColumn, '<', page.starting_after);
  const rows = await q.orderBy(idColumn, 'desc').limit(page.limit + 1).execute();
  return { data: rows.slice(0, page.limit), has_more: rows.length > page.limit };
}
