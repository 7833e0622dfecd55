import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../licensing/duration.js';
import { MAX_SECRET_GRACE_SECONDS, WEBHOOK_EVENT_TYPES } from '../delivery/webhooks.js';

/**
 * Every shape that crosses the HTTP boundary. Request schemas bound every
 * size and reject unknown fields; response schemas are the allow-list of what
 * leaves the server (fast-json-stringify drops anything else). The OpenAPI
 * document is generated from these.
 */

const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

export const Timestamp = Type.Integer({ minimum: 0, maximum: 253402300799, description: 'Unix seconds' });
export const Duration = Type.String({ pattern: DURATION_PATTERN, description: 'N followed by d, w, m or y, e.g. `30d`, `1y`' });
export const Code = Type.String({ pattern: '^[a-z0-9][a-z0-9._-]{0,63}$', description: 'lowercase letters, digits, `.`, `_`, `-`; at most 64' });
export const Name = Type.String({ minLength: 1, maxLength: 200 });
export const Email = Type.String({ format: 'email', maxLength: 254 });
export const Fingerprint = Type.String({ minLength: 1, maxLength: 255 });
export const LicenseKey = Type.String({ minLength: 1, maxLength: 1024, description: 'a license key, `KM1.…`' });
// TypeBox drops a Record's key schema into `patternProperties`, so the key bound is `propertyNames`.
export const Metadata = Type.Record(Type.String(), Type.String({ maxLength: 500 }), {
  maxProperties: 50,
  propertyNames: { minLength: 1, maxLength: 40 },
  description: 'up to 50 string keys (≤ 40 characters) with string values (≤ 500 characters)',
});
const Entitlements = Type.Array(Code, { maxItems: 100 });
const Id = (description: string) => Type.String({ minLength: 1, maxLength: 64, description });

export const IdParams = Type.Object({ id: Id('object id') }, { additionalProperties: false });

export const ListQuery = {
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 10 })),
  starting_after: Type.Optional(Id('cursor: an object id from the previous page')),
  ending_before: Type.Optional(Id('cursor: an object id from the next page')),
};

export const List = <T extends TSchema>(item: T) =>
  Type.Object({ object: Type.Literal('list'), data: Type.Array(item), has_more: Type.Boolean() });

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      type: Type.Union(
        ['invalid_request_error', 'authentication_error', 'permission_error', 'not_found_error', 'conflict_error', 'rate_limit_error', 'api_error'].map((t) =>
          Type.Literal(t),
        ),
      ),
      code: Nullable(Type.String()),
      message: Type.String(),
      param: Nullable(Type.String()),
      request_id: Type.String(),
    }),
  },
  { $id: 'Error' },
);

// ── objects ──────────────────────────────────────────────────────────────

const OneLine = (maxLength: number, description: string) => Type.String({ minLength: 1, maxLength, pattern: '^[^\\r\\n]*$', description });
const WebUrl = (description: string) => Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2000, description });

/** Every setting, defaults filled in (delivery/email-settings.ts). */
export const ProductEmailSettings = Type.Object({
  subject: Nullable(Type.String({ description: 'subject of the license delivery email; null: "Your license key for <product>"' })),
  thank_you: Nullable(Type.String({ description: 'opening paragraph of the delivery email; null: a plain thank-you' })),
  purchase_notes: Nullable(Type.String({ description: 'plain text shown under the keys' })),
  button_label: Nullable(Type.String({ description: 'label of the button to `button_url`; null: "Download"' })),
  button_url: Nullable(Type.String({ description: 'e.g. the download page; null: no button' })),
  send_payment_failed: Type.Boolean({ description: 'email the customer when a payment fails' }),
  expiring_soon_days: Type.Integer({ description: 'days before expiry of `license.expiring_soon` and the reminder; 0 = off' }),
});

export const Product = Type.Object({
  id: Type.String(),
  object: Type.Literal('product'),
  name: Type.String(),
  code: Nullable(Type.String()),
  perpetual_fallback: Type.Boolean(),
  email: ProductEmailSettings,
  metadata: Metadata,
  livemode: Type.Boolean(),
  created: Timestamp,
  updated: Timestamp,
});

const OnPaymentFailure = Type.Union([Type.Literal('keep_until_period_end'), Type.Literal('suspend')], {
  description: 'what a failed subscription payment does: keep access until the paid period (+ grace) ends, or suspend at once',
});
const OnPartialRefund = Type.Union([Type.Literal('ignore'), Type.Literal('revoke')], { description: 'what a partial refund does' });
const OnSubscriptionRefund = Type.Union([Type.Literal('revoke'), Type.Literal('ignore')], {
  description: "whether a full refund of a subscription payment revokes the subscription's license",
});

const LicenseType = Type.Union([Type.Literal('perpetual'), Type.Literal('timed'), Type.Literal('subscription')]);

export const Policy = Type.Object({
  id: Type.String(),
  object: Type.Literal('policy'),
  product: Type.String(),
  name: Type.String(),
  license_type: LicenseType,
  duration: Nullable(Type.String()),
  expires_at: Nullable(Timestamp),
  max_devices: Nullable(Type.Integer()),
  floating: Type.Boolean(),
  heartbeat_interval: Nullable(Type.Integer()),
  entitlements: Type.Array(Type.String()),
  grace_period: Nullable(Type.String()),
  maintenance_period: Nullable(Type.String()),
  require_fingerprint: Type.Boolean(),
  on_payment_failure: OnPaymentFailure,
  on_partial_refund: OnPartialRefund,
  on_subscription_refund: OnSubscriptionRefund,
  min_file_ttl: Type.Integer(),
  max_file_ttl: Type.Integer(),
  metadata: Metadata,
  livemode: Type.Boolean(),
  created: Timestamp,
  updated: Timestamp,
});

export const Customer = Type.Object({
  id: Type.String(),
  object: Type.Literal('customer'),
  email: Type.String(),
  name: Nullable(Type.String()),
  stripe_customer: Nullable(Type.String()),
  metadata: Metadata,
  livemode: Type.Boolean(),
  created: Timestamp,
  updated: Timestamp,
});

const LicenseStatus = Type.Union([Type.Literal('active'), Type.Literal('expired'), Type.Literal('fallback'), Type.Literal('suspended'), Type.Literal('revoked')]);

const publicLicenseFields = {
  id: Type.String(),
  object: Type.Literal('license'),
  status: LicenseStatus,
  product: Type.String(),
  policy: Type.String(),
  expires_at: Nullable(Timestamp),
  grace_ends_at: Nullable(Timestamp),
  maintenance_ends_at: Nullable(Timestamp),
  max_devices: Nullable(Type.Integer()),
  active_devices: Type.Integer(),
  floating: Type.Boolean(),
  entitlements: Type.Array(Type.String()),
  metadata: Metadata,
  created: Timestamp,
};

export const PublicLicense = Type.Object(publicLicenseFields);

export const License = Type.Object({
  ...publicLicenseFields,
  key: Type.String(),
  customer: Nullable(Type.String()),
  suspended_at: Nullable(Timestamp),
  suspension_reason: Nullable(Type.String({ description: 'manual, payment_failed, dispute or subscription_status' })),
  revoked_at: Nullable(Timestamp),
  stripe: Type.Object(
    {
      customer: Nullable(Type.String()),
      checkout_session: Nullable(Type.String()),
      payment_intent: Nullable(Type.String()),
      subscription: Nullable(Type.String()),
      price: Nullable(Type.String()),
      cancel_at_period_end: Type.Boolean(),
    },
    { description: 'the Stripe objects this license was bought with' },
  ),
  last_validated_at: Type.Union([Timestamp, Type.Null()], {
    description: 'when the key was last validated (Unix seconds), recorded within a few seconds and at most once a minute; null if never',
  }),
  livemode: Type.Boolean(),
  updated: Timestamp,
});

export const Device = Type.Object({
  id: Type.String(),
  object: Type.Literal('device'),
  license: Type.String(),
  fingerprint: Type.String(),
  name: Nullable(Type.String()),
  platform: Nullable(Type.String()),
  metadata: Metadata,
  lease_expires_at: Nullable(Timestamp),
  last_seen_at: Timestamp,
  created: Timestamp,
});

export const DeletedDevice = Type.Object({ id: Type.String(), object: Type.Literal('device'), deleted: Type.Literal(true) });

export const SigningKey = Type.Object({
  id: Type.String(),
  object: Type.Literal('signing_key'),
  algorithm: Type.Literal('ed25519'),
  public_key: Type.String(),
  public_key_pem: Type.String(),
  status: Type.Union([Type.Literal('active'), Type.Literal('retired')]),
  created: Timestamp,
});

export const Event = Type.Object({
  id: Type.String(),
  object: Type.Literal('event'),
  type: Type.String(),
  created: Timestamp,
  livemode: Type.Boolean(),
  data: Type.Object({ object: Type.Record(Type.String(), Type.Unknown()) }),
});

// ── requests ─────────────────────────────────────────────────────────────

const strict = { additionalProperties: false } as const;

export const CreateProduct = Type.Object(
  {
    name: Name,
    code: Type.Optional(Nullable(Code)),
    perpetual_fallback: Type.Optional(Type.Boolean()),
    metadata: Type.Optional(Metadata),
    email: Type.Optional(
      Type.Object(
        {
          subject: Type.Optional(Nullable(OneLine(200, 'subject of the license delivery email'))),
          thank_you: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 2000 }))),
          purchase_notes: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 5000 }))),
          button_label: Type.Optional(Nullable(OneLine(60, 'label of the button'))),
          button_url: Type.Optional(Nullable(WebUrl('where the button leads, http(s) only'))),
          send_payment_failed: Type.Optional(Type.Boolean()),
          expiring_soon_days: Type.Optional(Type.Integer({ minimum: 0, maximum: 365 })),
        },
        { ...strict, description: 'email settings; only those given change, null resets one to its default' },
      ),
    ),
  },
  strict,
);
export const UpdateProduct = Type.Partial(CreateProduct, strict);

const policyFields = {
  name: Name,
  duration: Type.Optional(Nullable(Duration)),
  expires_at: Type.Optional(Nullable(Timestamp)),
  max_devices: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100_000 }))),
  floating: Type.Optional(Type.Boolean()),
  heartbeat_interval: Type.Optional(Nullable(Type.Integer({ minimum: 30, maximum: 30 * 86_400, description: 'seconds' }))),
  entitlements: Type.Optional(Entitlements),
  grace_period: Type.Optional(Nullable(Duration)),
  maintenance_period: Type.Optional(Nullable(Duration)),
  require_fingerprint: Type.Optional(Type.Boolean()),
  on_payment_failure: Type.Optional(OnPaymentFailure),
  on_partial_refund: Type.Optional(OnPartialRefund),
  on_subscription_refund: Type.Optional(OnSubscriptionRefund),
  min_file_ttl: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86_400, description: 'shortest license file lifetime a checkout may ask for, seconds' })),
  max_file_ttl: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86_400, description: 'longest license file lifetime, seconds (default 90 days)' })),
  metadata: Type.Optional(Metadata),
};
export const CreatePolicy = Type.Object({ product: Id('product id or code'), license_type: LicenseType, ...policyFields }, strict);
export const UpdatePolicy = Type.Partial(Type.Object(policyFields), strict);

export const CreateCustomer = Type.Object({ email: Email, name: Type.Optional(Nullable(Name)), metadata: Type.Optional(Metadata) }, strict);
export const UpdateCustomer = Type.Partial(CreateCustomer, strict);

const licenseOverrides = {
  expires_at: Type.Optional(Nullable(Timestamp)),
  max_devices: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100_000 }))),
  entitlements: Type.Optional(Nullable(Entitlements)),
  metadata: Type.Optional(Metadata),
};
export const CreateLicense = Type.Object(
  {
    policy: Id('policy id'),
    customer: Type.Optional(Nullable(Type.Union([Id('customer id'), CreateCustomer]))),
    ...licenseOverrides,
    send_email: Type.Optional(Type.Boolean({ description: "email the key to the license's customer (who must have an email)" })),
  },
  strict,
);
export const UpdateLicense = Type.Object(licenseOverrides, strict);
export const RenewLicense = Type.Object({ duration: Type.Optional(Duration) }, strict);

export const LicenseListQuery = Type.Object(
  {
    ...ListQuery,
    customer: Type.Optional(Id('customer id')),
    email: Type.Optional(Type.String({ maxLength: 254 })),
    product: Type.Optional(Id('product id or code')),
    status: Type.Optional(LicenseStatus),
  },
  strict,
);
export const PolicyListQuery = Type.Object({ ...ListQuery, product: Type.Optional(Id('product id or code')) }, strict);
export const CustomerListQuery = Type.Object({ ...ListQuery, email: Type.Optional(Type.String({ maxLength: 254 })) }, strict);
export const EventListQuery = Type.Object(
  {
    ...ListQuery,
    type: Type.Optional(Type.String({ maxLength: 100, description: 'an event type, or `license.*` for a family' })),
    object: Type.Optional(Id('only events about this object id')),
  },
  strict,
);
export const PlainListQuery = Type.Object(ListQuery, strict);

// ── public license API ───────────────────────────────────────────────────

export const ValidateRequest = Type.Object(
  {
    key: LicenseKey,
    fingerprint: Type.Optional(Fingerprint),
    product: Type.Optional(Id('product id or code')),
    entitlements: Type.Optional(Entitlements),
    nonce: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
  },
  strict,
);
export const ValidationCodes = [
  'NOT_FOUND',
  'REVOKED',
  'SUSPENDED',
  'PRODUCT_MISMATCH',
  'EXPIRED',
  'FALLBACK',
  'FINGERPRINT_REQUIRED',
  'DEVICE_NOT_ACTIVATED',
  'HEARTBEAT_DEAD',
  'ENTITLEMENTS_MISSING',
  'VALID',
] as const;
export const ValidateResponse = Type.Object({
  object: Type.Literal('license_validation'),
  valid: Type.Boolean(),
  code: Type.Union(ValidationCodes.map((c) => Type.Literal(c))),
  message: Type.String(),
  license: Nullable(PublicLicense),
  device: Nullable(Device),
  nonce: Type.Optional(Type.String()),
  ts: Timestamp,
});
export const ActivateRequest = Type.Object(
  {
    key: LicenseKey,
    fingerprint: Fingerprint,
    name: Type.Optional(Nullable(Name)),
    platform: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 100 }))),
    metadata: Type.Optional(Metadata),
  },
  strict,
);
export const DeviceRequest = Type.Object({ key: LicenseKey, fingerprint: Fingerprint }, strict);

export type CreateLicenseBody = Static<typeof CreateLicense>;

export const JobState = Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('dead')]);
export const Job = Type.Object({
  id: Type.String(),
  object: Type.Literal('job'),
  type: Type.String(),
  state: JobState,
  attempts: Type.Integer(),
  max_attempts: Type.Integer(),
  next_run_at: Nullable(Timestamp),
  last_error: Nullable(Type.String()),
  livemode: Type.Boolean(),
  created: Timestamp,
  updated: Timestamp,
  completed_at: Nullable(Timestamp),
});
export const JobListQuery = Type.Object({ ...ListQuery, state: Type.Optional(JobState), type: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false });

// ── emails ───────────────────────────────────────────────────────────────

export const EmailKind = Type.Union([Type.Literal('license_delivery'), Type.Literal('expiring_soon'), Type.Literal('payment_failed'), Type.Literal('magic_link')]);
export const EmailStatus = Type.Union([Type.Literal('queued'), Type.Literal('sent'), Type.Literal('failed'), Type.Literal('cancelled')]);
export const EmailMessage = Type.Object({
  id: Type.String(),
  object: Type.Literal('email'),
  kind: EmailKind,
  to: Type.String(),
  subject: Type.String(),
  product: Nullable(Type.String()),
  licenses: Type.Array(Type.String()),
  status: EmailStatus,
  message_id: Type.String({ description: 'the Message-ID header, the same on every attempt' }),
  transport: Nullable(Type.Union([Type.Literal('smtp'), Type.Literal('mailbox')])),
  attempts: Type.Integer(),
  last_error: Nullable(Type.String()),
  livemode: Type.Boolean(),
  created: Timestamp,
  updated: Timestamp,
  sent_at: Nullable(Timestamp),
});
export const EmailListQuery = Type.Object(
  {
    ...ListQuery,
    license: Type.Optional(Id('only emails about this license')),
    to: Type.Optional(Type.String({ maxLength: 254 })),
    kind: Type.Optional(EmailKind),
    status: Type.Optional(EmailStatus),
  },
  strict,
);
export const EmailPreviewQuery = Type.Object({ template: Type.Optional(EmailKind) }, strict);
export const EmailPreview = Type.Object({
  object: Type.Literal('email_preview'),
  template: EmailKind,
  from: Type.String(),
  to: Type.String(),
  subject: Type.String(),
  html: Type.String(),
  text: Type.String(),
});

// ── vendor webhooks ──────────────────────────────────────────────────────

const WebhookEventName = Type.Unsafe<string>({
  type: 'string',
  enum: [...WEBHOOK_EVENT_TYPES, '*'],
  description: 'an event type, or `*` (alone) for every one',
});
const WebhookUrl = Type.String({ minLength: 8, maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?://', description: 'an absolute http(s) URL' });
const webhookEndpointFields = {
  id: Type.String(),
  object: Type.Literal('webhook_endpoint'),
  url: Type.String(),
  description: Nullable(Type.String()),
  enabled_events: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('enabled'), Type.Literal('disabled')]),
  disabled_reason: Nullable(Type.Union([Type.Literal('manual'), Type.Literal('failing')], { description: '`failing`: disabled automatically after days of failed deliveries' })),
  failing_since: Nullable(Type.Integer({ description: 'start of the current run of failed deliveries; null when the last one succeeded' })),
  metadata: Metadata,
  livemode: Type.Boolean(),
  created: Timestamp,
  updated: Timestamp,
};
export const WebhookEndpoint = Type.Object(webhookEndpointFields);
export const WebhookEndpointWithSecret = Type.Object({
  ...webhookEndpointFields,
  secret: Type.String({ description: 'the signing secret, shown only when created or rolled' }),
});
export const DeletedWebhookEndpoint = Type.Object({ id: Type.String(), object: Type.Literal('webhook_endpoint'), deleted: Type.Literal(true) });
const webhookEndpointInput = {
  url: WebhookUrl,
  enabled_events: Type.Array(WebhookEventName, { minItems: 1, maxItems: 20, uniqueItems: true }),
  description: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 500 }))),
  metadata: Type.Optional(Metadata),
};
export const CreateWebhookEndpoint = Type.Object(webhookEndpointInput, strict);
export const UpdateWebhookEndpoint = Type.Object(
  { ...Type.Partial(Type.Object(webhookEndpointInput)).properties, disabled: Type.Optional(Type.Boolean({ description: 'true stops deliveries; false re-enables' })) },
  strict,
);
export const RollWebhookSecret = Type.Object(
  {
    expires_in: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_SECRET_GRACE_SECONDS, description: 'seconds the current secret stays valid next to the new one (deliveries carry both signatures); default 0: at once' }),
    ),
  },
  strict,
);
export const WebhookDelivery = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_delivery'),
  webhook_endpoint: Type.String(),
  event: Type.String(),
  event_type: Type.String(),
  url: Type.String(),
  attempt: Type.Integer({ description: 'the attempt number within its delivery job (a manual resend starts at 1)' }),
  manual: Type.Boolean({ description: 'sent by `POST /v1/events/:id/resend`' }),
  status_code: Nullable(Type.Integer({ description: "the receiver's HTTP status; null when there was none (refused, timed out)" })),
  succeeded: Type.Boolean(),
  duration_ms: Type.Integer(),
  error: Nullable(Type.String()),
  response_body: Nullable(Type.String({ description: "the first 1,024 bytes of the receiver's answer" })),
  livemode: Type.Boolean(),
  created: Timestamp,
});
export const EndpointDeliveryListQuery = Type.Object({ ...ListQuery, event: Type.Optional(Id('only deliveries of this event')) }, strict);
export const EventDeliveryListQuery = Type.Object({ ...ListQuery, webhook_endpoint: Type.Optional(Id('only deliveries to this endpoint')) }, strict);
export const ResendEvent = Type.Object({ webhook_endpoint: Type.Optional(Id('only this endpoint; default: every enabled endpoint receiving the event type')) }, strict);
export const EventResend = Type.Object({
  object: Type.Literal('event_resend'),
  event: Type.String(),
  webhook_endpoints: Type.Array(Type.String(), { description: 'the endpoints a delivery was queued for' }),
});
