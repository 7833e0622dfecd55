import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from './config.js';
import { createSecretBox, loadMasterKey } from './crypto/secret-box.js';
import { openDatabase, type Db } from './db/database.js';
import { invalidRequest } from './errors.js';
import { requireSecretKey } from './http/auth.js';
import { deferredChildLoggers } from './http/request-logger.js';
import { installErrorHandling, routingError } from './http/errors.js';
import { idempotency } from './http/idempotency.js';
import { databaseRateLimitStore } from './http/rate-limit-store.js';
import { adminRoutes } from './http/routes/admin.js';
import { emailRoutes } from './http/routes/emails.js';
import { webhookRoutes } from './http/routes/webhooks.js';
import { licenseApiRoutes } from './http/routes/license-api.js';
import { licenseFileRoutes, offlineActivationRoutes } from './http/routes/license-files.js';
import { signResponses } from './http/response-signing.js';
import fastifyCors from '@fastify/cors';
import { stripeAdminRoutes, stripeWebhookRoutes } from './http/routes/stripe.js';
import { ErrorBody } from './http/schemas.js';
import { newId } from './ids.js';
import { DEFAULT_SCHEDULER_OPTIONS, Scheduler, type SchedulerOptions } from './jobs/scheduler.js';
import { DEFAULT_WORKER_OPTIONS, JobWorker, type WorkerOptions } from './jobs/worker.js';
import { createServices, type Services } from './services.js';

export interface AppOptions {
  /** The clock, in Unix seconds. Tests move it; production uses the wall clock. */
  now?: () => number;
  /** Use this database instead of opening one from the config (the caller closes it). */
  db?: Db;
  logger?: boolean;
  /** Job worker tuning; `start: false` leaves jobs queued (tests of crash recovery). */
  worker?: Partial<WorkerOptions> & { start?: boolean };
  /** Scheduler tuning; `start: false` leaves it idle (tests call `app.scheduler.runOnce()`). */
  scheduler?: Partial<SchedulerOptions> & { start?: boolean };
}

declare module 'fastify' {
  interface FastifyInstance {
    services: Services;
    db: Db;
    worker: JobWorker;
    scheduler: Scheduler;
  }
}

/** Largest accepted request body. Every real request is far smaller; this only stops abuse. */
export const BODY_LIMIT = 64 * 1024;

/**
 * How deeply a JSON body may nest. Real bodies need three levels; the limit
 * keeps the recursive walks below (and the schema validator's) off the end
 * of the stack, where a 64 KiB body of brackets would otherwise take them.
 */
const MAX_BODY_DEPTH = 16;

/** What normalizeBody() answers for a body nested deeper than MAX_BODY_DEPTH. */
const TOO_DEEP: unique symbol = Symbol('too deep');

/**
 * Trims every string in a parsed JSON body, so `" a@b.c "` and `"a@b.c"` are
 * the same input, and answers TOO_DEEP for a body nested deeper than
 * `levels`, in one walk that stops at that depth. Copy-on-write: a body with
 * nothing to trim (nearly every one) comes back as itself, not as a copy.
 */
function normalizeBody(value: unknown, levels: number): unknown {
  if (typeof value === 'string') return value.trim();
  if (value === null || typeof value !== 'object') return value;
  if (levels === 0) return TOO_DEEP;
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = normalizeBody(value[i], levels - 1);
      if (v === TOO_DEEP) return TOO_DEEP;
      if (v !== value[i]) (out ??= value.slice())[i] = v;
    }
    return out ?? value;
  }
  const object = value as Record<string, unknown>;
  let out: Record<string, unknown> | null = null;
  for (const k of Object.keys(object)) {
    const v = normalizeBody(object[k], levels - 1);
    if (v === TOO_DEEP) return TOO_DEEP;
    if (v !== object[k]) (out ??= { ...object })[k] = v;
  }
  return out ?? object;
}

/**
 * Two validators: bodies are JSON and must match their schema exactly (no
 * type coercion, unknown fields rejected); query strings and path parameters
 * are text and are coerced to the declared types.
 */
function installValidators(app: FastifyInstance): void {
  const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  const textAjv = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
  addFormats.default(bodyAjv);
  addFormats.default(textAjv);
  app.setValidatorCompiler(({ schema, httpPart }) => {
    if (httpPart !== 'body') return textAjv.compile(schema);
    const validate: ValidateFunction = bodyAjv.compile(schema);
    // A missing body is validated as `{}`: routes whose fields are all optional
    // accept it, the others answer with the first missing parameter.
    return (data: unknown) => {
      const value = normalizeBody(data ?? {}, MAX_BODY_DEPTH);
      if (value === TOO_DEEP) return { error: invalidRequest('body_invalid', 'the request body is nested too deeply', null) };
      return validate(value) ? { value } : { error: validate.errors ?? [] };
    };
  });
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const db = options.db ?? openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const box = createSecretBox(loadMasterKey(config.secret, config.dataDir));
  const services = createServices(db, box, now, config);

  const app = Fastify({
    logger: options.logger === false ? false : { level: config.logLevel },
    ...(options.logger !== false && { childLoggerFactory: deferredChildLoggers }),
    bodyLimit: BODY_LIMIT,
    genReqId: () => newId('request'),
    requestIdHeader: false,
    frameworkErrors: routingError,
    trustProxy: config.trustProxy,
    ajv: { customOptions: { strict: false } },
  });
  app.decorate('services', services);
  app.decorate('db', db);
  const worker = new JobWorker(db.kysely, db.dialect, services.jobs, app.log, { ...DEFAULT_WORKER_OPTIONS, ...options.worker });
  for (const [type, handler] of Object.entries(services.jobHandlers)) worker.register(type, handler);
  app.decorate('worker', worker);
  const scheduler = new Scheduler(db, services, app.log, { ...DEFAULT_SCHEDULER_OPTIONS, ...options.scheduler });
  app.decorate('scheduler', scheduler);
  installValidators(app);
  // Bodies are JSON only; Fastify would otherwise accept text/plain as a string.
  // An empty body sent as JSON is no body (clients often set the header on
  // every POST, including actions like `/suspend` that take no parameters).
  app.removeContentTypeParser(['text/plain', 'application/json']);
  const parseJson = app.getDefaultJsonParser('error', 'ignore');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) =>
    body === '' ? done(null, undefined) : parseJson(request, body as string, done),
  );
  installErrorHandling(app);
  app.addSchema(ErrorBody);

  // Set when the request arrives, so every answer carries it (errors too);
  // a callback hook, not an async one, spares a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('Request-Id', request.id);
    done();
  });
  if (options.worker?.start !== false) app.addHook('onReady', async () => worker.start());
  if (options.scheduler?.start !== false) app.addHook('onReady', async () => scheduler.start());
  app.addHook('onClose', async () => {
    // Finish the scheduler's run and the jobs in flight before the database goes away.
    await scheduler.stop();
    await worker.stop();
    await services.close();
    if (!options.db) await db.close();
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Keymint API',
        version: '1',
        description: 'License keys for software sold through Stripe. Admin routes take `Authorization: Bearer km_test_…|km_live_…`; the public license API takes the license key in the body.',
      },
      components: { securitySchemes: { secretKey: { type: 'http', scheme: 'bearer', description: 'a secret API key, km_test_… or km_live_…' } } },
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: true } });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  // One process on SQLite counts in memory; replicas on PostgreSQL share counters in the database.
  await app.register(fastifyRateLimit, {
    global: false,
    cache: 100_000,
    skipOnError: true,
    ...(db.dialect === 'postgres' && { store: databaseRateLimitStore(db.kysely) }),
  });

  // The public license API: callable from any origin (apps, browsers), signing its answers when asked.
  await app.register(async (publicApi) => {
    await publicApi.register(fastifyCors, {
      origin: '*',
      methods: ['POST'],
      allowedHeaders: ['Content-Type', 'Keymint-Accept-Signature'],
      // One string, not a list: the plugin would join a list on every request.
      exposedHeaders: 'Keymint-Signature, Request-Id, Retry-After',
      maxAge: 86_400,
    });
    signResponses(publicApi, services.signingKeys, now);
    await publicApi.register(licenseApiRoutes, { services, rateLimit: config.rateLimit });
    await publicApi.register(licenseFileRoutes, { services });
  });
  await app.register(stripeWebhookRoutes, { services });
  await app.register(async (admin) => {
    requireSecretKey(admin, services.accounts);
    idempotency(admin, db.kysely, box, now);
    await admin.register(adminRoutes, { services });
    await admin.register(emailRoutes, { services });
    await admin.register(webhookRoutes, { services });
    await admin.register(stripeAdminRoutes, { services });
    await admin.register(offlineActivationRoutes, { services });
  });

  return app;
}
