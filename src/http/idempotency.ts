import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { SecretBox } from '../crypto/secret-box.js';
import {
  claimIdempotencyKey,
  completeIdempotencyKey,
  findIdempotencyKey,
  releaseIdempotencyKey,
} from '../db/repositories/idempotency.js';
import type { Database } from '../db/schema.js';
import { DomainError, conflict, invalidRequest } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    idempotencyKey: string | null;
  }
}

/** How long a key is remembered, as with Stripe. */
const KEY_TTL_SECONDS = 24 * 3600;

/** JSON with object keys sorted, so the same parameters sent in another order are the same request. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * `Idempotency-Key` on admin POSTs, with Stripe's semantics: the first
 * request's status and body are saved and replayed for every retry with the
 * same key; the same key with different parameters is refused; a retry while
 * the first request still runs gets 409. Requests that fail validation never
 * claim a key, and a 5xx releases it, so a retry after a crash can succeed.
 * Saved responses can contain license keys, so they are sealed at rest.
 */
export function idempotency(app: FastifyInstance, db: Kysely<Database>, box: SecretBox, now: () => number): void {
  app.decorateRequest('idempotencyKey', null);

  app.addHook('preHandler', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method !== 'POST') return;
    const raw = request.headers['idempotency-key'];
    if (raw === undefined) return;
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!key || key.length > 255) {
      throw invalidRequest('idempotency_key_invalid', 'Idempotency-Key must be 1 to 255 characters', 'Idempotency-Key');
    }
    const scope = request.scope;
    const requestHash = createHash('sha256')
      .update(`${request.method} ${request.routeOptions.url} ${canonicalJson(request.params)} ${canonicalJson(request.body ?? null)}`)
      .digest('hex');
    const ts = now();
    for (let attempt = 0; attempt < 2; attempt++) {
      if (await claimIdempotencyKey(db, { account_id: scope.accountId, env: scope.env, key, request_hash: requestHash, status_code: null, response_sealed: null, created: ts })) {
        request.idempotencyKey = key;
        return;
      }
      const existing = await findIdempotencyKey(db, scope, key);
      if (!existing) continue; // released in between; claim again
      if (existing.created < ts - KEY_TTL_SECONDS) {
        await releaseIdempotencyKey(db, scope, key, ts - KEY_TTL_SECONDS);
        continue;
      }
      if (existing.request_hash !== requestHash) {
        throw invalidRequest('idempotency_key_reused', 'this Idempotency-Key was already used with different parameters or on another route', 'Idempotency-Key');
      }
      if (existing.status_code === null || existing.response_sealed === null) {
        throw conflict('idempotency_request_in_progress', 'a request with this Idempotency-Key is still being processed; retry shortly', 'Idempotency-Key', true);
      }
      const body = box.open(existing.response_sealed, `idempotency:${scope.accountId}:${scope.env}:${key}`).toString('utf8');
      return reply.code(existing.status_code).header('Idempotent-Replayed', 'true').type('application/json').send(body);
    }
    throw new DomainError('conflict', 'idempotency_request_in_progress', 'a request with this Idempotency-Key is still being processed; retry shortly', 'Idempotency-Key', true);
  });

  app.addHook('onSend', async (request, reply, payload) => {
    const key = request.idempotencyKey;
    if (key === null) return payload;
    request.idempotencyKey = null;
    const scope = request.scope;
    if (reply.statusCode >= 500 || typeof payload !== 'string') {
      await releaseIdempotencyKey(db, scope, key);
    } else {
      await completeIdempotencyKey(db, scope, key, reply.statusCode, box.seal(payload, `idempotency:${scope.accountId}:${scope.env}:${key}`));
    }
    return payload;
  });
}
