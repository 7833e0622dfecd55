import type { Kysely } from 'kysely';

// Migrations take Kysely<any>: they describe the schema as it was at the time,
// not as the current table types say it is.
/* eslint-disable @typescript-eslint/no-explicit-any -- see above */

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('key_hint', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('revoked_at', 'bigint')
    .execute();

  await db.schema
    .createTable('signing_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('algorithm', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('private_key_sealed', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('signing_keys_scope').on('signing_keys').columns(['account_id', 'env']).execute();

  await db.schema
    .createTable('products')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('code', 'text')
    .addColumn('perpetual_fallback', 'integer', (c) => c.notNull())
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('products_code_unique', ['account_id', 'env', 'code'])
    .execute();

  await db.schema
    .createTable('policies')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('product_id', 'text', (c) => c.notNull().references('products.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('license_type', 'text', (c) => c.notNull())
    .addColumn('duration', 'text')
    .addColumn('fixed_expires_at', 'bigint')
    .addColumn('max_devices', 'integer')
    .addColumn('floating', 'integer', (c) => c.notNull())
    .addColumn('heartbeat_interval', 'integer')
    .addColumn('entitlements', 'text', (c) => c.notNull())
    .addColumn('grace_period', 'text')
    .addColumn('maintenance_period', 'text')
    .addColumn('require_fingerprint', 'integer', (c) => c.notNull())
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('policies_scope').on('policies').columns(['account_id', 'env', 'id']).execute();

  await db.schema
    .createTable('customers')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('stripe_customer_id', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    // One customer per email and environment: the portal signs people in by email.
    .addUniqueConstraint('customers_email_unique', ['account_id', 'env', 'email'])
    .execute();

  await db.schema
    .createTable('licenses')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('product_id', 'text', (c) => c.notNull().references('products.id'))
    .addColumn('policy_id', 'text', (c) => c.notNull().references('policies.id'))
    .addColumn('customer_id', 'text', (c) => c.references('customers.id'))
    .addColumn('key_hash', 'text', (c) => c.notNull().unique())
    .addColumn('key_kid', 'text', (c) => c.notNull())
    .addColumn('key_iat', 'bigint', (c) => c.notNull())
    .addColumn('expires_at', 'bigint')
    .addColumn('grace_ends_at', 'bigint')
    .addColumn('maintenance_ends_at', 'bigint')
    .addColumn('suspended_at', 'bigint')
    .addColumn('revoked_at', 'bigint')
    .addColumn('max_devices_override', 'integer')
    .addColumn('entitlements_override', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('last_validated_at', 'bigint')
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('licenses_scope').on('licenses').columns(['account_id', 'env', 'id']).execute();
  await db.schema.createIndex('licenses_customer').on('licenses').columns(['customer_id']).execute();
  await db.schema.createIndex('licenses_product').on('licenses').columns(['product_id']).execute();

  await db.schema
    .createTable('devices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('license_id', 'text', (c) => c.notNull().references('licenses.id'))
    .addColumn('fingerprint', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('platform', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('lease_expires_at', 'bigint')
    .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    // The backstop for idempotent activation: one device per fingerprint per license.
    .addUniqueConstraint('devices_fingerprint_unique', ['license_id', 'fingerprint'])
    .execute();

  await db.schema
    .createTable('events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('object_type', 'text', (c) => c.notNull())
    .addColumn('object_id', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_scope').on('events').columns(['account_id', 'env', 'id']).execute();
  await db.schema.createIndex('events_object').on('events').columns(['object_id']).execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('status_code', 'integer')
    .addColumn('response_sealed', 'text')
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['account_id', 'env', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_created').on('idempotency_keys').column('created').execute();

  // Fixed-window request counters shared by every replica (PostgreSQL only;
  // a single SQLite process counts in memory).
  await db.schema
    .createTable('rate_limits')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('window_start', 'bigint', (c) => c.notNull())
    .addColumn('count', 'integer', (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'rate_limits',
    'idempotency_keys',
    'events',
    'devices',
    'licenses',
    'customers',
    'policies',
    'products',
    'signing_keys',
    'api_keys',
    'accounts',
  ]) {
    await db.schema.dropTable(table).execute();
  }
}
