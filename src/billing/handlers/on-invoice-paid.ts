import { ignored } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';
import { fulfilSubscription } from './subscription.js';

/** Since API version 2025-03-31 an invoice names its subscription under parent.subscription_details. */
export function subscriptionOf(invoice: Stripe.Invoice): string | null {
  const sub = invoice.parent?.subscription_details?.subscription;
  return sub == null ? null : typeof sub === 'string' ? sub : sub.id;
}

/**
 * A subscription invoice was paid: the first one can create the license
 * (when checkout.session.completed is late or absent); later ones extend it
 * to the end of the period they paid for, and lift a suspension for a failed
 * payment.
 */
export async function onInvoicePaid(ctx: HandlerContext) {
  const event = ctx.event.data.object as Stripe.Invoice;
  const subscription = subscriptionOf(event);
  if (!subscription) return ignored(`invoice ${event.id} is not for a subscription`);
  const invoice = await ctx.stripe.invoices.retrieve(event.id!, { expand: ['payments'] });
  const until = Math.max(0, ...invoice.lines.data.map((line) => line.period?.end ?? 0));
  const paymentIntents = (invoice.payments?.data ?? [])
    .map((p) => p.payment?.payment_intent)
    .map((pi) => (pi == null ? null : typeof pi === 'string' ? pi : pi.id))
    .filter((pi): pi is string => pi !== null);
  return fulfilSubscription(ctx, subscription, { until, paymentIntents }, async (trx, outcome) => {
    let reinstated = false;
    for (const id of outcome.licenses) reinstated = (await ctx.fulfilment.reinstate(trx, ctx.scope, id, 'payment_failed')) || reinstated;
    return reinstated && outcome.action === 'unchanged' ? { ...outcome, action: 'changed' } : outcome;
  });
}
