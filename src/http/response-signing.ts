import { sign } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { invalidRequest } from '../errors.js';
import type { SigningKey, SigningKeyService } from '../licensing/signing-keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The nonce of `Keymint-Accept-Signature`, when the client asked for a signed response. */
    signatureNonce: string | null;
  }
}

const NONCE_RE = /^[A-Za-z0-9_-]{16,128}$/;

/** The signing key id a license key names, without verifying anything (the answer is what gets signed, not the key). */
function kidOf(body: unknown): string | null {
  const key = (body as { key?: unknown } | null | undefined)?.key;
  if (typeof key !== 'string' || key.length > 1024) return null;
  const payload = key.split('.')[1];
  if (!payload) return null;
  try {
    const kid = (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { kid?: unknown }).kid;
    return typeof kid === 'string' && kid.length <= 128 ? kid : null;
  } catch {
    return null;
  }
}

/** `t=…,kid=…,nonce=…,sig=…`: the signature over the method, route path, time, nonce and body bytes. */
function signatureHeader(request: FastifyRequest, key: SigningKey, nonce: string, payload: string | Buffer, t: number): string {
  const path = request.routeOptions.url ?? request.url.split('?')[0];
  const head = Buffer.from(`keymint-response/v1\n${request.method} ${path}\n${t}\n${nonce}\n`, 'utf8');
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const sig = sign(null, Buffer.concat([head, body]), key.privateKey).toString('base64url');
  return `t=${t},kid=${key.id},nonce=${nonce},sig=${sig}`;
}

/**
 * Signed responses for the public license API (docs/formats.md): when a
 * request carries `Keymint-Accept-Signature: <nonce>`, the response gets
 * `Keymint-Signature: t=…,kid=…,nonce=…,sig=…`, an Ed25519 signature over the
 * method, path, time, nonce and body bytes, by the key that signed the
 * license key in the request. A spoofed server cannot make it; a replayed
 * response carries another nonce. The one crypto cost on the hot path, paid
 * only when asked.
 */
export function signResponses(app: FastifyInstance, signingKeys: SigningKeyService, now: () => number): void {
  app.decorateRequest('signatureNonce', null);

  // Callback hooks, not async ones: most requests ask for no signature, and
  // an async hook costs them a promise each.
  app.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers['keymint-accept-signature'];
    if (header === undefined) return done();
    const nonce = (Array.isArray(header) ? header[0] : header)?.trim() ?? '';
    if (!NONCE_RE.test(nonce)) {
      return done(invalidRequest('invalid_signature_nonce', 'Keymint-Accept-Signature must be a nonce of 16 to 128 characters [A-Za-z0-9_-]', 'Keymint-Accept-Signature'));
    }
    request.signatureNonce = nonce;
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    const nonce = request.signatureNonce;
    if (nonce === null || (typeof payload !== 'string' && !Buffer.isBuffer(payload))) return done(null, payload);
    const kid = kidOf(request.body);
    if (kid === null) return done(null, payload);
    signingKeys.byId(kid).then(
      (key) => {
        try {
          reply.header('Keymint-Signature', signatureHeader(request, key, nonce, payload, now()));
        } catch (err) {
          return done(err as Error);
        }
        done(null, payload);
      },
      // Not a key of this server: nothing to sign with.
      () => done(null, payload),
    );
  });
}
