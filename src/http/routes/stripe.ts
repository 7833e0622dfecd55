import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { errorResponses, page } from '../route-helpers.js';
import * as S from '../schemas.js';

const errors = errorResponses;
const tags = ['stripe'];
const security = [{ secretKey: [] }];
const strict = { additionalProperties: false } as const;
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const Connection = Type.Object({
  object: Type.Literal('stripe_connection'),
  id: Nullable(Type.String()),
  status: Type.Union([Type.Literal('connected'), Type.Literal('disconnected')]),
  livemode: Type.Boolean(),
  stripe_account: Nullable(Type.String()),
  webhook_endpoint: Nullable(Type.String()),
  api_version: Nullable(Type.String()),
  enabled_events: Type.Array(Type.String()),
  secret_key_hint: Nullable(Type.String()),
  stripe_cli_forwarding: Type.Boolean({ description: 'whether events forwarded by `stripe listen` are accepted (test mode)' }),
  created: Nullable(S.Timestamp),
  updated: Nullable(S.Timestamp),
  deleted: Type.Optional(Type.Boolean()),
});

const PriceId = Type.String({ pattern: '^price_[A-Za-z0-9_]{1,200}$', description: 'a Stripe price id' });
const PriceMapping = Type.Object({
  id: Type.String(),
  object: Type.Literal('price_mapping'),
  price: Type.String(),
  policy: Type.String(),
  quantity: Type.Union([Type.Literal('licenses'), Type.Literal('seats')]),
  max_devices: Nullable(Type.Integer()),
  duration: Nullable(Type.String()),
  entitlements: Nullable(Type.Array(Type.String())),
  livemode: Type.Boolean(),
  created: S.Timestamp,
});
const CreatePriceMapping = Type.Object(
  {
    price: PriceId,
    policy: Type.String({ minLength: 1, maxLength: 64 }),
    quantity: Type.Optional(Type.Union([Type.Literal('licenses'), Type.Literal('seats')], { description: 'N licenses, or one license with N seats' })),
    max_devices: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 100_000 }))),
    duration: Type.Optional(Nullable(S.Duration)),
    entitlements: Type.Optional(Nullable(Type.Array(S.Code, { maxItems: 100 }))),
  },
  strict,
);

const Outcome = Type.Object({
  action: Type.Union([Type.Literal('created'), Type.Literal('changed'), Type.Literal('unchanged'), Type.Literal('ignored')]),
  reason: Nullable(Type.String()),
  licenses: Type.Array(Type.String()),
  ignored_items: Type.Optional(Type.Array(Type.Object({ price: Type.String(), reason: Type.String() }))),
});
const StripeEvent = Type.Object({
  id: Type.String(),
  object: Type.Literal('stripe_event'),
  type: Type.String(),
  livemode: Type.Boolean(),
  created: S.Timestamp,
  received: S.Timestamp,
  status: Type.Union([Type.Literal('pending'), Type.Literal('processed'), Type.Literal('ignored'), Type.Literal('failed')]),
  outcome: Nullable(Outcome),
  error: Nullable(Type.String()),
  attempts: Type.Integer(),
  processed_at: Nullable(S.Timestamp),
});
const StripeEventListQuery = Type.Object(
  {
    ...S.ListQuery,
    status: Type.Optional(Type.Union([Type.Literal('pending'), Type.Literal('processed'), Type.Literal('ignored'), Type.Literal('failed')])),
    type: Type.Optional(Type.String({ maxLength: 100 })),
  },
  strict,
);

/** The admin side of Stripe: the connection, price mappings and the event inbox. */
export async function stripeAdminRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { stripeConnections, priceMappings, stripeInbox } = services;

  app.put(
    '/v1/stripe/connection',
    {
      schema: {
        tags,
        security,
        summary: 'Connect Stripe: checks the key, registers the webhook endpoint, stores both secrets encrypted',
        body: Type.Object(
          {
            secret_key: Type.String({ minLength: 1, maxLength: 300, description: 'a restricted key rk_… (recommended) or secret key sk_…' }),
            cli_webhook_secret: Type.Optional(
              Nullable(Type.String({ maxLength: 300, description: 'test mode: the whsec_… secret `stripe listen --print-secret` shows, to accept events it forwards' })),
            ),
          },
          strict,
        ),
        response: { 200: Connection, ...errors },
      },
    },
    (req) => stripeConnections.connect(req.scope, req.body.secret_key, req.body.cli_webhook_secret),
  );
  app.get('/v1/stripe/connection', { schema: { tags, security, summary: 'The Stripe connection, without secrets', response: { 200: Connection, ...errors } } }, (req) =>
    stripeConnections.get(req.scope),
  );
  app.delete(
    '/v1/stripe/connection',
    { schema: { tags, security, summary: 'Disconnect: removes the webhook endpoint from Stripe and forgets the credentials', response: { 200: Connection, ...errors } } },
    (req) => stripeConnections.disconnect(req.scope),
  );

  app.post('/v1/stripe/price_mappings', { schema: { tags, security, summary: 'Map a Stripe price to a policy', body: CreatePriceMapping, response: { 200: PriceMapping, ...errors } } }, (req) =>
    priceMappings.create(req.scope, req.body),
  );
  app.get('/v1/stripe/price_mappings', { schema: { tags, security, summary: 'List price mappings', querystring: S.PlainListQuery, response: { 200: S.List(PriceMapping), ...errors } } }, async (req) => ({
    object: 'list' as const,
    ...(await priceMappings.list(req.scope, page(req.query))),
  }));
  app.get('/v1/stripe/price_mappings/:id', { schema: { tags, security, summary: 'Retrieve a price mapping', params: S.IdParams, response: { 200: PriceMapping, ...errors } } }, (req) =>
    priceMappings.get(req.scope, req.params.id),
  );
  app.delete(
    '/v1/stripe/price_mappings/:id',
    {
      schema: {
        tags,
        security,
        summary: 'Delete a price mapping',
        params: S.IdParams,
        response: { 200: Type.Object({ id: Type.String(), object: Type.Literal('price_mapping'), deleted: Type.Literal(true) }), ...errors },
      },
    },
    (req) => priceMappings.delete(req.scope, req.params.id),
  );

  app.get(
    '/v1/stripe/events',
    { schema: { tags, security, summary: 'Every Stripe event received, with its outcome', querystring: StripeEventListQuery, response: { 200: S.List(StripeEvent), ...errors } } },
    async (req) => ({ object: 'list' as const, ...(await stripeInbox.list(req.scope, { status: req.query.status, type: req.query.type }, page(req.query))) }),
  );
  app.get('/v1/stripe/events/:id', { schema: { tags, security, summary: 'Retrieve a Stripe event by its evt_ id', params: S.IdParams, response: { 200: StripeEvent, ...errors } } }, (req) =>
    stripeInbox.get(req.scope, req.params.id),
  );
  app.post(
    '/v1/stripe/events/:id/retry',
    { schema: { tags, security, summary: "Process a Stripe event again (handlers are idempotent)", params: S.IdParams, response: { 200: StripeEvent, ...errors } } },
    (req) => stripeInbox.retry(req.scope, req.params.id),
  );
}

/**
 * Where Stripe delivers events. The signature covers the exact bytes, so the
 * body is kept raw (up to 1 MiB) and parsed only after verification.
 */
export async function stripeWebhookRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => done(null, body));
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.post(
    '/stripe/webhooks/:id',
    {
      bodyLimit: 1024 * 1024,
      schema: {
        tags,
        summary: 'Stripe webhook receiver (Stripe calls this; verified by Stripe-Signature)',
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 64 }) }, strict),
        response: { 200: Type.Object({ received: Type.Literal(true), duplicate: Type.Boolean() }), ...errors },
      },
    },
    (req) => {
      const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const signature = req.headers['stripe-signature'];
      return services.stripeInbox.receive(req.params.id, raw, Array.isArray(signature) ? signature.join(',') : signature);
    },
  );
}
