import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { errorResponses, page, list } from '../route-helpers.js';
import * as S from '../schemas.js';

const errors = errorResponses;
const secured = [{ secretKey: [] }];

/** Vendor webhooks (secret key): endpoints, their secrets, the delivery log and resends. */
export async function webhookRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { webhooks } = services;
  const tags = { tags: ['webhooks'], security: secured };

  app.post(
    '/v1/webhook_endpoints',
    { schema: { ...tags, summary: 'Create a webhook endpoint (its secret is shown only in this response)', body: S.CreateWebhookEndpoint, response: { 200: S.WebhookEndpointWithSecret, ...errors } } },
    (req) => webhooks.create(req.scope, req.body),
  );
  app.get('/v1/webhook_endpoints', { schema: { ...tags, summary: 'List webhook endpoints', querystring: S.PlainListQuery, response: { 200: S.List(S.WebhookEndpoint), ...errors } } }, async (req) =>
    list(await webhooks.list(req.scope, page(req.query))),
  );
  app.get('/v1/webhook_endpoints/:id', { schema: { ...tags, summary: 'Retrieve a webhook endpoint', params: S.IdParams, response: { 200: S.WebhookEndpoint, ...errors } } }, (req) =>
    webhooks.get(req.scope, req.params.id),
  );
  app.post(
    '/v1/webhook_endpoints/:id',
    { schema: { ...tags, summary: 'Update a webhook endpoint (url, events, description, metadata, disabled)', params: S.IdParams, body: S.UpdateWebhookEndpoint, response: { 200: S.WebhookEndpoint, ...errors } } },
    (req) => webhooks.update(req.scope, req.params.id, req.body),
  );
  app.delete('/v1/webhook_endpoints/:id', { schema: { ...tags, summary: 'Delete a webhook endpoint', params: S.IdParams, response: { 200: S.DeletedWebhookEndpoint, ...errors } } }, (req) =>
    webhooks.delete(req.scope, req.params.id),
  );
  app.post(
    '/v1/webhook_endpoints/:id/roll_secret',
    {
      schema: {
        ...tags,
        summary: 'Replace the signing secret (the new one is shown only in this response)',
        params: S.IdParams,
        body: Type.Optional(S.RollWebhookSecret),
        response: { 200: S.WebhookEndpointWithSecret, ...errors },
      },
    },
    (req) => webhooks.rollSecret(req.scope, req.params.id, req.body?.expires_in),
  );
  app.get(
    '/v1/webhook_endpoints/:id/deliveries',
    { schema: { ...tags, summary: 'Delivery attempts to an endpoint, newest first', params: S.IdParams, querystring: S.EndpointDeliveryListQuery, response: { 200: S.List(S.WebhookDelivery), ...errors } } },
    async (req) => list(await webhooks.listEndpointDeliveries(req.scope, req.params.id, { event: req.query.event }, page(req.query))),
  );
  app.get(
    '/v1/events/:id/deliveries',
    { schema: { ...tags, summary: "Delivery attempts of an event, newest first", params: S.IdParams, querystring: S.EventDeliveryListQuery, response: { 200: S.List(S.WebhookDelivery), ...errors } } },
    async (req) => list(await webhooks.listEventDeliveries(req.scope, req.params.id, { webhook_endpoint: req.query.webhook_endpoint }, page(req.query))),
  );
  app.post(
    '/v1/events/:id/resend',
    {
      schema: {
        ...tags,
        summary: 'Send an event again (one attempt per endpoint)',
        params: S.IdParams,
        body: Type.Optional(S.ResendEvent),
        response: { 200: S.EventResend, ...errors },
      },
    },
    (req) => webhooks.resend(req.scope, req.params.id, req.body?.webhook_endpoint),
  );
}
