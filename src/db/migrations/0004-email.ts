import { sql, type Kysely } from 'kysely';

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations describe the schema as it was then */

export async function up(db: Kysely<any>): Promise<void> {
  // Per-product email settings, as JSON; `{}` means every default.
  await db.schema.alterTable('products').addColumn('email_settings', 'text', (c) => c.notNull().defaultTo('{}')).execute();

  // The delivery log: one row per email Keymint promised to send, written in
  // the same transaction as its `email.send` job. The rendered body is not
  // kept (it may hold license keys); it is rendered again when sent.
  await db.schema
    .createTable('emails')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('subject', 'text', (c) => c.notNull())
    .addColumn('product_id', 'text')
    // JSON array of license ids; `[]` for mail about no license (magic links).
    .addColumn('license_ids', 'text', (c) => c.notNull())
    // JSON: what else the message needs (a sealed magic-link URL).
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('transport', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('last_error', 'text')
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    .addColumn('sent_at', 'bigint')
    .execute();
  await db.schema.createIndex('emails_scope').on('emails').columns(['account_id', 'env', 'id']).execute();

  // What the scheduler has already announced: one row per license, notice and
  // expiry, so `license.expiring_soon` and `license.expired` fire once per
  // expiry however many replicas or ticks look at the license.
  await db.schema
    .createTable('license_notices')
    .addColumn('license_id', 'text', (c) => c.notNull().references('licenses.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('license_notices_pk', ['license_id', 'kind', 'expires_at'])
    .execute();

  // The scheduler's scans: licenses by expiry, by end of access, and lapsed floating leases.
  await db.schema.createIndex('licenses_expires_at').on('licenses').column('expires_at').execute();
  await db.schema
    .createIndex('licenses_access_ends_at')
    .on('licenses')
    .expression(sql`coalesce(grace_ends_at, expires_at)`)
    .execute();
  await db.schema.createIndex('devices_lease_expires_at').on('devices').column('lease_expires_at').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropIndex('devices_lease_expires_at').execute();
  await db.schema.dropIndex('licenses_access_ends_at').execute();
  await db.schema.dropIndex('licenses_expires_at').execute();
  await db.schema.dropTable('license_notices').execute();
  await db.schema.dropTable('emails').execute();
  await db.schema.alterTable('products').dropColumn('email_settings').execute();
}
