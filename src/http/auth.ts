import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccountService } from '../accounts/accounts.js';
import type { Scope } from '../db/schema.js';
import { DomainError } from '../errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The account environment the secret key opened; set on every admin route. */
    scope: Scope;
  }
}

const unauthenticated = (message: string) => new DomainError('authentication', 'api_key_invalid', message);

/**
 * Admin routes authenticate with `Authorization: Bearer km_test_…|km_live_…`;
 * the key alone decides the environment. Runs before the body is parsed, so an
 * unauthenticated request learns nothing about its body's validity.
 */
export function requireSecretKey(app: FastifyInstance, accounts: AccountService): void {
  app.decorateRequest('scope', null as unknown as Scope);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const header = request.headers.authorization;
    if (!header) throw unauthenticated('no API key provided; send `Authorization: Bearer km_test_…`');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) throw unauthenticated('the Authorization header must be `Bearer <secret key>`');
    const scope = await accounts.authenticate(match[1]);
    if (!scope) throw unauthenticated('invalid API key provided');
    request.scope = { accountId: scope.accountId, env: scope.env };
  });
}
