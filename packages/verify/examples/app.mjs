#!/usr/bin/env node
// A small app that licenses itself with @keymint/verify: it activates this
// machine, validates online, keeps working when the license server goes away,
// and refuses a license file that someone edited.
//
// Against your own Keymint (see docs/sdk.md):
//
//   KEYMINT_URL=http://localhost:4000 \
//   KEYMINT_LICENSE_KEY=KM1.… \
//   KEYMINT_PUBLIC_KEYS=@signing-keys.json \   (or a base64url key, a PEM, or the JSON itself)
//   node examples/app.mjs
//
// Self-contained, against a tiny fake Keymint started inside this script and
// signing with the TEST-ONLY key of test/vectors:
//
//   node examples/app.mjs --demo
//
// Exits 0 when every step behaved as it should.
import { createCipheriv, createHash, createPrivateKey, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { arch, hostname, platform, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { KeymintClient, KeymintOfflineError } from '@keymint/verify';
import { FileStorage } from '@keymint/verify/node';

const demo = process.argv.includes('--demo');
const log = (step, text) => console.log(`${step.padEnd(20)} ${text}`);
let failures = 0;
const expect = (ok, step, text) => {
  if (!ok) failures++;
  log(step, `${ok ? 'ok  ' : 'FAIL'} ${text}`);
};

// A stable id for this machine. Real apps often use the OS's machine id; what
// matters is that it stays the same across runs and differs between machines.
const fingerprint =
  process.env.KEYMINT_FINGERPRINT ?? createHash('sha256').update([hostname(), platform(), arch(), userInfo().username].join('\0')).digest('hex').slice(0, 32);

const fake = demo ? await startFakeKeymint() : null;
const config = demo
  ? { baseUrl: fake.url, key: fake.key, publicKeys: fake.publicKeys }
  : { baseUrl: requireEnv('KEYMINT_URL'), key: requireEnv('KEYMINT_LICENSE_KEY'), publicKeys: await loadPublicKeys() };

// Where the last good license file lives between runs.
const storageDir = process.env.KEYMINT_STORAGE_DIR ?? mkdtempSync(join(tmpdir(), 'keymint-example-'));
const storage = new FileStorage(storageDir);
const keymint = new KeymintClient({ baseUrl: config.baseUrl, publicKeys: config.publicKeys, storage, timeoutMs: 3000 });
const license = { key: config.key, fingerprint };

try {
  const device = await keymint.activate({ ...license, name: hostname(), platform: platform() });
  expect(device.fingerprint === fingerprint, 'activate', `device ${device.id} (fingerprint ${fingerprint})`);

  const online = await keymint.validate(license);
  expect(online.valid && !online.offline, 'validate (online)', `${online.code}: ${online.message}`);

  // Going offline: in the demo the server stops; against a real server, the
  // same storage is used by a client pointed at an address where nothing answers.
  let offlineClient = keymint;
  if (fake) await fake.close();
  else offlineClient = new KeymintClient({ baseUrl: 'http://127.0.0.1:9', publicKeys: config.publicKeys, storage, timeoutMs: 3000 });

  const offline = await offlineClient.validate(license);
  expect(
    offline.valid && offline.offline,
    'validate (offline)',
    `${offline.code} from the license file signed by ${offline.file?.kid}, good until ${new Date((offline.file?.expires ?? 0) * 1000).toISOString()}`,
  );

  // Someone edits the stored license file to extend it: the signature breaks.
  const name = readdirSync(storageDir).find((n) => n.startsWith('license-file.'));
  const path = join(storageDir, name);
  const original = readFileSync(path, 'utf8');
  writeFileSync(path, tamper(original));
  try {
    await offlineClient.validate(license);
    expect(false, 'tampered file', 'was accepted');
  } catch (error) {
    const refused = error instanceof KeymintOfflineError && error.fileReason === 'BAD_SIGNATURE';
    expect(refused, 'tampered file', `refused: ${error.fileReason ?? error.code}: ${error.message}`);
  } finally {
    writeFileSync(path, original);
  }

  if (!fake) {
    await keymint.deactivate(license);
    log('deactivate', `released this device's seat`);
  }
} catch (error) {
  failures++;
  console.error(`error: ${error.name} ${error.code ?? ''}: ${error.message}`);
} finally {
  if (fake) await fake.close();
  if (!process.env.KEYMINT_STORAGE_DIR) rmSync(storageDir, { recursive: true, force: true });
}
console.log(failures === 0 ? 'all steps behaved as expected' : `${failures} step(s) failed`);
process.exitCode = failures === 0 ? 0 : 1;

/** Flips one byte of the signed content, keeping the file well-formed. */
function tamper(text) {
  const body = text.split('\n').filter((line) => line && !line.startsWith('-----')).join('');
  const envelope = JSON.parse(Buffer.from(body, 'base64').toString('utf8'));
  const enc = Buffer.from(envelope.enc, 'base64url');
  enc[enc.length >> 1] ^= 1;
  const edited = Buffer.from(JSON.stringify({ ...envelope, enc: enc.toString('base64url') })).toString('base64');
  return `-----BEGIN KEYMINT LICENSE FILE-----\n${edited.match(/.{1,76}/g).join('\n')}\n-----END KEYMINT LICENSE FILE-----\n`;
}

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name}, or run with --demo (see the top of this file)`);
    process.exit(2);
  }
  return value;
}

async function loadPublicKeys() {
  const value = process.env.KEYMINT_PUBLIC_KEYS;
  if (!value && process.env.KEYMINT_SECRET_KEY) {
    // A shortcut for trying this out. Real apps ship their public keys and
    // never hold a secret key.
    const res = await fetch(`${requireEnv('KEYMINT_URL')}/v1/signing_keys`, { headers: { Authorization: `Bearer ${process.env.KEYMINT_SECRET_KEY}` } });
    if (!res.ok) throw new Error(`GET /v1/signing_keys answered ${res.status}`);
    return res.json();
  }
  if (!value) requireEnv('KEYMINT_PUBLIC_KEYS');
  const text = value.startsWith('@') ? readFileSync(value.slice(1), 'utf8') : value;
  return text.trim().startsWith('{') || text.trim().startsWith('[') ? JSON.parse(text) : text;
}

/**
 * The fake: Keymint's public license API for one license, with the
 * TEST-ONLY signing key of test/vectors, written with node:crypto alone.
 */
async function startFakeKeymint() {
  const vectors = JSON.parse(readFileSync(new URL('../test/vectors/vectors.json', import.meta.url), 'utf8'));
  const [signingKey] = vectors.signing_keys;
  const privateKey = createPrivateKey({
    key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(signingKey.seed_hex, 'hex')]),
    format: 'der',
    type: 'pkcs8',
  });
  const key = vectors.license_key.key;
  const license = vectors.license_files.plain.payload.license;
  const devices = new Map();
  const now = () => Math.floor(Date.now() / 1000);
  const b64url = (bytes) => Buffer.from(bytes).toString('base64url');

  function licenseFile(device, encrypt, ttl) {
    const issued = now();
    const payload = Buffer.from(JSON.stringify({ license, device, issued, expires: issued + ttl, ttl }));
    let enc = payload;
    if (encrypt) {
      const aesKey = createHash('sha256').update(key).update(device ? device.fingerprint : '').digest();
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', aesKey, iv);
      enc = Buffer.concat([iv, cipher.update(payload), cipher.final(), cipher.getAuthTag()]);
    }
    const envelope = { alg: encrypt ? 'aes-256-gcm+ed25519' : 'base64+ed25519', kid: signingKey.id, enc: b64url(enc) };
    envelope.sig = b64url(sign(null, Buffer.from(`license/${envelope.enc}`), privateKey));
    const lines = Buffer.from(JSON.stringify(envelope)).toString('base64').match(/.{1,76}/g).join('\n');
    return { object: 'license_file', certificate: `-----BEGIN KEYMINT LICENSE FILE-----\n${lines}\n-----END KEYMINT LICENSE FILE-----\n`, issued, expires: issued + ttl };
  }

  function route(path, body) {
    if (body.key !== key) return [404, { error: { type: 'not_found_error', code: 'license_not_found', message: 'no such license', param: 'key', request_id: 'req_demo' } }];
    const device = devices.get(body.fingerprint) ?? null;
    switch (path) {
      case '/v1/licenses/validate':
        return [200, { object: 'license_validation', valid: true, code: 'VALID', message: 'valid', license, device, ts: now() }];
      case '/v1/licenses/activate': {
        if (device) return [200, device];
        const created = { id: `dev_${randomBytes(13).toString('hex').slice(0, 26)}`, object: 'device', license: license.id, fingerprint: body.fingerprint, name: body.name ?? null, platform: body.platform ?? null, metadata: {}, lease_expires_at: null, last_seen_at: now(), created: now() };
        devices.set(body.fingerprint, created);
        return [201, created];
      }
      case '/v1/licenses/checkout':
        return [200, licenseFile(body.fingerprint ? device : null, body.encrypt === true, body.ttl ?? 14 * 86400)];
      default:
        return [404, { error: { type: 'invalid_request_error', code: 'route_not_found', message: 'no such route', param: null, request_id: 'req_demo' } }];
    }
  }

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const path = req.url.split('?')[0];
    const [status, payload] = route(path, JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}'));
    const body = Buffer.from(JSON.stringify(payload));
    const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length };
    const nonce = req.headers['keymint-accept-signature'];
    if (nonce) {
      const t = now();
      const message = Buffer.concat([Buffer.from(`keymint-response/v1\n${req.method} ${path}\n${t}\n${nonce}\n`), body]);
      headers['keymint-signature'] = `t=${t},kid=${signingKey.id},nonce=${nonce},sig=${b64url(sign(null, message, privateKey))}`;
    }
    res.writeHead(status, headers).end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closed = false;
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    key,
    publicKeys: [{ id: signingKey.id, public_key: signingKey.public_key }],
    close: async () => {
      if (closed) return;
      closed = true;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
