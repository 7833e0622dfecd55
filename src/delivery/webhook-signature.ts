import { createHmac } from 'node:crypto';

/**
 * The vendor webhook signature (API.md, "Vendor webhooks", fixed):
 *
 *   Keymint-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<raw body>">
 *
 * keyed by the endpoint's signing secret (the whole `kmwhsec_…` string, as
 * UTF-8 bytes). It is Stripe's scheme, so Stripe's own verifiers accept it.
 * While a rolled secret's grace period runs, the header carries one `v1` per
 * valid secret (newest first); a receiver accepts the request if any matches.
 */
export const SIGNATURE_HEADER = 'Keymint-Signature';

export function signatureOf(body: string, secret: string, timestamp: number): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`, 'utf8').digest('hex');
}

export function signatureHeader(body: string, secrets: readonly string[], timestamp: number): string {
  return [`t=${timestamp}`, ...secrets.map((secret) => `v1=${signatureOf(body, secret, timestamp)}`)].join(',');
}
