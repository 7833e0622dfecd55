import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, packageDir } from './support/build.js';
import { FakeKeymint } from './support/fake-keymint.js';
import { FINGERPRINT, IMPOSTOR, issueKey, KEY, vectors } from './support/issuer.js';

/**
 * The built ESM bundle, unbundled and untranspiled, in real headless Chromium
 * (Debian's `chromium`): the SDK must need nothing but the web platform.
 */
const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.KEYMINT_SKIP_BROWSER_TESTS === '1';
if (!skip && !existsSync(CHROMIUM)) {
  throw new Error(`${CHROMIUM} is missing: apt-get update && apt-get install -y chromium (or set KEYMINT_SKIP_BROWSER_TESTS=1)`);
}

const PAGE = `<!doctype html><title>keymint</title>
<script type="module">import * as sdk from '/dist/index.js'; window.sdk = sdk;</script>`;
type Sdk = typeof import('../src/index.js');
declare global {
  interface Window {
    sdk: Sdk;
  }
}

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.json': 'application/json', '.html': 'text/html', '.lic': 'text/plain', '.txt': 'text/plain', '.pem': 'text/plain' };

describe.skipIf(skip)('in headless Chromium', () => {
  let server: Server;
  let origin: string;
  let fake: FakeKeymint;
  let browser: Browser;
  let page: Page;
  const notFound: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    await ensureBuilt();
    fake = await new FakeKeymint().start();
    fake.now = Math.floor(Date.now() / 1000);
    // One origin serves the page, the bundle, the vectors, and (proxied) the fake Keymint API.
    server = createServer(async (req, res) => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
      if (path.startsWith('/v1/')) {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        const nonce = req.headers['keymint-accept-signature'];
        if (typeof nonce === 'string') headers['keymint-accept-signature'] = nonce;
        const upstream = await fetch(fake.url + path, { method: req.method, headers, body: Buffer.concat(chunks) });
        const body = Buffer.from(await upstream.arrayBuffer());
        const signature = upstream.headers.get('keymint-signature');
        res.writeHead(upstream.status, { 'content-type': 'application/json', ...(signature && { 'keymint-signature': signature }) }).end(body);
        return;
      }
      const root = path.startsWith('/dist/') ? join(packageDir, 'dist/esm') : path.startsWith('/vectors/') ? join(packageDir, 'test/vectors') : null;
      const file = root && join(root, normalize(path.replace(/^\/(dist|vectors)\//, '')));
      // The page loads the bundle as a module script, the way an app would.
      if (path === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
      if (path === '/favicon.ico') return void res.writeHead(204).end();
      if (!file || !file.startsWith(root) || !existsSync(file)) {
        notFound.push(path);
        return void res.writeHead(404).end();
      }
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
    page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${origin}/`);
    await page.waitForFunction(() => window.sdk !== undefined);
  });

  afterAll(async () => {
    await browser?.close();
    await fake?.close();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('is a real Chromium with Ed25519 in WebCrypto', async () => {
    const info = await page.evaluate(async () => {
      const key = await crypto.subtle.importKey('raw', new Uint8Array(32), { name: 'Ed25519' }, false, ['verify']).then(() => true, () => false);
      return { ua: navigator.userAgent, ed25519: key, hasProcess: typeof (globalThis as { process?: unknown }).process !== 'undefined' };
    });
    expect(info.ua).toMatch(/Chrome\/\d+/);
    expect(info).toMatchObject({ ed25519: true, hasProcess: false });
  });

  it('verifies the vectors: keys, plain, encrypted and device-bound files, a signed response', async () => {
    const forged = issueKey(vectors.license_key.claims, IMPOSTOR);
    const results = await page.evaluate(
      async ({ at, fingerprint, forged }) => {
        const sdk = window.sdk;
        const text = (name: string) => fetch(`/vectors/${name}`).then((r) => r.text());
        const publicKeys = await fetch('/vectors/signing-keys.json').then((r) => r.json());
        const key = (await text('license-key.txt')).trim();
        const pem = await text('public-key.pem');
        const response = JSON.parse(await text('signed-response.json'));
        const reason = (r: { valid: boolean; reason?: string }) => (r.valid ? 'VALID' : r.reason);
        return {
          key: await sdk.verifyKey(key, publicKeys),
          keyByPem: reason(await sdk.verifyKey(key, pem)),
          forged: reason(await sdk.verifyKey(forged, publicKeys)),
          plain: reason(await sdk.verifyLicenseFile(await text('license-file-plain.lic'), { publicKeys, key, now: at })),
          encrypted: await sdk.verifyLicenseFile(await text('license-file-encrypted.lic'), { publicKeys, key, now: at }),
          bound: reason(await sdk.verifyLicenseFile(await text('license-file-device.lic'), { publicKeys, key, fingerprint, now: at })),
          otherDevice: reason(await sdk.verifyLicenseFile(await text('license-file-device.lic'), { publicKeys, key, fingerprint: 'other', now: at })),
          expired: reason(await sdk.verifyLicenseFile(await text('license-file-plain.lic'), { publicKeys, key })),
          tampered: reason(await sdk.verifyLicenseFile((await text('license-file-plain.lic')).replace(/\n([A-Za-z])/, (_m: string, c: string) => `\n${c === 'A' ? 'B' : 'A'}`), { publicKeys, key, now: at })),
          response: await sdk.verifyResponseSignature({
            header: response.headers['Keymint-Signature'],
            method: 'POST',
            path: response.request.path,
            nonce: response.request.headers['Keymint-Accept-Signature'],
            body: response.body,
            publicKeys,
            now: at,
            tolerance: 7200,
          }),
          activationRequest: await sdk.createActivationRequest({ key, fingerprint }),
        };
      },
      { at: vectors.verify_at as number, fingerprint: FINGERPRINT, forged },
    );
    expect(results.key).toEqual({ valid: true, claims: vectors.license_key.claims });
    expect(results).toMatchObject({ keyByPem: 'VALID', forged: 'BAD_SIGNATURE', plain: 'VALID', bound: 'VALID', otherDevice: 'WRONG_DEVICE', expired: 'EXPIRED' });
    expect(['BAD_SIGNATURE', 'MALFORMED']).toContain(results.tampered);
    expect(results.encrypted).toMatchObject({ valid: true, encrypted: true, payload: vectors.license_files.plain.payload });
    expect(results.response).toMatchObject({ valid: true, t: 1767225660 });
    expect(results.activationRequest).toMatch(/^-----BEGIN KEYMINT ACTIVATION REQUEST-----\n/);
  });

  it('runs the online client with signed responses, localStorage and the offline fallback', async () => {
    const results = await page.evaluate(
      async ({ key, fingerprint }) => {
        const sdk = window.sdk;
        const publicKeys = await fetch('/vectors/signing-keys.json').then((r) => r.json());
        localStorage.clear();
        const km = new sdk.KeymintClient({ baseUrl: location.origin, publicKeys, storage: sdk.webStorage(localStorage), timeoutMs: 2000 });
        const device = await km.activate({ key, fingerprint });
        const online = await km.validate({ key, fingerprint });
        const stored = Object.keys(localStorage).filter((k) => k.startsWith('keymint:license-file.')).length;
        const offlineClient = new sdk.KeymintClient({ baseUrl: 'http://127.0.0.1:9', publicKeys, storage: sdk.webStorage(localStorage), timeoutMs: 2000 });
        const offline = await offlineClient.validate({ key, fingerprint });
        return { device: device.fingerprint, online: [online.offline, online.code], stored, offline: [offline.offline, offline.code] };
      },
      { key: KEY, fingerprint: FINGERPRINT },
    );
    expect(results).toEqual({ device: FINGERPRINT, online: [false, 'VALID'], stored: 1, offline: [true, 'VALID'] });
    expect(fake.requests.map((r) => r.path)).toEqual(['/v1/licenses/activate', '/v1/licenses/checkout', '/v1/licenses/validate']);
  });

  it('rejects a spoofed server from the browser too', async () => {
    fake.signer = IMPOSTOR;
    const error = await page.evaluate(async ({ key }) => {
      const sdk = window.sdk;
      const publicKeys = await fetch('/vectors/signing-keys.json').then((r) => r.json());
      const km = new sdk.KeymintClient({ baseUrl: location.origin, publicKeys });
      try {
        await km.validate({ key });
        return null;
      } catch (e) {
        return { name: (e as Error).name, reason: (e as { reason?: string }).reason };
      }
    }, { key: KEY });
    expect(error).toEqual({ name: 'KeymintSignatureError', reason: 'BAD_SIGNATURE' });
  });

  it('loaded every module it asked for, with no page errors', () => {
    expect(notFound).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
});
