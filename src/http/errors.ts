import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError, type ErrorKind } from '../errors.js';

type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'conflict_error'
  | 'rate_limit_error'
  | 'api_error';

const KIND: Record<ErrorKind, { status: number; type: ErrorType }> = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  authentication: { status: 401, type: 'authentication_error' },
  permission: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  conflict: { status: 409, type: 'conflict_error' },
  rate_limit: { status: 429, type: 'rate_limit_error' },
};

interface AjvError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** `/customer/email` → `customer[email]`, the way Stripe names nested parameters. */
function paramName(path: string[]): string | null {
  if (path.length === 0) return null;
  const [first, ...rest] = path;
  return `${first}${rest.map((p) => `[${p}]`).join('')}`;
}

/** Depth of the parameter an error names, then how telling its kind is. */
function specificity(e: AjvError): number {
  const namesChild = e.keyword === 'additionalProperties' || e.keyword === 'required';
  const depth = e.instancePath.split('/').filter(Boolean).length + (namesChild ? 1 : 0);
  return depth * 10 + (e.keyword === 'additionalProperties' ? 2 : e.keyword === 'required' ? 1 : 0);
}

/** Turns the first schema violation into a sentence a developer can act on, and names the parameter. */
function describeValidation(errors: AjvError[], context: string | undefined): { code: string; message: string; param: string | null } {
  // Unions report every branch's failure (`customer` as an id fails as a
  // string, as an object and as null). The one naming the deepest parameter
  // is the branch the client meant; at equal depth an unknown or missing field
  // says more than a type mismatch, and otherwise the first error stands.
  const error = errors
    .filter((e) => e.keyword !== 'anyOf' && e.keyword !== 'propertyNames')
    .reduce<AjvError | undefined>((best, e) => (!best || specificity(e) > specificity(best) ? e : best), undefined);
  const where = context === 'querystring' ? 'query parameter' : context === 'params' ? 'path parameter' : 'parameter';
  if (!error) return { code: 'parameter_invalid', message: 'invalid request', param: null };
  const path = error.instancePath.split('/').filter(Boolean);
  if (error.keyword === 'additionalProperties') {
    const param = paramName([...path, String(error.params.additionalProperty)]);
    return { code: 'parameter_unknown', message: `unknown ${where}: ${param}`, param };
  }
  if (error.keyword === 'required') {
    const param = paramName([...path, String(error.params.missingProperty)]);
    return { code: 'parameter_missing', message: `missing required ${where}: ${param}`, param };
  }
  const param = paramName(path);
  if (param === null && context === 'body') {
    return { code: 'body_invalid', message: 'the request body must be a JSON object', param: null };
  }
  if (errors.some((e) => e.keyword === 'propertyNames' && e.instancePath === error.instancePath)) {
    return { code: 'parameter_invalid', message: `invalid ${where} ${param}: its keys ${error.message ?? 'are invalid'}`, param };
  }
  return { code: 'parameter_invalid', message: `invalid ${where} ${param ?? ''}: ${error.message ?? 'invalid value'}`.replace('  ', ' '), param };
}

function send(reply: FastifyReply, request: FastifyRequest, status: number, type: ErrorType, code: string | null, message: string, param: string | null) {
  return reply.code(status).type('application/json').send({ error: { type, code, message, param, request_id: request.id } });
}

/**
 * What the router rejects before any route or hook runs (a URL that does not
 * decode, a path parameter longer than the router accepts): Fastify's
 * `frameworkErrors`, answered in the same shape. The reply is built outside
 * any route, so the Request-Id header is set here rather than left to hooks.
 */
export function routingError(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header('Request-Id', request.id);
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return send(reply, request, 414, 'invalid_request_error', 'url_too_long', 'the request URL is too long', null);
  if (err.code === 'FST_ERR_BAD_URL') return send(reply, request, 400, 'invalid_request_error', 'url_invalid', 'the request URL is not validly encoded', null);
  request.log.error({ err, request_id: request.id }, 'unhandled routing error');
  return send(reply, request, 500, 'api_error', 'internal_error', 'something went wrong on our side; it has been logged', null);
}

/**
 * One place maps every failure to the API's error shape. Domain errors carry
 * their own kind; Fastify's own errors (bad JSON, oversized bodies, schema
 * violations) become 4xx; anything else is a 500 that shows nothing of its
 * cause and is logged with the request id.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | DomainError, request, reply) => {
    if (err instanceof DomainError) {
      const { status, type } = KIND[err.kind];
      return send(reply, request, status, type, err.code, err.message, err.param);
    }
    const fastifyErr = err as FastifyError & { validation?: AjvError[]; validationContext?: string };
    if (fastifyErr.validation) {
      const { code, message, param } = describeValidation(fastifyErr.validation, fastifyErr.validationContext);
      return send(reply, request, 400, 'invalid_request_error', code, message, param);
    }
    const status = fastifyErr.statusCode ?? 500;
    if (status === 413) return send(reply, request, 413, 'invalid_request_error', 'body_too_large', 'the request body is too large', null);
    if (status === 415) return send(reply, request, 415, 'invalid_request_error', 'content_type_unsupported', 'send the body as application/json', null);
    if (status >= 400 && status < 500) {
      const code = fastifyErr.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fastifyErr.name === 'SyntaxError' ? 'body_invalid_json' : 'request_invalid';
      const message = code === 'body_invalid_json' ? 'the request body is not valid JSON' : (fastifyErr.message || 'invalid request').toLowerCase();
      return send(reply, request, status, 'invalid_request_error', code, message, null);
    }
    request.log.error({ err, request_id: request.id }, 'unhandled error');
    return send(reply, request, 500, 'api_error', 'internal_error', 'something went wrong on our side; it has been logged', null);
  });

  app.setNotFoundHandler((request, reply) =>
    send(reply, request, 404, 'invalid_request_error', 'route_not_found', `unrecognized request URL (${request.method}: ${request.url.split("?")[0]?.slice(0, 200)})`, null),
  );
}
