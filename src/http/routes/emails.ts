import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Services } from '../../services.js';
import { errorResponses, page } from '../route-helpers.js';
import * as S from '../schemas.js';

const errors = errorResponses;
const secured = [{ secretKey: [] }];

/** Customer email: the delivery log, re-sending a license, and template previews (admin API, secret key). */
export async function emailRoutes(fastify: FastifyInstance, { services }: { services: Services }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const { emails } = services;
  const tags = { tags: ['emails'], security: secured };

  app.get('/v1/emails', { schema: { ...tags, summary: 'List emails (the delivery log)', querystring: S.EmailListQuery, response: { 200: S.List(S.EmailMessage), ...errors } } }, async (req) => {
    const { license, to, kind, status } = req.query;
    return { object: 'list' as const, ...(await emails.list(req.scope, { license, to, kind, status }, page(req.query))) };
  });
  app.get('/v1/emails/:id', { schema: { ...tags, summary: 'Retrieve an email', params: S.IdParams, response: { 200: S.EmailMessage, ...errors } } }, (req) =>
    emails.get(req.scope, req.params.id),
  );
  app.post(
    '/v1/licenses/:id/send_email',
    {
      schema: {
        ...tags,
        summary: "Send a license's delivery email (again) to its customer",
        params: S.IdParams,
        body: Type.Optional(Type.Object({}, { additionalProperties: false })),
        response: { 200: S.EmailMessage, ...errors },
      },
    },
    (req) => emails.resendLicense(req.scope, req.params.id),
  );
  app.get(
    '/v1/products/:id/email_preview',
    {
      schema: {
        ...tags,
        summary: "Render one of a product's emails with sample data",
        params: S.IdParams,
        querystring: S.EmailPreviewQuery,
        response: { 200: S.EmailPreview, ...errors },
      },
    },
    (req) => emails.preview(req.scope, req.params.id, req.query.template ?? 'license_delivery'),
  );
}
