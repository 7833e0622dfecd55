/**
 * Table types, identical on SQLite and PostgreSQL: timestamps are Unix seconds
 * (BIGINT), booleans are 0/1 integers and JSON is stored as text, so every
 * repository reads and writes the same values on both databases.
 */
export type Env = 'test' | 'live';
export type Bool = 0 | 1;

export interface AccountsTable {
  id: string;
  name: string;
  created: number;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  env: Env;
  name: string | null;
  key_hash: string;
  /** The first characters of the key, to tell keys apart in lists. */
  key_hint: string;
  created: number;
  revoked_at: number | null;
}

export interface SigningKeysTable {
  id: string;
  account_id: string;
  env: Env;
  algorithm: 'ed25519';
  public_key: string;
  private_key_sealed: string;
  status: 'active' | 'retired';
  created: number;
}

export interface ProductsTable {
  id: string;
  account_id: string;
  env: Env;
  name: string;
  code: string | null;
  perpetual_fallback: Bool;
  metadata: string;
  created: number;
  updated: number;
  /** JSON: the product's email settings (delivery/email-settings.ts); `{}` is every default. */
  email_settings: string;
}

export type LicenseType = 'perpetual' | 'timed' | 'subscription';

export interface PoliciesTable {
  id: string;
  account_id: string;
  env: Env;
  product_id: string;
  name: string;
  license_type: LicenseType;
  duration: string | null;
  fixed_expires_at: number | null;
  max_devices: number | null;
  floating: Bool;
  heartbeat_interval: number | null;
  entitlements: string;
  grace_period: string | null;
  maintenance_period: string | null;
  require_fingerprint: Bool;
  metadata: string;
  created: number;
  updated: number;
  on_payment_failure: 'keep_until_period_end' | 'suspend';
  on_partial_refund: 'ignore' | 'revoke';
  on_subscription_refund: 'revoke' | 'ignore';
  min_file_ttl: number;
  max_file_ttl: number;
}

export interface CustomersTable {
  id: string;
  account_id: string;
  env: Env;
  email: string;
  name: string | null;
  stripe_customer_id: string | null;
  metadata: string;
  created: number;
  updated: number;
}

export interface LicensesTable {
  id: string;
  account_id: string;
  env: Env;
  product_id: string;
  policy_id: string;
  customer_id: string | null;
  key_hash: string;
  key_kid: string;
  key_iat: number;
  expires_at: number | null;
  grace_ends_at: number | null;
  maintenance_ends_at: number | null;
  suspended_at: number | null;
  revoked_at: number | null;
  max_devices_override: number | null;
  entitlements_override: string | null;
  metadata: string;
  created: number;
  updated: number;
  /** The Stripe objects this license was fulfilled from; unique per environment. */
  fulfilment_key: string | null;
  stripe_customer: string | null;
  stripe_checkout_session: string | null;
  stripe_payment_intent: string | null;
  stripe_subscription: string | null;
  stripe_price: string | null;
  /** Why the license is suspended, so that only the matching event lifts it. */
  suspension_reason: SuspensionReason | null;
  cancel_at_period_end: Bool;
}

/** Bookkeeping written by validation, kept apart from the wide license row (migration 0007). */
export interface LicenseActivityTable {
  license_id: string;
  last_validated_at: number;
}

export type SuspensionReason = 'manual' | 'payment_failed' | 'dispute' | 'subscription_status';

export interface DevicesTable {
  id: string;
  account_id: string;
  env: Env;
  license_id: string;
  fingerprint: string;
  name: string | null;
  platform: string | null;
  metadata: string;
  lease_expires_at: number | null;
  last_seen_at: number;
  created: number;
}

export interface EventsTable {
  id: string;
  account_id: string;
  env: Env;
  type: string;
  object_type: string;
  object_id: string;
  data: string;
  created: number;
}

export interface IdempotencyKeysTable {
  account_id: string;
  env: Env;
  key: string;
  request_hash: string;
  /** null while the first request with this key is still running. */
  status_code: number | null;
  response_sealed: string | null;
  created: number;
}

export interface RateLimitsTable {
  key: string;
  /** Start of the counting window, in milliseconds. */
  window_start: number;
  count: number;
}

export type JobState = 'pending' | 'running' | 'succeeded' | 'dead';

export interface JobsTable {
  id: string;
  account_id: string | null;
  env: Env | null;
  type: string;
  payload: string;
  dedupe_key: string | null;
  state: JobState;
  attempts: number;
  max_attempts: number;
  /** Milliseconds: retries back off by less than a second in tests. */
  run_at_ms: number;
  locked_by: string | null;
  locked_until_ms: number | null;
  last_error: string | null;
  created: number;
  updated: number;
  completed_at: number | null;
}

export interface StripeConnectionsTable {
  id: string;
  account_id: string;
  env: Env;
  stripe_account: string | null;
  secret_key_sealed: string;
  key_hint: string;
  webhook_endpoint_id: string;
  webhook_secret_sealed: string;
  cli_webhook_secret_sealed: string | null;
  api_version: string;
  created: number;
  updated: number;
}

export interface PriceMappingsTable {
  id: string;
  account_id: string;
  env: Env;
  price: string;
  policy_id: string;
  quantity: 'licenses' | 'seats';
  max_devices: number | null;
  duration: string | null;
  entitlements: string | null;
  created: number;
}

export type StripeEventStatus = 'pending' | 'processed' | 'ignored' | 'failed';

export interface StripeEventsTable {
  id: string;
  account_id: string;
  env: Env;
  stripe_event_id: string;
  type: string;
  livemode: Bool;
  api_version: string | null;
  stripe_created: number;
  payload: string;
  status: StripeEventStatus;
  outcome: string | null;
  error: string | null;
  attempts: number;
  received: number;
  processed_at: number | null;
}

export interface StripePaymentsTable {
  account_id: string;
  env: Env;
  payment_intent: string;
  license_id: string;
}

export type EmailKind = 'license_delivery' | 'expiring_soon' | 'payment_failed' | 'magic_link';
export type EmailStatus = 'queued' | 'sent' | 'failed' | 'cancelled';

/** The email delivery log; the message itself is rendered when sent, never stored. */
export interface EmailsTable {
  id: string;
  account_id: string;
  env: Env;
  kind: EmailKind;
  recipient: string;
  subject: string;
  product_id: string | null;
  /** JSON array of license ids. */
  license_ids: string;
  /** JSON: what else rendering needs (e.g. a sealed magic-link URL). */
  data: string;
  message_id: string;
  status: EmailStatus;
  transport: 'smtp' | 'mailbox' | null;
  attempts: number;
  last_error: string | null;
  created: number;
  updated: number;
  sent_at: number | null;
}

/** What the scheduler has announced, once per license, kind and expiry. */
export interface LicenseNoticesTable {
  license_id: string;
  kind: 'expiring_soon' | 'expired';
  expires_at: number;
  created: number;
}

/** A vendor's webhook endpoint (delivery/webhooks.ts). */
export interface WebhookEndpointsTable {
  id: string;
  account_id: string;
  env: Env;
  url: string;
  description: string | null;
  /** JSON array of event types, or `["*"]`. */
  enabled_events: string;
  status: 'enabled' | 'disabled';
  disabled_reason: 'manual' | 'failing' | null;
  /** Sealed (SecretBox): HMAC signing needs the plaintext. */
  secret_sealed: string;
  /** The secret before the last roll, valid until `previous_secret_expires_at`. */
  previous_secret_sealed: string | null;
  previous_secret_expires_at: number | null;
  /** The current run of failed attempts; reset by any 2xx. */
  consecutive_failures: number;
  failing_since: number | null;
  metadata: string;
  created: number;
  updated: number;
}

/** One row per delivery attempt: the webhook delivery log. */
export interface WebhookDeliveriesTable {
  id: string;
  account_id: string;
  env: Env;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  job_id: string | null;
  url: string;
  attempt: number;
  manual: Bool;
  status_code: number | null;
  succeeded: Bool;
  duration_ms: number;
  error: string | null;
  /** The first bytes of the receiver's answer. */
  response_body: string | null;
  created: number;
}

export interface Database {
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  signing_keys: SigningKeysTable;
  products: ProductsTable;
  policies: PoliciesTable;
  customers: CustomersTable;
  licenses: LicensesTable;
  license_activity: LicenseActivityTable;
  devices: DevicesTable;
  events: EventsTable;
  idempotency_keys: IdempotencyKeysTable;
  rate_limits: RateLimitsTable;
  jobs: JobsTable;
  emails: EmailsTable;
  license_notices: LicenseNoticesTable;
  stripe_connections: StripeConnectionsTable;
  price_mappings: PriceMappingsTable;
  stripe_events: StripeEventsTable;
  stripe_payments: StripePaymentsTable;
  webhook_endpoints: WebhookEndpointsTable;
  webhook_deliveries: WebhookDeliveriesTable;
}

/** What every environment-scoped query is filtered by. */
export interface Scope {
  accountId: string;
  env: Env;
}
