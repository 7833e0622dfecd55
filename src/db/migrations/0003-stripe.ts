import type { Kysely } from 'kysely';

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations describe the schema as it was then */

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('stripe_connections')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('stripe_account', 'text')
    .addColumn('secret_key_sealed', 'text', (c) => c.notNull())
    .addColumn('key_hint', 'text', (c) => c.notNull())
    .addColumn('webhook_endpoint_id', 'text', (c) => c.notNull())
    .addColumn('webhook_secret_sealed', 'text', (c) => c.notNull())
    // Test mode only: the secret `stripe listen` signs forwarded events with.
    .addColumn('cli_webhook_secret_sealed', 'text')
    .addColumn('api_version', 'text', (c) => c.notNull())
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addColumn('updated', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('stripe_connections_scope', ['account_id', 'env'])
    .execute();

  await db.schema
    .createTable('price_mappings')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('price', 'text', (c) => c.notNull())
    .addColumn('policy_id', 'text', (c) => c.notNull().references('policies.id'))
    .addColumn('quantity', 'text', (c) => c.notNull())
    .addColumn('max_devices', 'integer')
    .addColumn('duration', 'text')
    .addColumn('entitlements', 'text')
    .addColumn('created', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('price_mappings_price', ['account_id', 'env', 'price'])
    .execute();

  // The inbox: every verified Stripe event, once.
  await db.schema
    .createTable('stripe_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('stripe_event_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('livemode', 'integer', (c) => c.notNull())
    .addColumn('api_version', 'text')
    .addColumn('stripe_created', 'bigint', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text')
    .addColumn('error', 'text')
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('received', 'bigint', (c) => c.notNull())
    .addColumn('processed_at', 'bigint')
    .addUniqueConstraint('stripe_events_unique', ['account_id', 'env', 'stripe_event_id'])
    .execute();
  await db.schema.createIndex('stripe_events_scope').on('stripe_events').columns(['account_id', 'env', 'id']).execute();

  // Which Stripe payment paid for which license: refunds and disputes arrive with a charge / payment intent.
  await db.schema
    .createTable('stripe_payments')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('env', 'text', (c) => c.notNull())
    .addColumn('payment_intent', 'text', (c) => c.notNull())
    .addColumn('license_id', 'text', (c) => c.notNull().references('licenses.id'))
    .addPrimaryKeyConstraint('stripe_payments_pk', ['account_id', 'env', 'payment_intent', 'license_id'])
    .execute();

  await db.schema.alterTable('licenses').addColumn('fulfilment_key', 'text').execute();
  // One purchase is one set of licenses, whatever happens: retries, duplicates, replicas.
  await db.schema.createIndex('licenses_fulfilment_key').on('licenses').columns(['account_id', 'env', 'fulfilment_key']).unique().execute();
  for (const column of ['stripe_customer', 'stripe_checkout_session', 'stripe_payment_intent', 'stripe_subscription', 'stripe_price', 'suspension_reason']) {
    await db.schema.alterTable('licenses').addColumn(column, 'text').execute();
  }
  await db.schema.alterTable('licenses').addColumn('cancel_at_period_end', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.createIndex('licenses_subscription').on('licenses').columns(['stripe_subscription']).execute();

  // What a policy does when Stripe reports trouble.
  await db.schema.alterTable('policies').addColumn('on_payment_failure', 'text', (c) => c.notNull().defaultTo('keep_until_period_end')).execute();
  await db.schema.alterTable('policies').addColumn('on_partial_refund', 'text', (c) => c.notNull().defaultTo('ignore')).execute();
  await db.schema.alterTable('policies').addColumn('on_subscription_refund', 'text', (c) => c.notNull().defaultTo('revoke')).execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const column of ['on_payment_failure', 'on_partial_refund', 'on_subscription_refund']) await db.schema.alterTable('policies').dropColumn(column).execute();
  await db.schema.dropIndex('licenses_subscription').execute();
  await db.schema.dropIndex('licenses_fulfilment_key').execute();
  for (const column of ['fulfilment_key', 'stripe_customer', 'stripe_checkout_session', 'stripe_payment_intent', 'stripe_subscription', 'stripe_price', 'suspension_reason', 'cancel_at_period_end']) {
    await db.schema.alterTable('licenses').dropColumn(column).execute();
  }
  for (const table of ['stripe_payments', 'stripe_events', 'price_mappings', 'stripe_connections']) await db.schema.dropTable(table).execute();
}
