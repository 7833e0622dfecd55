import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentJobError } from '../src/jobs/worker.js';
import { dialectUnderTest, startServer, type TestServer, waitFor } from './support/harness.js';


describe('the job outbox and worker', () => {
  let server: TestServer;
  let scope: { accountId: string; env: 'test' };
  const runs = new Map<string, number>();

  beforeAll(async () => {
    server = await startServer();
    scope = { accountId: await server.app.services.accounts.ensureDefaultAccount(), env: 'test' };
    server.app.worker.register('test.count', async (payload) => {
      const { name } = payload as { name: string };
      runs.set(name, (runs.get(name) ?? 0) + 1);
    });
    server.app.worker.register('test.flaky', async (payload, { attempt }) => {
      const { name, failures } = payload as { name: string; failures: number };
      runs.set(name, (runs.get(name) ?? 0) + 1);
      if (attempt <= failures) throw new Error(`attempt ${attempt} failed`);
    });
    server.app.worker.register('test.broken', async () => {
      throw new PermanentJobError('payload refers to nothing');
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const enqueue = (type: string, payload: unknown, options = {}) => server.app.services.jobs.enqueue(server.db.kysely, scope, type, payload, options);
  const jobsOf = async (type: string) => (await server.request('GET', `/v1/jobs?type=${type}&limit=100`)).body.data as any[];

  it('runs an enqueued job once and shows it as succeeded', async () => {
    await enqueue('test.count', { name: 'once' });
    await waitFor(async () => (await jobsOf('test.count')).some((j) => j.state === 'succeeded'));
    expect(runs.get('once')).toBe(1);
    const [job] = await jobsOf('test.count');
    expect(job).toMatchObject({ object: 'job', type: 'test.count', state: 'succeeded', attempts: 1, last_error: null, livemode: false });
  });

  it('retries a failing job with backoff until it succeeds, counting every attempt', async () => {
    await enqueue('test.flaky', { name: 'flaky', failures: 3 });
    await waitFor(async () => (await jobsOf('test.flaky')).some((j) => j.state === 'succeeded'));
    expect(runs.get('flaky')).toBe(4);
    expect((await jobsOf('test.flaky'))[0]).toMatchObject({ attempts: 4, state: 'succeeded' });
  });

  it('declares a job dead after max attempts, and the retry action runs it again', async () => {
    await enqueue('test.flaky', { name: 'doomed', failures: 5 }, { maxAttempts: 3 });
    await waitFor(async () => (await server.request('GET', '/v1/jobs?state=dead')).body.data.some((j: any) => j.type === 'test.flaky'));
    const dead = (await server.request('GET', '/v1/jobs?state=dead')).body.data.find((j: any) => j.type === 'test.flaky');
    expect(dead).toMatchObject({ attempts: 3, last_error: 'attempt 3 failed' });
    expect(runs.get('doomed')).toBe(3);
    const retried = await server.request('POST', `/v1/jobs/${dead.id}/retry`);
    expect(retried.status).toBe(200);
    // A fresh set of three attempts: 1, 2, 3 fail again (failures: 5), so it dies again after three more runs.
    await waitFor(async () => runs.get('doomed') === 6 && (await server.request('GET', `/v1/jobs/${dead.id}`)).body.state === 'dead');
  });

  it('a permanent failure kills the job at once', async () => {
    await enqueue('test.broken', {});
    await waitFor(async () => (await jobsOf('test.broken'))[0]?.state === 'dead');
    expect((await jobsOf('test.broken'))[0]).toMatchObject({ attempts: 1, last_error: 'payload refers to nothing' });
  });

  it('one job per dedupe key, however often it is enqueued', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => enqueue('test.count', { name: 'dedupe' }, { dedupeKey: 'fact:1' })));
    expect(results.filter(Boolean)).toHaveLength(1);
    await waitFor(async () => runs.get('dedupe') === 1);
  });

  it('a job enqueued in a transaction that rolls back never exists', async () => {
    await server.db.kysely
      .transaction()
      .execute(async (trx) => {
        await server.app.services.jobs.enqueue(trx, scope, 'test.count', { name: 'rolled-back' });
        throw new Error('the change failed');
      })
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    expect(runs.get('rolled-back')).toBeUndefined();
  });

  it('a job left running by a worker that died is taken over when its lease lapses', async () => {
    await server.app.worker.stop();
    try {
      await enqueue('test.count', { name: 'orphan' });
      await server.db.kysely
        .updateTable('jobs')
        .set({ state: 'running', attempts: 1, locked_by: 'worker_dead', locked_until_ms: Date.now() - 1 })
        .where('type', '=', 'test.count')
        .where(sql<boolean>`payload like '%orphan%'`)
        .execute();
    } finally {
      server.app.worker.start();
    }
    await waitFor(async () => runs.get('orphan') === 1);
  });

  it('lists jobs by state and refuses bad filters', async () => {
    expect((await server.request('GET', '/v1/jobs?state=exploded')).status).toBe(400);
    expect((await server.request('GET', '/v1/jobs/job_missing')).status).toBe(404);
    expect((await server.request('GET', '/v1/jobs', { key: server.liveKey })).body.data).toHaveLength(0);
  });
});

describe('jobs survive a restart', () => {
  it('a job committed by a process that stopped before running it runs exactly once after restart', async () => {
    const first = await startServer({ worker: { start: false } });
    const accountId = await first.app.services.accounts.ensureDefaultAccount();
    await first.app.services.jobs.enqueue(first.db.kysely, { accountId, env: 'test' }, 'test.count', { name: 'after-restart' });
    let ran = 0;
    // Same database, new process: nothing but the committed row carries the job over.
    const second = await startServer({ replicaOf: first, worker: { start: false } });
    second.app.worker.register('test.count', async () => {
      ran++;
    });
    second.app.worker.start();
    await waitFor(async () => (await second.request('GET', '/v1/jobs?state=succeeded')).body.data.length === 1);
    expect(ran).toBe(1);
    await second.close();
    await first.close();
  });
});

describe.runIf(dialectUnderTest === 'postgres')('two replicas sharing one PostgreSQL database', () => {
  it('run every job exactly once between them', async () => {
    const a = await startServer({ worker: { start: false } });
    const b = await startServer({ replicaOf: a, worker: { start: false } });
    const accountId = await a.app.services.accounts.ensureDefaultAccount();
    const ranBy = new Map<number, string[]>();
    for (const [name, server] of [['a', a], ['b', b]] as const) {
      server.app.worker.register('test.replica', async (payload) => {
        const { n } = payload as { n: number };
        ranBy.set(n, [...(ranBy.get(n) ?? []), name]);
        await new Promise((r) => setTimeout(r, 2));
      });
    }
    await a.db.kysely.transaction().execute(async (trx) => {
      for (let n = 0; n < 300; n++) await a.app.services.jobs.enqueue(trx, { accountId, env: 'test' }, 'test.replica', { n });
    });
    a.app.worker.start();
    b.app.worker.start();
    await waitFor(async () => ranBy.size === 300 && (await a.request('GET', '/v1/jobs?state=pending')).body.data.length === 0, 30_000);
    await new Promise((r) => setTimeout(r, 200));
    expect([...ranBy.values()].every((who) => who.length === 1)).toBe(true);
    const shares = [...ranBy.values()].flat();
    // Both replicas took part.
    expect(shares.filter((w) => w === 'a').length).toBeGreaterThan(0);
    expect(shares.filter((w) => w === 'b').length).toBeGreaterThan(0);
    await b.close();
    await a.close();
  });
});
