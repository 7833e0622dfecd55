import { sql, type Kysely } from 'kysely';

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations describe the schema as it was then */

/**
 * "Last validated" moves out of the licenses table into a narrow table of
 * its own. It is the one column written by validation, for thousands of
 * licenses at a time; in the wide license row every such write rewrote
 * (and, on SQLite, logged to the WAL and checkpointed) a whole page of
 * license rows per license touched, and woke every reader of those rows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('license_activity')
    .addColumn('license_id', 'text', (c) => c.primaryKey().references('licenses.id'))
    .addColumn('last_validated_at', 'bigint', (c) => c.notNull())
    .execute();
  await sql`insert into license_activity (license_id, last_validated_at) select id, last_validated_at from licenses where last_validated_at is not null`.execute(db);
  await db.schema.alterTable('licenses').dropColumn('last_validated_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.alterTable('licenses').addColumn('last_validated_at', 'bigint').execute();
  await sql`update licenses set last_validated_at = (select a.last_validated_at from license_activity a where a.license_id = licenses.id)`.execute(db);
  await db.schema.dropTable('license_activity').execute();
}
