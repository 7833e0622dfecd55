#!/usr/bin/env node
// Key verifications per second: the SDK's verifyKey (WebCrypto Ed25519, plus
// parsing and claim checks) beside raw node:crypto Ed25519 verifications of
// the same signature, in the same run. `npm run bench` builds first.
//
//   node bench.mjs [seconds per measurement, default 2] [rounds, default 3]
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

async function measure(batch, op) {
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
  return count / (Number(now - start) / 1e9);
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

// The machine may be busy with other work: the measurements are interleaved
// over several rounds and each figure is the median, so that a burst of load
// does not land on one side of the ratio only.
const rounds = Number(process.argv[3] ?? 3);
console.log(`node ${process.version}, ${rounds} rounds of ${seconds} s per measurement, batches of ${batchSize}, medians\n`);
const cases = [
  ['raw node:crypto verify (sync)', sequential, rawOp],
  ['raw WebCrypto subtle.verify (awaited one by one)', sequential, webOp],
  ['SDK verifyKey (awaited one by one)', sequential, sdkOp],
  ['SDK verifyKey (64 in flight)', concurrent, sdkOp],
];
const samples = cases.map(() => []);
for (let round = 0; round < rounds; round++) {
  for (const [i, [, batch, op]] of cases.entries()) samples[i].push(await measure(batch, op));
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const [raw, web, sdk, sdkConcurrent] = samples.map(median);
for (const [i, [name]] of cases.entries()) {
  console.log(`${name.padEnd(52)} ${Math.round(median(samples[i])).toLocaleString('en-US').padStart(10)} /s`);
}
console.log(`
SDK / raw node:crypto:                ${(sdk / raw).toFixed(2)}  (${(sdkConcurrent / raw).toFixed(2)} with 64 in flight)
SDK / raw WebCrypto (same primitive): ${(sdk / web).toFixed(2)}`);
