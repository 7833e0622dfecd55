import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { errorResponses, page, list } from '../route-helpers.js';
import * as S from '../schemas.js';

const errors = errorResponses;
const secured = [{ secretKey: [] }];

/**
 * The admin API (secret key). Routes translate HTTP only: validated input in,
 * the service's object out through the response schema.
 */
export async function adminRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { catalog, customers, licenses, signingKeys, events, jobs, emails } = services;

  // ── products ──
  const productTags = { tags: ['products'], security: secured };
  app.post('/v1/products', { schema: { ...productTags, summary: 'Create a product', body: S.CreateProduct, response: { 200: S.Product, ...errors } } }, (req) =>
    catalog.createProduct(req.scope, req.body),
  );
  app.get('/v1/products', { schema: { ...productTags, summary: 'List products', querystring: S.PlainListQuery, response: { 200: S.List(S.Product), ...errors } } }, async (req) =>
    list(await catalog.listProducts(req.scope, page(req.query))),
  );
  app.get('/v1/products/:id', { schema: { ...productTags, summary: 'Retrieve a product by id or code', params: S.IdParams, response: { 200: S.Product, ...errors } } }, (req) =>
    catalog.getProduct(req.scope, req.params.id),
  );
  app.post('/v1/products/:id', { schema: { ...productTags, summary: 'Update a product', params: S.IdParams, body: S.UpdateProduct, response: { 200: S.Product, ...errors } } }, (req) =>
    catalog.updateProduct(req.scope, req.params.id, req.body),
  );

  // ── policies ──
  const policyTags = { tags: ['policies'], security: secured };
  app.post('/v1/policies', { schema: { ...policyTags, summary: 'Create a policy', body: S.CreatePolicy, response: { 200: S.Policy, ...errors } } }, (req) =>
    catalog.createPolicy(req.scope, req.body),
  );
  app.get('/v1/policies', { schema: { ...policyTags, summary: 'List policies', querystring: S.PolicyListQuery, response: { 200: S.List(S.Policy), ...errors } } }, async (req) =>
    list(await catalog.listPolicies(req.scope, { product: req.query.product }, page(req.query))),
  );
  app.get('/v1/policies/:id', { schema: { ...policyTags, summary: 'Retrieve a policy', params: S.IdParams, response: { 200: S.Policy, ...errors } } }, (req) =>
    catalog.getPolicy(req.scope, req.params.id),
  );
  app.post('/v1/policies/:id', { schema: { ...policyTags, summary: 'Update a policy', params: S.IdParams, body: S.UpdatePolicy, response: { 200: S.Policy, ...errors } } }, (req) =>
    catalog.updatePolicy(req.scope, req.params.id, req.body),
  );

  // ── customers ──
  const customerTags = { tags: ['customers'], security: secured };
  app.post('/v1/customers', { schema: { ...customerTags, summary: 'Create a customer', body: S.CreateCustomer, response: { 200: S.Customer, ...errors } } }, (req) =>
    customers.create(req.scope, req.body),
  );
  app.get('/v1/customers', { schema: { ...customerTags, summary: 'List customers', querystring: S.CustomerListQuery, response: { 200: S.List(S.Customer), ...errors } } }, async (req) =>
    list(await customers.list(req.scope, { email: req.query.email }, page(req.query))),
  );
  app.get('/v1/customers/:id', { schema: { ...customerTags, summary: 'Retrieve a customer', params: S.IdParams, response: { 200: S.Customer, ...errors } } }, (req) =>
    customers.get(req.scope, req.params.id),
  );
  app.post('/v1/customers/:id', { schema: { ...customerTags, summary: 'Update a customer', params: S.IdParams, body: S.UpdateCustomer, response: { 200: S.Customer, ...errors } } }, (req) =>
    customers.update(req.scope, req.params.id, req.body),
  );

  // ── licenses ──
  const licenseTags = { tags: ['licenses'], security: secured };
  app.post('/v1/licenses', { schema: { ...licenseTags, summary: 'Create a license', body: S.CreateLicense, response: { 200: S.License, ...errors } } }, (req) => {
    const { send_email: sendEmail, ...input } = req.body;
    // The delivery email is promised in the license's own transaction: both or neither.
    return licenses.create(req.scope, input, sendEmail ? { inTransaction: (trx, license) => emails.requireLicenseDelivery(trx, req.scope, license.id) } : {});
  });
  app.get('/v1/licenses', { schema: { ...licenseTags, summary: 'List licenses', querystring: S.LicenseListQuery, response: { 200: S.List(S.License), ...errors } } }, async (req) => {
    const { customer, email, product, status } = req.query;
    return list(await licenses.list(req.scope, { customer, email, product, status }, page(req.query)));
  });
  app.get('/v1/licenses/:id', { schema: { ...licenseTags, summary: 'Retrieve a license', params: S.IdParams, response: { 200: S.License, ...errors } } }, (req) =>
    licenses.get(req.scope, req.params.id),
  );
  app.post('/v1/licenses/:id', { schema: { ...licenseTags, summary: 'Update a license', params: S.IdParams, body: S.UpdateLicense, response: { 200: S.License, ...errors } } }, (req) =>
    licenses.update(req.scope, req.params.id, req.body),
  );
  const action = (name: 'suspend' | 'reinstate' | 'revoke', summary: string) =>
    app.post(
      `/v1/licenses/:id/${name}`,
      { schema: { ...licenseTags, summary, params: S.IdParams, body: Type.Optional(Type.Object({}, { additionalProperties: false })), response: { 200: S.License, ...errors } } },
      (req) => licenses[name](req.scope, req.params.id),
    );
  action('suspend', 'Suspend a license');
  action('reinstate', 'Reinstate a suspended license');
  action('revoke', 'Revoke a license (final)');
  app.post(
    '/v1/licenses/:id/renew',
    { schema: { ...licenseTags, summary: 'Renew a license', params: S.IdParams, body: Type.Optional(S.RenewLicense), response: { 200: S.License, ...errors } } },
    (req) => licenses.renew(req.scope, req.params.id, req.body?.duration),
  );
  app.get(
    '/v1/licenses/:id/devices',
    { schema: { ...licenseTags, summary: "List a license's devices", params: S.IdParams, querystring: S.PlainListQuery, response: { 200: S.List(S.Device), ...errors } } },
    async (req) => list(await licenses.listDevices(req.scope, req.params.id, page(req.query))),
  );
  app.delete('/v1/devices/:id', { schema: { ...licenseTags, summary: 'Deactivate a device', params: S.IdParams, response: { 200: S.DeletedDevice, ...errors } } }, (req) =>
    licenses.deleteDevice(req.scope, req.params.id),
  );

  // ── keys and events ──
  app.get(
    '/v1/signing_keys',
    { schema: { tags: ['signing keys'], security: secured, summary: "List the environment's signing keys", response: { 200: S.List(S.SigningKey), ...errors } } },
    async (req) => ({ object: 'list' as const, data: await signingKeys.list(req.scope), has_more: false }),
  );
  app.post(
    '/v1/signing_keys',
    { schema: { tags: ['signing keys'], security: secured, summary: 'Rotate: a new active key signs new license keys; the old one is retired', response: { 200: S.SigningKey, ...errors } } },
    (req) => signingKeys.rotate(req.scope),
  );
  app.delete(
    '/v1/signing_keys/:id',
    {
      schema: {
        tags: ['signing keys'],
        security: secured,
        summary: 'Remove a retired key no license uses',
        params: S.IdParams,
        response: { 200: Type.Object({ id: Type.String(), object: Type.Literal('signing_key'), deleted: Type.Literal(true) }), ...errors },
      },
    },
    (req) => signingKeys.remove(req.scope, req.params.id),
  );
  app.get('/v1/events', { schema: { tags: ['events'], security: secured, summary: 'List events', querystring: S.EventListQuery, response: { 200: S.List(S.Event), ...errors } } }, async (req) =>
    list(await events.list(req.scope, { type: req.query.type, object_id: req.query.object }, page(req.query))),
  );
  app.get('/v1/events/:id', { schema: { tags: ['events'], security: secured, summary: 'Retrieve an event', params: S.IdParams, response: { 200: S.Event, ...errors } } }, (req) =>
    events.get(req.scope, req.params.id),
  );

  // ── jobs ──
  const jobTags = { tags: ['jobs'], security: secured };
  app.get('/v1/jobs', { schema: { ...jobTags, summary: 'List jobs (emails, webhooks, Stripe processing)', querystring: S.JobListQuery, response: { 200: S.List(S.Job), ...errors } } }, async (req) =>
    list(await jobs.list(req.scope, { state: req.query.state, type: req.query.type }, page(req.query))),
  );
  app.get('/v1/jobs/:id', { schema: { ...jobTags, summary: 'Retrieve a job', params: S.IdParams, response: { 200: S.Job, ...errors } } }, (req) =>
    jobs.get(req.scope, req.params.id),
  );
  app.post('/v1/jobs/:id/retry', { schema: { ...jobTags, summary: 'Run a job again now, with a fresh set of attempts', params: S.IdParams, response: { 200: S.Job, ...errors } } }, (req) =>
    jobs.retry(req.scope, req.params.id),
  );
}
