/**
 * The receiving end of bench/webhooks.ts, in a process of its own: a plain
 * node:http server that verifies every Keymint-Signature exactly as
 * docs/webhooks.md says (HMAC-SHA256 over "<t>.<raw body>") and counts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ToReceiver = { type: 'secret'; secret: string } | { type: 'count' };
export type FromReceiver = { type: 'listening'; url: string } | { type: 'count'; valid: number; invalid: number; events: number };

let secret = '';
let valid = 0;
let invalid = 0;
const events = new Set<string>();

function verified(raw: Buffer, header: string | undefined): boolean {
  const parts = (header ?? '').split(',').map((p) => p.split('='));
  const t = parts.find(([k]) => k === 't')?.[1];
  if (!t) return false;
  const expected = createHmac('sha256', secret).update(`${t}.`).update(raw).digest();
  return parts.some(([k, v]) => k === 'v1' && v !== undefined && Buffer.from(v, 'hex').length === expected.length && timingSafeEqual(Buffer.from(v, 'hex'), expected));
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks);
    const header = req.headers['keymint-signature'];
    if (verified(raw, typeof header === 'string' ? header : undefined)) {
      valid++;
      events.add((JSON.parse(raw.toString('utf8')) as { id: string }).id);
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    } else {
      invalid++;
      res.writeHead(400).end('bad signature');
    }
  });
});

const send = (m: FromReceiver) => process.send?.(m);
process.on('message', (m: ToReceiver) => {
  if (m.type === 'secret') secret = m.secret;
  if (m.type === 'count') send({ type: 'count', valid, invalid, events: events.size });
});
process.on('disconnect', () => process.exit(0));
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => send({ type: 'listening', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
