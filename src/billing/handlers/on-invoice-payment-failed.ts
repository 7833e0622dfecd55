import { licensesOfSubscription } from '../../db/repositories/stripe.js';
import { findPolicy } from '../../db/repositories/catalog.js';
import { ignored, type Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';
import { subscriptionOf } from './on-invoice-paid.js';

/**
 * A subscription payment failed. Per policy: suspend at once, or (the
 * default) keep access until the paid period plus grace runs out — which
 * needs no change at all, since expiry is derived from the clock. Stripe's
 * retries may still succeed; `invoice.paid` then lifts a suspension.
 */
export async function onInvoicePaymentFailed(ctx: HandlerContext): Promise<Outcome> {
  const invoice = ctx.event.data.object as Stripe.Invoice;
  const subscription = subscriptionOf(invoice);
  if (!subscription) return ignored(`invoice ${invoice.id} is not for a subscription`);
  return ctx.apply(async (trx) => {
    const licenses = await licensesOfSubscription(trx, ctx.scope, subscription);
    if (licenses.length === 0) return ignored(`no license belongs to subscription ${subscription}`);
    const suspended: string[] = [];
    for (const license of licenses) {
      const policy = await findPolicy(trx, ctx.scope, license.policy_id);
      await ctx.fulfilment.notifier?.enqueuePaymentFailed?.(trx, ctx.scope, license.id, { dedupeKey: `email:payment_failed:${invoice.id}:${license.id}` });
      if (policy?.on_payment_failure === 'suspend' && (await ctx.fulfilment.suspend(trx, ctx.scope, license.id, 'payment_failed'))) suspended.push(license.id);
    }
    return suspended.length
      ? { action: 'changed', reason: 'suspended: the policy suspends on a failed payment', licenses: suspended }
      : { action: 'unchanged', reason: 'access continues until the paid period (plus grace) ends', licenses: licenses.map((l) => l.id) };
  });
}
