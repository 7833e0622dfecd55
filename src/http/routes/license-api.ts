import { createHash } from 'node:crypto';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../../errors.js';
import type { ValidationResult } from '../../licensing/license-api.js';
import type { Services } from '../../services.js';
import { errorResponses } from '../route-helpers.js';
import * as S from '../schemas.js';

const errors = errorResponses;

/** The body of a validate answer; `nonce` is echoed when the request sent one. */
function validationAnswer(result: ValidationResult, nonce: string | undefined, ts: number) {
  return {
    object: 'license_validation' as const,
    valid: result.valid,
    code: result.code,
    message: result.message,
    license: result.license,
    device: result.device,
    ...(nonce !== undefined && { nonce }),
    ts,
  };
}
const tags = ['license API'];

type Limiter = (request: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; ttlInSeconds?: number }>;

/**
 * The public license API, called by vendors' apps with the license key as
 * the only credential. Rate limited per license key and per client IP: a
 * leaked key cannot be hammered from many machines, nor many keys tried from
 * one.
 */
export async function licenseApiRoutes(fastify: FastifyInstance, { services, rateLimit }: { services: Services; rateLimit: number }): Promise<void> {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const api = services.licenseApi;

  const limiters: Limiter[] = [];
  if (rateLimit > 0) {
    const window = 60_000;
    limiters.push(fastify.createRateLimit({ max: rateLimit, timeWindow: window, keyGenerator: (req) => `ip:${req.ip}` }));
    limiters.push(
      fastify.createRateLimit({
        max: rateLimit,
        timeWindow: window,
        keyGenerator: (req) => `key:${createHash('sha256').update(String((req.body as { key?: unknown } | undefined)?.key ?? '')).digest('base64url')}`,
      }),
    );
  }

  // Both limits count every request; the first one exceeded answers.
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    for (const limiter of limiters) {
      const result = await limiter(request);
      if (result.isAllowed || !result.isExceeded) continue;
      const retryAfter = Math.max(1, result.ttlInSeconds ?? 60);
      reply.header('Retry-After', String(retryAfter));
      throw new DomainError('rate_limit', 'rate_limited', `too many requests; retry after ${retryAfter} seconds`);
    }
  };
  // With rate limiting off, no hook at all: an async hook costs a promise per request.
  const limited = limiters.length > 0 ? { preHandler } : {};

  app.post(
    '/v1/licenses/validate',
    { ...limited, schema: { tags, summary: 'Validate a license key', body: S.ValidateRequest, response: { 200: S.ValidateResponse, ...errors } } },
    // Not async: an answer from memory is sent without a promise (see LicenseApiService.validate).
    (req) => {
      const { key, fingerprint, product, entitlements, nonce } = req.body;
      const result = api.validate(key, { fingerprint, product, entitlements });
      return result instanceof Promise ? result.then((r) => validationAnswer(r, nonce, services.now())) : validationAnswer(result, nonce, services.now());
    },
  );

  app.post(
    '/v1/licenses/activate',
    { ...limited, schema: { tags, summary: 'Activate a device', body: S.ActivateRequest, response: { 200: S.Device, 201: S.Device, ...errors } } },
    async (req, reply) => {
      const { device, created } = await api.activate(req.body);
      return reply.code(created ? 201 : 200).send(device);
    },
  );

  app.post(
    '/v1/licenses/deactivate',
    { ...limited, schema: { tags, summary: 'Deactivate a device', body: S.DeviceRequest, response: { 200: S.DeletedDevice, ...errors } } },
    (req) => api.deactivate(req.body.key, req.body.fingerprint),
  );

  app.post(
    '/v1/licenses/heartbeat',
    { ...limited, schema: { tags, summary: "Renew a floating device's lease", body: S.DeviceRequest, response: { 200: S.Device, ...errors } } },
    (req) => api.heartbeat(req.body.key, req.body.fingerprint),
  );
}
