import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ChangeListener, ChangeWatch } from '../../src/db/change-watch.js';
import { deferredChildLoggers } from '../../src/http/request-logger.js';
import { ValidationCache, type ValidationInputs } from '../../src/licensing/validation-cache.js';

const NOW = Date.UTC(2026, 10, 24, 12) / 1000;

/** A change watch driven by the test: `change()` is a write reported by the database. */
function testWatch() {
  const listeners = new Set<ChangeListener>();
  let working = true;
  const watch: ChangeWatch = {
    subscribe: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    sync: () => working,
    reset: () => undefined,
  };
  return {
    watch,
    change: (licenseId: string | null) => listeners.forEach((l) => l(licenseId)),
    setWorking: (w: boolean) => (working = w),
  };
}

const inputs = (licenseId: string, overrides: Partial<ValidationInputs> = {}) =>
  ({ licenseId, computedAt: NOW, freshUntil: Infinity, ...overrides }) as ValidationInputs;

describe('ValidationCache', () => {
  it('keeps nothing read before a change reported while the read was in flight', () => {
    const { watch, change } = testWatch();
    const cache = new ValidationCache(watch, 100);
    const generation = cache.generation();
    change('lic_1'); // the write lands between the read and set()
    cache.set('KM1.a.b', null, inputs('lic_1'), generation);
    expect(cache.get('KM1.a.b', null, NOW)).toBeUndefined();
    // A read started after the change is kept.
    cache.set('KM1.a.b', null, inputs('lic_1'), cache.generation());
    expect(cache.get('KM1.a.b', null, NOW)?.licenseId).toBe('lic_1');
  });

  it("forgets every fingerprint's entry of a changed license, and only that license's", () => {
    const { watch, change } = testWatch();
    const cache = new ValidationCache(watch, 100);
    cache.set('KM1.a.b', null, inputs('lic_1'), cache.generation());
    cache.set('KM1.a.b', 'pc', inputs('lic_1'), cache.generation());
    cache.set('KM1.c.d', null, inputs('lic_2'), cache.generation());
    change('lic_1');
    expect(cache.get('KM1.a.b', null, NOW)).toBeUndefined();
    expect(cache.get('KM1.a.b', 'pc', NOW)).toBeUndefined();
    expect(cache.get('KM1.c.d', null, NOW)?.licenseId).toBe('lic_2');
    change(null);
    expect(cache.get('KM1.c.d', null, NOW)).toBeUndefined();
  });

  it('answers from memory only inside [computedAt, freshUntil)', () => {
    const { watch } = testWatch();
    const cache = new ValidationCache(watch, 100);
    cache.set('KM1.a.b', null, inputs('lic_1', { freshUntil: NOW + 10 }), cache.generation());
    expect(cache.get('KM1.a.b', null, NOW - 1)).toBeUndefined();
    cache.set('KM1.a.b', null, inputs('lic_1', { freshUntil: NOW + 10 }), cache.generation());
    expect(cache.get('KM1.a.b', null, NOW + 9)).toBeDefined();
    expect(cache.get('KM1.a.b', null, NOW + 10)).toBeUndefined();
  });

  it('keeps and answers nothing while changes cannot be watched', () => {
    const { watch, setWorking } = testWatch();
    const cache = new ValidationCache(watch, 100);
    setWorking(false);
    cache.set('KM1.a.b', null, inputs('lic_1'), cache.generation());
    setWorking(true);
    expect(cache.get('KM1.a.b', null, NOW)).toBeUndefined();
    cache.set('KM1.a.b', null, inputs('lic_1'), cache.generation());
    setWorking(false);
    expect(cache.get('KM1.a.b', null, NOW)).toBeUndefined();
  });

  it('keeps no answer for a fingerprint that is not an activated device', () => {
    const { watch } = testWatch();
    const cache = new ValidationCache(watch, 100);
    cache.set('KM1.a.b', 'unknown', inputs('lic_1', { deviceView: null }), cache.generation());
    expect(cache.get('KM1.a.b', 'unknown', NOW)).toBeUndefined();
  });

  it('stays within its size bound', () => {
    const { watch } = testWatch();
    const cache = new ValidationCache(watch, 3);
    for (let i = 0; i < 10; i++) cache.set(`KM1.k${i}.s`, null, inputs(`lic_${i}`), cache.generation());
    expect(cache.size).toBe(3);
    expect(cache.get('KM1.k9.s', null, NOW)?.licenseId).toBe('lic_9');
    expect(cache.get('KM1.k0.s', null, NOW)).toBeUndefined();
  });

  it("counts each device's answer toward the bound, not just each key", () => {
    const { watch } = testWatch();
    const cache = new ValidationCache(watch, 10);
    const device = { deviceView: {} } as Partial<ValidationInputs>;
    for (let i = 0; i < 50; i++) cache.set('KM1.many.devices', `fp-${i}`, inputs('lic_1', device), cache.generation());
    expect(cache.size).toBeLessThanOrEqual(10);
    cache.set('KM1.other.key', null, inputs('lic_2'), cache.generation());
    expect(cache.size).toBeLessThanOrEqual(10);
    expect(cache.get('KM1.other.key', null, NOW)?.licenseId).toBe('lic_2');
  });
});

describe('per-request loggers', () => {
  function capture(level: string) {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    return { logger: pino({ level }, stream), lines };
  }

  it("write at enabled levels with the request's bindings, and nothing at disabled ones", async () => {
    const { logger, lines } = capture('warn');
    const log = deferredChildLoggers(logger, { reqId: 'req_1' }, {});
    log.info('not written');
    log.debug('not written either');
    log.warn({ detail: 1 }, 'written');
    log.error('also written');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => [l.msg, l.reqId])).toEqual([
      ['written', 'req_1'],
      ['also written', 'req_1'],
    ]);
    expect(lines[0]!.detail).toBe(1);
    expect(log.level).toBe('warn');
  });

  it("honour a level given to the request's logger (a route's logLevel), as pino's own child does", async () => {
    const { logger, lines } = capture('info');
    const log = deferredChildLoggers(logger, { reqId: 'req_3' }, { level: 'debug' });
    log.debug('route-level debug line');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => [l.msg, l.reqId])).toEqual([['route-level debug line', 'req_3']]);
    expect(log.level).toBe('debug');
  });

  it('follow a level raised on the request logger alone', async () => {
    const { logger, lines } = capture('warn');
    const log = deferredChildLoggers(logger, { reqId: 'req_2' }, {});
    log.level = 'info';
    log.info('now written');
    logger.info('parent still at warn');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((l) => l.msg)).toEqual(['now written']);
  });
});
