import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedLicense, startServer, type Response, type TestServer } from './support/harness.js';

/**
 * The API's edges as a client meets them: bad input, authentication, rate
 * limits, pagination and the admin actions on licenses. Every failure must
 * come back in API.md's error shape, never as a 500.
 */

const ERROR_TYPES = ['invalid_request_error', 'authentication_error', 'permission_error', 'not_found_error', 'conflict_error', 'rate_limit_error', 'api_error'];

/** Asserts API.md's error shape and that the `Request-Id` header names the same request; returns the error. */
function expectError(res: Response, status: number, type: string, code?: string, param?: string | null) {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(res.body).sort()).toEqual(['error']);
  const error = res.body.error;
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'request_id', 'type']);
  expect(ERROR_TYPES).toContain(error.type);
  expect(error.type).toBe(type);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  expect(error.request_id).toMatch(/^req_/);
  expect(res.headers.get('request-id')).toBe(error.request_id);
  if (code !== undefined) expect(error.code).toBe(code);
  if (param !== undefined) expect(error.param).toBe(param);
  return error as { type: string; code: string | null; message: string; param: string | null; request_id: string };
}

/** A calendar month later in UTC, for a day of the month every month has. */
function plusOneMonth(unix: number): number {
  const d = new Date(unix * 1000);
  d.setUTCMonth(d.getUTCMonth() + 1);
  return Math.floor(d.getTime() / 1000);
}

describe('bad input', () => {
  let server: TestServer;
  let productsBefore: string[];
  let eventsBefore: string[];
  let policyId: string;
  let licenseId: string;

  const ids = async (path: string) => ((await server.request('GET', `${path}?limit=100`)).body.data as { id: string }[]).map((o) => o.id);

  beforeAll(async () => {
    server = await startServer();
    const { policy, license } = await seedLicense(server);
    policyId = policy.id;
    licenseId = license.id;
    productsBefore = await ids('/v1/products');
    eventsBefore = await ids('/v1/events');
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 400 body_invalid_json for malformed JSON', async () => {
    for (const rawBody of ['{"name":', '{name: "x"}', "{'name':'x'}", '{"name":"x",}', 'nul']) {
      expectError(await server.request('POST', '/v1/products', { rawBody }), 400, 'invalid_request_error', 'body_invalid_json', null);
    }
  });

  it('answers 400 on the public license API for malformed JSON, without credentials', async () => {
    expectError(await server.request('POST', '/v1/licenses/validate', { key: null, rawBody: '{"key":"KM1.' }), 400, 'invalid_request_error', 'body_invalid_json');
  });

  it('answers 400 parameter_invalid naming the parameter for a value of the wrong type, without coercing it', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/policies', { product: 'x', name: 'P', license_type: 'perpetual', max_devices: '3' }, 'max_devices'],
      ['/v1/policies', { product: 'x', name: 'P', license_type: 'perpetual', max_devices: 2.5 }, 'max_devices'],
      ['/v1/policies', { product: 'x', name: 'P', license_type: 'lifetime' }, 'license_type'],
      ['/v1/policies', { product: 'x', name: 'P', license_type: 'timed', duration: '30 days' }, 'duration'],
      ['/v1/products', { name: 'P', perpetual_fallback: 'yes' }, 'perpetual_fallback'],
      ['/v1/products', { name: 'P', perpetual_fallback: 1 }, 'perpetual_fallback'],
      ['/v1/products', { name: 42 }, 'name'],
      ['/v1/products', { name: 'P', metadata: { plan: 3 } }, 'metadata[plan]'],
      ['/v1/products', { name: 'P', metadata: ['a'] }, 'metadata'],
      ['/v1/products', { name: 'P', code: 'Has Spaces' }, 'code'],
      ['/v1/licenses', { policy: 'x', expires_at: 'tomorrow' }, 'expires_at'],
      ['/v1/licenses', { policy: 'x', customer: { email: 'not-an-email' } }, 'customer[email]'],
      ['/v1/licenses/validate', { key: 12345 }, 'key'],
      ['/v1/licenses/validate', { key: 'KM1.x.y', entitlements: 'pro' }, 'entitlements'],
      ['/v1/licenses/activate', { key: 'KM1.x.y', fingerprint: { id: 1 } }, 'fingerprint'],
    ];
    for (const [path, body, param] of cases) {
      const res = await server.request('POST', path, { body });
      const error = expectError(res, 400, 'invalid_request_error', 'parameter_invalid', param);
      expect(error.message).toContain(param);
    }
  });

  it('answers 400 parameter_unknown naming an unknown field, at the top level and nested', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/products', { name: 'P', foo: 1 }, 'foo'],
      ['/v1/products', { name: 'P', Name: 'P' }, 'Name'],
      ['/v1/policies', { product: 'x', name: 'P', license_type: 'perpetual', seats: 3 }, 'seats'],
      ['/v1/licenses', { policy: policyId, customer: { email: 'a@example.com', foo: 'bar' } }, 'customer[foo]'],
      ['/v1/licenses/validate', { key: 'KM1.x.y', extra: true }, 'extra'],
      ['/v1/licenses/activate', { key: 'KM1.x.y', fingerprint: 'f', device: 'x' }, 'device'],
    ];
    for (const [path, body, param] of cases) {
      const error = expectError(await server.request('POST', path, { body }), 400, 'invalid_request_error', 'parameter_unknown', param);
      expect(error.message).toContain(param);
    }
  });

  it('answers 400 parameter_missing naming a missing required field', async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['/v1/products', {}, 'name'],
      ['/v1/products', { code: 'editor' }, 'name'],
      ['/v1/policies', { name: 'P', license_type: 'perpetual' }, 'product'],
      ['/v1/licenses', {}, 'policy'],
      ['/v1/licenses', { policy: policyId, customer: { name: 'No Email' } }, 'customer[email]'],
      ['/v1/licenses/activate', { key: 'KM1.x.y' }, 'fingerprint'],
    ];
    for (const [path, body, param] of cases) {
      expectError(await server.request('POST', path, { body }), 400, 'invalid_request_error', 'parameter_missing', param);
    }
  });

  it('answers 400 for an empty string where a value is required, after trimming', async () => {
    expectError(await server.request('POST', '/v1/products', { body: { name: '   ' } }), 400, 'invalid_request_error', 'parameter_invalid', 'name');
  });

  it('answers 413 for a body over 64 KiB, on admin and public routes', async () => {
    const big = 'x'.repeat(65 * 1024);
    expectError(await server.request('POST', '/v1/products', { body: { name: 'P', metadata: { big } } }), 413, 'invalid_request_error');
    expectError(await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: big } }), 413, 'invalid_request_error');
  });

  it('answers 415 for a body that is not JSON', async () => {
    const cases: [string, string][] = [
      ['text/plain', '{"name":"P"}'],
      ['application/x-www-form-urlencoded', 'name=P'],
      ['application/xml', '<product><name>P</name></product>'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nP\r\n--x--'],
    ];
    for (const [contentType, rawBody] of cases) {
      const res = await server.request('POST', '/v1/products', { rawBody, headers: { 'content-type': contentType } });
      expectError(res, 415, 'invalid_request_error');
    }
    const pub = await server.request('POST', '/v1/licenses/validate', { key: null, rawBody: '{"key":"x"}', headers: { 'content-type': 'text/plain' } });
    expectError(pub, 415, 'invalid_request_error');
  });

  it('accepts JSON with a charset parameter', async () => {
    const res = await server.request('POST', '/v1/licenses/validate', {
      key: null,
      rawBody: '{"key":"nonsense"}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(res.status).toBe(200);
    expect(res.body.code).toBe('NOT_FOUND');
  });

  it('treats an empty body sent as JSON as no body', async () => {
    const json = { 'content-type': 'application/json' };
    expectError(await server.request('POST', '/v1/products', { rawBody: '', headers: json }), 400, 'invalid_request_error', 'parameter_missing', 'name');
    const suspended = await server.request('POST', `/v1/licenses/${licenseId}/suspend`, { rawBody: '', headers: json });
    expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
    expect(suspended.body.status).toBe('suspended');
    expect((await server.request('POST', `/v1/licenses/${licenseId}/reinstate`, { rawBody: '', headers: json })).body.status).toBe('active');
    // Those two actions wrote events; they are not part of the "nothing created" check below.
    eventsBefore = await ids('/v1/events');
  });

  it('answers 400 for a JSON body that is not an object: an array, null, a string, a number', async () => {
    for (const rawBody of ['[]', '[{"name":"P"}]', 'null', '"P"', '42', 'true']) {
      const res = await server.request('POST', '/v1/products', { rawBody });
      expectError(res, 400, 'invalid_request_error');
      const pub = await server.request('POST', '/v1/licenses/validate', { key: null, rawBody });
      expectError(pub, 400, 'invalid_request_error');
    }
  });

  it('answers 400 for prototype-polluting JSON', async () => {
    const res = await server.request('POST', '/v1/products', { rawBody: '{"name":"P","__proto__":{"admin":true}}' });
    expectError(res, 400, 'invalid_request_error');
    const ctor = await server.request('POST', '/v1/products', { rawBody: '{"name":"P","constructor":{"prototype":{"admin":true}}}' });
    expectError(ctor, 400, 'invalid_request_error');
  });

  it('answers 400 for absurdly long strings, naming the parameter', async () => {
    const long = 'a'.repeat(10_000);
    expectError(await server.request('POST', '/v1/products', { body: { name: long } }), 400, 'invalid_request_error', 'parameter_invalid', 'name');
    expectError(await server.request('POST', '/v1/products', { body: { name: 'P', metadata: { [long.slice(0, 41)]: 'v' } } }), 400, 'invalid_request_error', 'parameter_invalid', 'metadata');
    expectError(await server.request('POST', '/v1/products', { body: { name: 'P', metadata: { '': 'v' } } }), 400, 'invalid_request_error', 'parameter_invalid', 'metadata');
    expectError(await server.request('POST', '/v1/products', { body: { name: 'P', metadata: { k: long.slice(0, 501) } } }), 400, 'invalid_request_error', 'parameter_invalid', 'metadata[k]');
    expectError(await server.request('POST', '/v1/licenses', { body: { policy: long } }), 400, 'invalid_request_error', 'parameter_invalid', 'policy');
    expectError(await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: 'KM1.' + long } }), 400, 'invalid_request_error', 'parameter_invalid', 'key');
    expectError(await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: 'KM1.x.y', nonce: long } }), 400, 'invalid_request_error', 'parameter_invalid', 'nonce');
    expectError(await server.request('GET', `/v1/products/${'p'.repeat(80)}`), 400, 'invalid_request_error', 'parameter_invalid', 'id');
    expectError(await server.request('GET', `/v1/products/${'p'.repeat(5_000)}`), 414, 'invalid_request_error');
    expectError(await server.request('POST', `/v1/licenses/${'l'.repeat(5_000)}/suspend`), 414, 'invalid_request_error');
    expectError(await server.request('GET', `/v1/products?starting_after=${'p'.repeat(5_000)}`), 400, 'invalid_request_error', 'parameter_invalid', 'starting_after');
  });

  it('answers 400 for too many metadata keys or entitlements', async () => {
    const metadata = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
    expectError(await server.request('POST', '/v1/products', { body: { name: 'P', metadata } }), 400, 'invalid_request_error', 'parameter_invalid', 'metadata');
    const entitlements = Array.from({ length: 101 }, (_, i) => `e${i}`);
    expectError(await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: 'KM1.x.y', entitlements } }), 400, 'invalid_request_error', 'parameter_invalid', 'entitlements');
  });

  it('answers 400 for deeply nested JSON', async () => {
    const deepObject = '{"name":"P","metadata":' + '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000) + '}';
    const deepArray = '['.repeat(30_000) + ']'.repeat(30_000);
    for (const rawBody of [deepObject, deepArray]) {
      expectError(await server.request('POST', '/v1/products', { rawBody }), 400, 'invalid_request_error', 'body_invalid');
      expectError(await server.request('POST', '/v1/licenses/validate', { key: null, rawBody }), 400, 'invalid_request_error', 'body_invalid');
    }
  });

  it('answers 400 naming the query parameter for an invalid limit', async () => {
    for (const limit of ['0', '101', '1000', 'abc', '-1', '2.5', '']) {
      const res = await server.request('GET', `/v1/products?limit=${limit}`);
      const error = expectError(res, 400, 'invalid_request_error', 'parameter_invalid', 'limit');
      expect(error.message).toContain('limit');
    }
    expect((await server.request('GET', '/v1/products?limit=1')).status).toBe(200);
    expect((await server.request('GET', '/v1/products?limit=100')).status).toBe(200);
  });

  it('answers 400 parameter_unknown for an unknown query parameter, and for an invalid filter value', async () => {
    expectError(await server.request('GET', '/v1/products?sort=name'), 400, 'invalid_request_error', 'parameter_unknown', 'sort');
    expectError(await server.request('GET', '/v1/licenses?status=deleted'), 400, 'invalid_request_error', 'parameter_invalid', 'status');
  });

  it('answers 400 for a URL that does not decode', async () => {
    expectError(await server.request('GET', '/v1/products/%E0%A4%A'), 400, 'invalid_request_error');
    expectError(await server.request('GET', '/v1/products/%zz'), 400, 'invalid_request_error');
  });

  it('answers 404 invalid_request_error for an unknown route, with or without a key', async () => {
    for (const [method, path, key] of [
      ['GET', '/v1/nothing', undefined],
      ['GET', '/v1/nothing', null],
      ['POST', '/v1/products/x/y/z', undefined],
      ['DELETE', '/v1/products', undefined],
      ['GET', '/', null],
    ] as const) {
      expectError(await server.request(method, path, { key }), 404, 'invalid_request_error', 'route_not_found');
    }
  });

  it('answers 404 not_found_error naming the parameter for an unknown id', async () => {
    expectError(await server.request('GET', '/v1/licenses/lic_nope'), 404, 'not_found_error', 'resource_missing', 'id');
    expectError(await server.request('POST', '/v1/licenses/lic_nope/suspend'), 404, 'not_found_error', 'resource_missing', 'id');
    expectError(await server.request('POST', '/v1/licenses', { body: { policy: 'pol_nope' } }), 404, 'not_found_error', 'resource_missing', 'policy');
    expectError(await server.request('POST', '/v1/policies', { body: { product: 'pdt_nope', name: 'P', license_type: 'perpetual' } }), 404, 'not_found_error', 'resource_missing', 'product');
  });

  it('answers 400 for a body on an action that takes none, or a bad one on renew, and leaves the license alone', async () => {
    expectError(await server.request('POST', `/v1/licenses/${licenseId}/suspend`, { body: { reason: 'x' } }), 400, 'invalid_request_error', 'parameter_unknown', 'reason');
    expectError(await server.request('POST', `/v1/licenses/${licenseId}/suspend`, { rawBody: '[]' }), 400, 'invalid_request_error', 'body_invalid');
    expectError(await server.request('POST', `/v1/licenses/${licenseId}/renew`, { body: { duration: 'forever' } }), 400, 'invalid_request_error', 'parameter_invalid', 'duration');
    expect((await server.request('GET', `/v1/licenses/${licenseId}`)).body.status).toBe('active');
  });

  it('carries a Request-Id header on every response, success or failure', async () => {
    const ok = await server.request('GET', '/v1/products');
    expect(ok.headers.get('request-id')).toMatch(/^req_/);
    const pub = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: 'x' } });
    expect(pub.headers.get('request-id')).toMatch(/^req_/);
    const health = await server.request('GET', '/health', { key: null });
    expect(health.headers.get('request-id')).toMatch(/^req_/);
    expect(ok.headers.get('request-id')).not.toBe(pub.headers.get('request-id'));
  });

  it('created nothing for any rejected request', async () => {
    expect(await ids('/v1/products')).toEqual(productsBefore);
    expect(await ids('/v1/events')).toEqual(eventsBefore);
    expect(await ids('/v1/licenses')).toEqual([licenseId]);
    expect(await ids('/v1/customers')).toEqual([]);
  });

  it('ignores a client-sent Request-Id', async () => {
    const res = await server.request('GET', '/v1/nothing', { headers: { 'request-id': 'req_spoofed', 'x-request-id': 'req_spoofed' } });
    expect(res.headers.get('request-id')).not.toBe('req_spoofed');
    expect(res.body.error.request_id).toBe(res.headers.get('request-id'));
  });
});

describe('authentication', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  const unknownTestKey = 'km_test_' + 'A'.repeat(40);

  it('answers 401 authentication_error without a usable secret key, on every admin route', async () => {
    const routes: [string, string][] = [
      ['GET', '/v1/products'],
      ['POST', '/v1/products'],
      ['GET', '/v1/licenses/lic_x'],
      ['POST', '/v1/licenses/lic_x/revoke'],
      ['GET', '/v1/signing_keys'],
      ['GET', '/v1/events'],
      ['DELETE', '/v1/devices/dev_x'],
    ];
    for (const [method, path] of routes) {
      const body = method === 'POST' ? { name: 'P' } : undefined;
      expectError(await server.request(method, path, { key: null, body }), 401, 'authentication_error');
      for (const authorization of [
        'Basic dXNlcjpwYXNz',
        'Bearer',
        'Bearer ',
        server.testKey, // without "Bearer"
        `Bearer ${server.testKey} extra`,
        `Token ${server.testKey}`,
      ]) {
        expectError(await server.request(method, path, { key: null, body, headers: { authorization } }), 401, 'authentication_error');
      }
      for (const key of [unknownTestKey, 'km_live_' + 'B'.repeat(40), 'km_test_short', 'sk_test_' + 'A'.repeat(40), server.testKey + 'x', server.testKey.slice(0, -1)]) {
        expectError(await server.request(method, path, { key, body }), 401, 'authentication_error');
      }
    }
    expect((await server.request('GET', '/v1/products')).status).toBe(200);
  });

  it('accepts the scheme case-insensitively', async () => {
    expect((await server.request('GET', '/v1/products', { key: null, headers: { authorization: `bearer ${server.testKey}` } })).status).toBe(200);
  });

  it('answers 401 for a revoked secret key', async () => {
    const accountId = await server.app.services.accounts.ensureDefaultAccount();
    const created = await server.app.services.accounts.createApiKey(accountId, 'test', 'to revoke');
    expect((await server.request('GET', '/v1/products', { key: created.secret })).status).toBe(200);
    await server.db.kysely.updateTable('api_keys').set({ revoked_at: server.clock.now() }).where('id', '=', created.id).execute();
    expectError(await server.request('GET', '/v1/products', { key: created.secret }), 401, 'authentication_error');
  });

  it('answers 401 before looking at the body, so a bad body does not reveal anything', async () => {
    expectError(await server.request('POST', '/v1/products', { key: null, rawBody: '{"name":' }), 401, 'authentication_error');
    expectError(await server.request('POST', '/v1/products', { key: unknownTestKey, body: { foo: 1 } }), 401, 'authentication_error');
  });

  it('never echoes the presented key', async () => {
    const res = await server.request('GET', '/v1/products', { key: unknownTestKey });
    expect(JSON.stringify(res.body)).not.toContain(unknownTestKey);
  });

  it('does not require a secret key on the public license API, and ignores one that is wrong', async () => {
    const { license } = await seedLicense(server);
    expect((await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } })).body.code).toBe('VALID');
    expect((await server.request('POST', '/v1/licenses/validate', { key: unknownTestKey, body: { key: license.key } })).body.code).toBe('VALID');
    expect((await server.request('GET', '/health', { key: null })).status).toBe(200);
  });
});

describe('CORS on the public license API', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers a browser preflight, allowing the signature header', async () => {
    const res = await fetch(`${server.url}/v1/licenses/validate`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, keymint-accept-signature' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('keymint-accept-signature');
  });

  it('lets a browser read the signature, request id and Retry-After headers of an answer', async () => {
    const res = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: 'nonsense' }, headers: { origin: 'https://app.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-expose-headers')?.split(/,\s*/)).toEqual(['Keymint-Signature', 'Request-Id', 'Retry-After']);
  });
});

describe('rate limiting of the public license API', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer({ rateLimit: 5 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('answers 429 rate_limit_error with Retry-After once a key exceeds the limit; admin routes are not limited', async () => {
    const { license } = await seedLicense(server);
    for (let i = 0; i < 5; i++) {
      const res = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } });
      expect(res.status).toBe(200);
      expect(res.body.code).toBe('VALID');
    }
    const limited = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } });
    expectError(limited, 429, 'rate_limit_error');
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // The other calls of the public license API share the limit.
    expectError(await server.request('POST', '/v1/licenses/activate', { key: null, body: { key: license.key, fingerprint: 'f' } }), 429, 'rate_limit_error');

    // Admin routes are authenticated by a secret key and never limited.
    for (let i = 0; i < 20; i++) {
      expect((await server.request('GET', `/v1/licenses/${license.id}`)).status).toBe(200);
    }
    expect((await server.request('POST', `/v1/licenses/${license.id}/suspend`)).status).toBe(200);
  });
});

describe('pagination', () => {
  let server: TestServer;
  let created: string[];

  beforeAll(async () => {
    server = await startServer();
    created = [];
    for (let i = 0; i < 25; i++) {
      const res = await server.request('POST', '/v1/products', { body: { name: `Product ${i}` } });
      expect(res.status).toBe(200);
      created.push(res.body.id);
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  const page = async (query: string) => {
    const res = await server.request('GET', `/v1/products?${query}`);
    expect(res.status).toBe(200);
    expect(res.body.object).toBe('list');
    return { ids: (res.body.data as { id: string }[]).map((p) => p.id), has_more: res.body.has_more as boolean };
  };

  it('lists newest first with a default limit of 10', async () => {
    const first = await page('');
    expect(first.ids).toEqual([...created].reverse().slice(0, 10));
    expect(first.has_more).toBe(true);
  });

  it('walks every page with starting_after, without gaps or duplicates', async () => {
    const p1 = await page('limit=10');
    expect(p1.ids).toHaveLength(10);
    expect(p1.has_more).toBe(true);
    const p2 = await page(`limit=10&starting_after=${p1.ids.at(-1)}`);
    expect(p2.ids).toHaveLength(10);
    expect(p2.has_more).toBe(true);
    const p3 = await page(`limit=10&starting_after=${p2.ids.at(-1)}`);
    expect(p3.ids).toHaveLength(5);
    expect(p3.has_more).toBe(false);
    expect([...p1.ids, ...p2.ids, ...p3.ids]).toEqual([...created].reverse());

    const past = await page(`limit=10&starting_after=${p3.ids.at(-1)}`);
    expect(past).toEqual({ ids: [], has_more: false });
  });

  it('walks back with ending_before, still newest first', async () => {
    const newestFirst = [...created].reverse();
    const last = await page(`limit=10&starting_after=${newestFirst[19]}`);
    expect(last.ids).toEqual(newestFirst.slice(20));
    const middle = await page(`limit=10&ending_before=${last.ids[0]}`);
    expect(middle.ids).toEqual(newestFirst.slice(10, 20));
    expect(middle.has_more).toBe(true);
    const first = await page(`limit=10&ending_before=${middle.ids[0]}`);
    expect(first.ids).toEqual(newestFirst.slice(0, 10));
    expect(first.has_more).toBe(false);
    const partial = await page(`limit=10&ending_before=${newestFirst[3]}`);
    expect(partial).toEqual({ ids: newestFirst.slice(0, 3), has_more: false });
  });

  it('returns everything in one page with limit=100', async () => {
    const all = await page('limit=100');
    expect(all.ids).toEqual([...created].reverse());
    expect(all.has_more).toBe(false);
  });
});

describe('admin actions on licenses', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  const events = async (query: string) => {
    const res = await server.request('GET', `/v1/events?${query}`);
    expect(res.status).toBe(200);
    return res.body.data as { id: string; object: string; type: string; created: number; livemode: boolean; data: { object: any } }[];
  };

  it('writes an event for each of suspend, reinstate, revoke and renew', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d' } });
    const steps: [string, string, string][] = [
      ['suspend', 'license.suspended', 'suspended'],
      ['reinstate', 'license.reinstated', 'active'],
      ['renew', 'license.renewed', 'active'],
      ['revoke', 'license.revoked', 'revoked'],
    ];
    for (const [action, type, status] of steps) {
      const res = await server.request('POST', `/v1/licenses/${license.id}/${action}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body).toMatchObject({ id: license.id, object: 'license', status });
      const [latest] = await events(`object=${license.id}&limit=1`);
      expect(latest).toMatchObject({ object: 'event', type, livemode: false, data: { object: { id: license.id, object: 'license', status } } });
      expect(latest?.id).toMatch(/^[a-z]+_/);
    }
    const all = await events(`object=${license.id}`);
    expect(all.map((e) => e.type)).toEqual(['license.revoked', 'license.renewed', 'license.reinstated', 'license.suspended', 'license.created']);
  });

  it('filters events by type, and by a family with `license.*`', async () => {
    const a = (await seedLicense(server)).license;
    const b = (await seedLicense(server)).license;
    await server.request('POST', `/v1/licenses/${a.id}/suspend`);
    await server.request('POST', `/v1/licenses/${b.id}/suspend`);
    const suspended = await events('type=license.suspended&limit=100');
    expect(suspended.length).toBeGreaterThanOrEqual(2);
    expect(suspended.every((e) => e.type === 'license.suspended')).toBe(true);
    expect(suspended.map((e) => e.data.object.id)).toEqual(expect.arrayContaining([a.id, b.id]));
    const family = await events('type=license.*&limit=100');
    expect(new Set(family.map((e) => e.type))).toEqual(new Set(['license.created', 'license.suspended', 'license.reinstated', 'license.renewed', 'license.revoked']));
    expect(await events('type=license.nothing')).toEqual([]);
  });

  it('answers 409 conflict_error when reinstating, suspending or renewing a revoked license', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d' } });
    expect((await server.request('POST', `/v1/licenses/${license.id}/revoke`)).status).toBe(200);
    const before = await events(`object=${license.id}`);
    for (const action of ['reinstate', 'suspend', 'renew']) {
      expectError(await server.request('POST', `/v1/licenses/${license.id}/${action}`), 409, 'conflict_error', 'license_revoked');
    }
    expect((await server.request('GET', `/v1/licenses/${license.id}`)).body.status).toBe('revoked');
    expect(await events(`object=${license.id}`)).toEqual(before);
  });

  it('treats a repeated action as a no-op without a second event', async () => {
    const { license } = await seedLicense(server);
    await server.request('POST', `/v1/licenses/${license.id}/suspend`);
    const again = await server.request('POST', `/v1/licenses/${license.id}/suspend`);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('suspended');
    expect((await events(`object=${license.id}&type=license.suspended`)).length).toBe(1);
  });

  it("renews a timed license by its policy's duration from the current expiry, moving the grace period along", async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d', grace_period: '3d' } });
    expect(license.expires_at).toBe(server.clock.now() + 30 * 86_400);
    server.clock.advance(10 * 86_400);
    try {
      const renewed = await server.request('POST', `/v1/licenses/${license.id}/renew`);
      expect(renewed.status).toBe(200);
      expect(renewed.body.expires_at).toBe(license.expires_at + 30 * 86_400);
      expect(renewed.body.grace_ends_at).toBe(renewed.body.expires_at + 3 * 86_400);
      const validation = await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } });
      expect(validation.body.license.expires_at).toBe(renewed.body.expires_at);
      // The key is for life: renewing never re-issues it.
      expect(renewed.body.key).toBe(license.key);
    } finally {
      server.clock.advance(-10 * 86_400);
    }
  });

  it('renews by an explicit duration of one calendar month', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '1y' } });
    const expiresAt = Date.UTC(2031, 0, 15, 12) / 1000;
    expect((await server.request('POST', `/v1/licenses/${license.id}`, { body: { expires_at: expiresAt } })).status).toBe(200);
    const renewed = await server.request('POST', `/v1/licenses/${license.id}/renew`, { body: { duration: '1m' } });
    expect(renewed.status).toBe(200);
    expect(renewed.body.expires_at).toBe(plusOneMonth(expiresAt));
    expect(renewed.body.expires_at).toBe(Date.UTC(2031, 1, 15, 12) / 1000);
  });

  it('brings an expired license back to active by renewing it', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d' } });
    const start = server.clock.now();
    server.clock.advance(40 * 86_400);
    try {
      expect((await server.request('GET', `/v1/licenses/${license.id}`)).body.status).toBe('expired');
      const renewed = await server.request('POST', `/v1/licenses/${license.id}/renew`);
      expect(renewed.body.status).toBe('active');
      expect(renewed.body.expires_at).toBeGreaterThan(server.clock.now());
      expect((await server.request('POST', '/v1/licenses/validate', { key: null, body: { key: license.key } })).body.code).toBe('VALID');
    } finally {
      server.clock.set(start);
    }
  });

  it('moves grace_ends_at along when expires_at is changed by hand', async () => {
    const { license } = await seedLicense(server, { policy: { license_type: 'timed', duration: '30d', grace_period: '7d' } });
    const expiresAt = server.clock.now() + 90 * 86_400;
    const updated = await server.request('POST', `/v1/licenses/${license.id}`, { body: { expires_at: expiresAt } });
    expect(updated.status).toBe(200);
    expect(updated.body.expires_at).toBe(expiresAt);
    expect(updated.body.grace_ends_at).toBe(expiresAt + 7 * 86_400);
  });

  it('filters GET /v1/licenses by status, email, product and customer', async () => {
    const product = (await server.request('POST', '/v1/products', { body: { name: 'Filtered', code: 'filtered' } })).body;
    const policy = (await server.request('POST', '/v1/policies', { body: { product: product.id, name: 'Std', license_type: 'timed', duration: '30d' } })).body;
    const create = async (body: Record<string, unknown>) => (await server.request('POST', '/v1/licenses', { body: { policy: policy.id, ...body } })).body;
    const alice1 = await create({ customer: { email: 'Alice@Example.com', name: 'Alice' } });
    const alice2 = await create({ customer: { email: 'alice@example.com' } });
    const bob = await create({ customer: { email: 'bob@example.com' } });
    const anonymous = await create({});
    const expired = await create({ expires_at: server.clock.now() - 1 });
    const other = (await seedLicense(server, { license: { customer: { email: 'alice@example.com' } } })).license;
    await server.request('POST', `/v1/licenses/${alice2.id}/suspend`);
    await server.request('POST', `/v1/licenses/${bob.id}/revoke`);
    expect(alice1.customer).toBe(alice2.customer);

    const list = async (query: string) => {
      const res = await server.request('GET', `/v1/licenses?limit=100&${query}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return (res.body.data as { id: string }[]).map((l) => l.id);
    };
    expect(await list(`product=${product.id}`)).toEqual([expired.id, anonymous.id, bob.id, alice2.id, alice1.id]);
    expect(await list('product=filtered')).toEqual([expired.id, anonymous.id, bob.id, alice2.id, alice1.id]);
    expect(await list(`product=${product.id}&status=active`)).toEqual([anonymous.id, alice1.id]);
    expect(await list(`product=${product.id}&status=suspended`)).toEqual([alice2.id]);
    expect(await list(`product=${product.id}&status=revoked`)).toEqual([bob.id]);
    expect(await list(`product=${product.id}&status=expired`)).toEqual([expired.id]);
    expect(await list(`product=${product.id}&status=fallback`)).toEqual([]);
    expect(await list('email=alice@example.com')).toEqual([other.id, alice2.id, alice1.id]);
    expect(await list('email=ALICE@example.com')).toEqual([other.id, alice2.id, alice1.id]);
    expect(await list(`email=alice@example.com&product=${product.id}`)).toEqual([alice2.id, alice1.id]);
    expect(await list('email=nobody@example.com')).toEqual([]);
    expect(await list(`customer=${alice1.customer}`)).toEqual([other.id, alice2.id, alice1.id]);
    expect(await list(`customer=${bob.customer}&status=revoked`)).toEqual([bob.id]);
    expect(await list('customer=ctm_nobody')).toEqual([]);
    expect(await list('product=no-such-product')).toEqual([]);
  });
});
