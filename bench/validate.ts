/**
 * `npm run bench`: throughput and latency of POST /v1/licenses/validate
 * against a seeded database, side by side with a bare Fastify route measured
 * the same way. See bench/README.md.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { loadConfig } from '../src/config.js';
import { BARE_BODY_ENV, BARE_PATH, type FromServer, type ServerMode, type ToServer } from './messages.js';
import { freshDatabase } from './database.js';
import { seed } from './seed.js';

function envInt(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number, got "${raw}"`);
  return value;
}

const settings = {
  licenses: envInt('BENCH_LICENSES', 100_000),
  sample: envInt('BENCH_SAMPLE', 10_000),
  connections: envInt('BENCH_CONNECTIONS', 10),
  warmupSeconds: envInt('BENCH_WARMUP', 2),
  durationSeconds: envInt('BENCH_DURATION', 10),
  /** A directory: each measured server writes a V8 CPU profile there (`node --cpu-prof`). */
  cpuProfileDir: process.env.BENCH_CPU_PROF?.trim() || null,
};

/** Node flags for a measured server: a CPU profile named after it when BENCH_CPU_PROF is set. */
const profile = (name: string): string[] =>
  settings.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(settings.cpuProfileDir), '--cpu-prof-name', `${name}-${Date.now()}.cpuprofile`] : [];

const GOAL = { ratio: 0.5, p99Ms: 10 };
const VALIDATE_PATH = '/v1/licenses/validate';
const SERVER_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'server.js');


// ---------------------------------------------------------------------------
// Servers, each in a child process of its own.

interface CpuTime {
  user: number;
  system: number;
}

interface RunningServer {
  url: string;
  cpu(): Promise<CpuTime>;
  stop(): Promise<void>;
}

function nextMessage<T extends FromServer['type']>(child: ChildProcess, type: T): Promise<Extract<FromServer, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FromServer) => {
      if (message.type !== type) return;
      cleanup();
      resolve(message as Extract<FromServer, { type: T }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`bench server exited (code ${code}) before sending "${type}"`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

async function startServer(mode: ServerMode, env: Record<string, string>, execArgv: string[] = []): Promise<RunningServer> {
  const child = fork(SERVER_SCRIPT, [mode], { env: { ...process.env, ...env }, execArgv: [...process.execArgv, ...execArgv] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const { url } = await nextMessage(child, 'listening');
  return {
    url,
    async cpu() {
      const reply = nextMessage(child, 'cpu');
      child.send({ type: 'cpu' } satisfies ToServer);
      const { user, system } = await reply;
      return { user, system };
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(force);
    },
  };
}

// ---------------------------------------------------------------------------
// Load.

interface Measurement {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  responses: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  mismatches: number;
  /** CPU used during the measured run, in percent of one core. */
  serverCpu: number;
  loadGeneratorCpu: number;
}

/** Every response time of a run, for exact percentiles: autocannon's own histogram keeps whole milliseconds only. */
class Latencies {
  private values = new Float64Array(1 << 16);
  private count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.count++] = ms;
  }

  /** Nearest-rank percentile, `p` in (0, 100]. */
  percentiles(...ps: number[]): number[] {
    const sorted = this.values.slice(0, this.count).sort();
    return ps.map((p) => (this.count === 0 ? NaN : (sorted[Math.max(0, Math.ceil((p / 100) * this.count) - 1)] ?? NaN)));
  }
}

/**
 * One autocannon run. The bodies are handed out round robin across all
 * connections, so concurrent requests carry different keys and every key of
 * the sample is used.
 */
function load(url: string, bodies: string[], verifyBody: (body: string) => boolean, seconds: number, latencies?: Latencies) {
  let next = Math.floor(Math.random() * bodies.length);
  const nextBody = (): string => bodies[next++ % bodies.length] as string;
  const instance = autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections: settings.connections,
    duration: seconds,
    requests: [{ setupRequest: (request) => ({ ...request, body: nextBody() }) }],
    verifyBody,
  });
  if (latencies) instance.on('response', (_client, _status, _bytes, ms) => latencies.add(ms));
  return instance;
}

const cpuPercent = (before: CpuTime, after: CpuTime, seconds: number) => ((after.user - before.user + after.system - before.system) / 1e6 / seconds) * 100;

/** A warm-up run (discarded: JIT, connection setup, caches), then the measured run. */
async function measure(server: RunningServer, route: string, bodies: string[], verifyBody: (body: string) => boolean): Promise<Measurement> {
  const url = server.url + route;
  await load(url, bodies, verifyBody, settings.warmupSeconds);

  const latencies = new Latencies();
  const serverBefore = await server.cpu();
  const clientBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const result = await load(url, bodies, verifyBody, settings.durationSeconds, latencies);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const serverAfter = await server.cpu();
  const clientAfter = process.cpuUsage();

  const [p50Ms = NaN, p99Ms = NaN] = latencies.percentiles(50, 99);
  return {
    requestsPerSecond: result.requests.average,
    p50Ms,
    p99Ms,
    responses: Object.values(result.statusCodeStats).reduce((n, s) => n + s.count, 0),
    non2xx: result.non2xx,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
    errors: result.errors,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    serverCpu: cpuPercent(serverBefore, serverAfter, seconds),
    loadGeneratorCpu: cpuPercent(clientBefore, clientAfter, seconds),
  };
}

// ---------------------------------------------------------------------------
// Correctness, checked before anything is timed: a benchmark that measures
// 400s or NOT_FOUNDs measures nothing.

interface Answer {
  status: number;
  text: string;
}

async function post(url: string, body: string): Promise<Answer> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, text: await res.text() };
}

function expectValidation(answer: Answer, code: string, what: string): void {
  let parsed: { code?: unknown; valid?: unknown } | undefined;
  try {
    parsed = JSON.parse(answer.text) as typeof parsed;
  } catch {
    // reported below
  }
  if (answer.status !== 200 || parsed?.code !== code || parsed.valid !== (code === 'VALID')) {
    throw new Error(`${what}: expected 200 with code ${code}, got ${answer.status} ${answer.text.slice(0, 300)}`);
  }
}

/** A key of the right shape that was never issued: one signature character changed. */
function unissuedKey(key: string): string {
  const last = key.at(-1) === 'A' ? 'B' : 'A';
  return key.slice(0, -1) + last;
}

/** Checks the validate route and returns the body of its first answer, which the bare route then serves. */
async function preflight(server: RunningServer, bodies: string[], keys: string[]): Promise<string> {
  const url = server.url + VALIDATE_PATH;
  const first = await post(url, bodies[0] as string);
  expectValidation(first, 'VALID', 'first sampled key');
  for (let i = 0; i < 20; i++) {
    const j = Math.floor(Math.random() * bodies.length);
    expectValidation(await post(url, bodies[j] as string), 'VALID', `sampled key #${j}`);
  }
  expectValidation(await post(url, JSON.stringify({ key: unissuedKey(keys[0] as string) })), 'NOT_FOUND', 'an unissued key');
  return first.text;
}

// ---------------------------------------------------------------------------
// Report.

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('   ')).join('\n');
}

function report(dialect: string, bare: Measurement, validate: Measurement, uncached: Measurement | null, bodyBytes: { bare: number; validate: number }): boolean {
  const row = (name: string, m: Measurement, bytes: number) => [
    name,
    fmt(m.requestsPerSecond),
    fmt(m.p50Ms, 2),
    fmt(m.p99Ms, 2),
    fmt(bytes),
    fmt(m.responses),
    fmt(m.non2xx),
    fmt(m.errors + m.timeouts),
    fmt(m.mismatches),
    `${fmt(m.serverCpu)}%`,
    `${fmt(m.loadGeneratorCpu)}%`,
  ];
  console.log();
  console.log(
    table([
      ['', 'req/s', 'p50 ms', 'p99 ms', 'body B', 'responses', 'non-2xx', 'errors', 'mismatch', 'server CPU', 'load gen CPU'],
      row(`bare Fastify route (POST ${BARE_PATH})`, bare, bodyBytes.bare),
      row(`POST ${VALIDATE_PATH}`, validate, bodyBytes.validate),
      ...(uncached ? [row(`  the same, validation cache off`, uncached, bodyBytes.validate)] : []),
    ]),
  );

  const ratio = validate.requestsPerSecond / bare.requestsPerSecond;
  const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');
  console.log();
  console.log(`validate / bare throughput: ${fmt(ratio, 2)}`);
  const goalNote = dialect === 'sqlite' ? 'Goal (SQLite)' : `Goal (set for SQLite; ${dialect} shown for reference)`;
  console.log(`${goalNote}:`);
  console.log(`  throughput ratio >= ${GOAL.ratio}   ${fmt(ratio, 2).padStart(8)}      ${verdict(ratio >= GOAL.ratio)}`);
  console.log(`  validate p99 < ${GOAL.p99Ms} ms     ${`${fmt(validate.p99Ms, 2)} ms`.padStart(8)}   ${verdict(validate.p99Ms < GOAL.p99Ms)}`);
  if (uncached) {
    console.log(
      `For reference, with the validation cache off (KEYMINT_VALIDATION_CACHE=0, every request reads the database): ` +
        `ratio ${fmt(uncached.requestsPerSecond / bare.requestsPerSecond, 2)}, p99 ${fmt(uncached.p99Ms, 2)} ms.`,
    );
  }

  let sound = true;
  for (const [name, m] of [
    ['bare', bare],
    ['validate', validate],
    ...(uncached ? ([['validate (cache off)', uncached]] as const) : []),
  ] as const) {
    if (m.non2xx + m.errors + m.timeouts + m.mismatches > 0) {
      sound = false;
      console.log(
        `\nINVALID: the ${name} run had ${m.non2xx} non-2xx responses (${JSON.stringify(m.statusCodes)}), ` +
          `${m.errors} errors (${m.timeouts} timeouts) and ${m.mismatches} unexpected bodies; its figures are not comparable.`,
      );
    }
  }
  return sound;
}

// ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const database = await freshDatabase();
  const servers: RunningServer[] = [];
  const start = async (mode: ServerMode, env: Record<string, string>, execArgv: string[] = []) => {
    const server = await startServer(mode, env, execArgv);
    servers.push(server);
    return server;
  };
  try {
    // The environment `keymint serve` would get; the seeding reads the same
    // configuration so both open the same database and master key.
    const keymintEnv: Record<string, string> = {
      KEYMINT_DATA_DIR: database.dataDir,
      DATABASE_URL: database.databaseUrl ?? '',
      KEYMINT_SECRET: '',
      // The benchmark sends thousands of requests a second from one IP.
      KEYMINT_RATE_LIMIT: '0',
      // A per-request access log would measure the terminal, not the server.
      KEYMINT_LOG_LEVEL: process.env.BENCH_LOG_LEVEL?.trim() || 'warn',
    };
    const config = loadConfig(keymintEnv);
    const dialect = config.databaseUrl ? 'postgres' : 'sqlite';

    console.log(
      `Seeding ${fmt(settings.licenses)} licenses into a fresh ${dialect === 'sqlite' ? `SQLite database in ${database.dataDir}` : 'PostgreSQL database'}…`,
    );
    const seeded = await seed(config, { licenses: settings.licenses, sample: settings.sample });
    console.log(`  done in ${fmt(seeded.seconds, 1)} s (${fmt(settings.licenses / seeded.seconds)} licenses/s); ${fmt(seeded.keys.length)} keys sampled for the load`);
    const bodies = seeded.keys.map((key) => JSON.stringify({ key }));

    // The machine is shared: a busy neighbour skews every figure, so say how busy it was.
    const [load1 = 0] = os.loadavg();
    console.log(`Machine: ${os.cpus().length} CPUs, load average ${fmt(load1, 2)} before the runs`);
    console.log(
      `Load: autocannon, ${settings.connections} connections, ${settings.warmupSeconds} s warm-up + ${settings.durationSeconds} s measured, ` +
        `one sampled key per request; each server in its own process, one after the other.`,
    );

    let keymint = await start('keymint', keymintEnv);
    const validateBody = await preflight(keymint, bodies, seeded.keys);
    // Stopped while the bare route runs, so the two never share the machine.
    await keymint.stop();

    console.log(`  measuring the bare route…`);
    const bare = await start('bare', { [BARE_BODY_ENV]: validateBody }, profile('bare'));
    const bareAnswer = await post(bare.url + BARE_PATH, bodies[0] as string);
    expectValidation(bareAnswer, 'VALID', 'bare route');
    const bareResult = await measure(bare, BARE_PATH, bodies, (body) => body.includes('"code":"VALID"'));
    await bare.stop();

    console.log(`  measuring ${VALIDATE_PATH}…`);
    keymint = await start('keymint', keymintEnv, profile('keymint'));
    const validateResult = await measure(keymint, VALIDATE_PATH, bodies, (body) => body.includes('"code":"VALID"'));
    await keymint.stop();

    // SQLite only: PostgreSQL has no validation cache, so its run above already read the database every time.
    let uncachedResult: Measurement | null = null;
    if (dialect === 'sqlite') {
      console.log(`  measuring ${VALIDATE_PATH} with the validation cache off…`);
      keymint = await start('keymint', { ...keymintEnv, KEYMINT_VALIDATION_CACHE: '0' }, profile('keymint-uncached'));
      uncachedResult = await measure(keymint, VALIDATE_PATH, bodies, (body) => body.includes('"code":"VALID"'));
      await keymint.stop();
    }

    console.log(`  load average after the runs: ${fmt(os.loadavg()[0] ?? 0, 2)}`);
    const sound = report(dialect, bareResult, validateResult, uncachedResult, {
      bare: Buffer.byteLength(bareAnswer.text),
      validate: Buffer.byteLength(validateBody),
    });
    return sound ? 0 : 1;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await database.drop();
  }
}

// If a step awaits something that can never happen (say, a query queued
// behind a transaction on SQLite's single connection), the event loop drains
// and Node would exit silently with 0, as if the benchmark had run.
let finished = false;
process.on('exit', () => {
  if (finished) return;
  process.stderr.write('bench: stopped before finishing: a step was waiting for something that never happened\n');
  process.exitCode = 1;
});

main().then(
  (code) => {
    finished = true;
    process.exit(code);
  },
  (err: unknown) => {
    finished = true;
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
