import Stripe from 'stripe';

/**
 * One Stripe API version for everything: the SDK's requests and the webhook
 * endpoint Keymint registers, so event payloads have the shapes the handlers
 * are written against. It is the version the installed SDK is typed for.
 */
export const STRIPE_API_VERSION = '2026-10-28.endive' as const;

/** Exactly the events Keymint handles; the endpoint it registers subscribes to these and no others. */
export const HANDLED_EVENTS = [
  'checkout.session.completed',
  'checkout.session.async_payment_succeeded',
  'checkout.session.async_payment_failed',
  'invoice.paid',
  'invoice.payment_failed',
  'customer.subscription.created',
  'customer.subscription.updated',
  'customer.subscription.deleted',
  'charge.refunded',
  'charge.dispute.created',
  'charge.dispute.closed',
] as const;

export type HandledEvent = (typeof HANDLED_EVENTS)[number];

/**
 * A client for one vendor's key. The base URL comes from
 * KEYMINT_STRIPE_API_URL so tests can point it at a local fake; nothing else
 * differs between the fake and Stripe. The SDK retries network failures and
 * 5xx itself (with Stripe's idempotency keys on POSTs); the job queue retries
 * beyond that.
 */
export function stripeClient(secretKey: string, apiUrl: string): Stripe {
  const url = new URL(apiUrl);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return new Stripe(secretKey, {
    apiVersion: STRIPE_API_VERSION,
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === 'http' ? 80 : 443,
    protocol,
    maxNetworkRetries: 2,
    timeout: 20_000,
    telemetry: false,
    appInfo: { name: 'Keymint' },
  });
}

/** Verifies a webhook's signature on the raw body (every v1 value counts, so rolled secrets work; 300 s tolerance). */
export function verifyWebhook(rawBody: Buffer, signatureHeader: string, secret: string): Stripe.Event {
  return Stripe.webhooks.constructEvent(rawBody, signatureHeader, secret, 300);
}

export type { Stripe };
