/**
 * One benchmark server, run as a child of bench/validate.ts so that it has a
 * process (and, on a 2-core machine, a core) of its own while the load
 * generator runs in the parent.
 *
 *   node server.js keymint   the real app, configured from the environment like `keymint serve`
 *   node server.js bare      a bare Fastify POST route answering a constant JSON body
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { BARE_BODY_ENV, BARE_PATH, type FromServer, type ServerMode, type ToServer } from './messages.js';

function send(message: FromServer): void {
  if (!process.send) throw new Error('bench/server.js must be started with child_process.fork');
  process.send(message);
}

/**
 * The baseline: what Fastify costs with nothing of Keymint's. The body is
 * parsed as JSON (Fastify does it for every POST) and the answer is the same
 * JSON document the validate route returned, serialized again per request,
 * so both sides move the same bytes.
 */
function bareApp(): FastifyInstance {
  const raw = process.env[BARE_BODY_ENV];
  if (!raw) throw new Error(`${BARE_BODY_ENV} is not set`);
  const body: unknown = JSON.parse(raw);
  const app = Fastify();
  app.post(BARE_PATH, async () => body);
  return app;
}

async function main(): Promise<void> {
  const mode = process.argv[2] as ServerMode | undefined;
  if (mode !== 'keymint' && mode !== 'bare') throw new Error(`usage: server.js keymint|bare (got ${String(mode)})`);
  const app = mode === 'keymint' ? await buildApp(loadConfig(process.env)) : bareApp();

  process.on('message', (message: ToServer) => {
    if (message.type === 'cpu') send({ type: 'cpu', ...process.cpuUsage() });
  });
  // app.close() runs the app's shutdown hooks (Keymint flushes its deferred bookkeeping there).
  process.once('SIGTERM', () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });

  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  send({ type: 'listening', url });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench server: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
