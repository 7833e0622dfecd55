import type { Kysely } from 'kysely';

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations describe the schema as it was then */

/** Bounds on how long a license file may be trusted offline, per policy (seconds). */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('policies').addColumn('min_file_ttl', 'integer', (c) => c.notNull().defaultTo(3600)).execute();
  await db.schema.alterTable('policies').addColumn('max_file_ttl', 'integer', (c) => c.notNull().defaultTo(90 * 86_400)).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('policies').dropColumn('min_file_ttl').execute();
  await db.schema.alterTable('policies').dropColumn('max_file_ttl').execute();
}
