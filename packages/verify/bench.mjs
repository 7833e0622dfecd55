#!/usr/bin/env node
// Key verifications per second: the SDK's verifyKey (WebCrypto Ed25519, plus
// parsing and claim checks) beside raw node:crypto Ed25519 verifications of
// the same signature, in the same run. `npm run bench` builds first.
//
//   node bench.mjs [seconds per measurement, default 2]
import { createPublicKey, verify, webcrypto } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { verifyKey, createKeySet } from '@keymint/verify';

const seconds = Number(process.argv[2] ?? 2);
const vectors = JSON.parse(readFileSync(new URL('./test/vectors/vectors.json', import.meta.url), 'utf8'));
const signingKeys = JSON.parse(readFileSync(new URL('./test/vectors/signing-keys.json', import.meta.url), 'utf8'));
const key = vectors.license_key.key;
const keys = createKeySet(signingKeys);

const signedPart = Buffer.from(key.slice(0, key.lastIndexOf('.')), 'ascii');
const signature = Buffer.from(key.slice(key.lastIndexOf('.') + 1), 'base64url');
const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: signingKeys.data[0].public_key }, format: 'jwk' });
const cryptoKey = await webcrypto.subtle.importKey('raw', Buffer.from(signingKeys.data[0].public_key, 'base64url'), { name: 'Ed25519' }, false, ['verify']);

async function measure(name, batch, op) {
  // Warm up, then count whole batches until the time is up.
  for (let i = 0; i < 200; i++) await op();
  let count = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    await batch(op);
    count += batchSize;
    now = process.hrtime.bigint();
  }
  const rate = count / (Number(now - start) / 1e9);
  console.log(`${name.padEnd(52)} ${Math.round(rate).toLocaleString('en-US').padStart(10)} /s`);
  return rate;
}

const batchSize = 64;
const sequential = async (op) => {
  for (let i = 0; i < batchSize; i++) await op();
};
const concurrent = async (op) => {
  await Promise.all(Array.from({ length: batchSize }, op));
};

const sdkOp = async () => {
  const result = await verifyKey(key, keys);
  if (!result.valid) throw new Error('the vector key did not verify');
};
const rawOp = () => {
  if (!verify(null, signedPart, publicKey, signature)) throw new Error('raw verify failed');
};
const webOp = async () => {
  if (!(await webcrypto.subtle.verify({ name: 'Ed25519' }, cryptoKey, signature, signedPart))) throw new Error('webcrypto verify failed');
};

console.log(`node ${process.version}, ${seconds} s per measurement, batches of ${batchSize}\n`);
const raw = await measure('raw node:crypto verify (sync)', sequential, rawOp);
const web = await measure('raw WebCrypto subtle.verify (awaited one by one)', sequential, webOp);
const sdk = await measure('SDK verifyKey (awaited one by one)', sequential, sdkOp);
const sdkConcurrent = await measure('SDK verifyKey (64 in flight)', concurrent, sdkOp);
console.log(`
SDK / raw node:crypto:              ${(sdk / raw).toFixed(2)}  (${(sdkConcurrent / raw).toFixed(2)} with 64 in flight)
SDK / raw WebCrypto (same primitive): ${(sdk / web).toFixed(2)}`);
