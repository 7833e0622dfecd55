import { ignored, type Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';
import { licensesPaidBy, paymentIntentOfCharge } from './payments.js';

/** A dispute opened: the disputed payment's licenses are suspended until it is decided. */
export async function onChargeDisputeCreated(ctx: HandlerContext): Promise<Outcome> {
  const dispute = ctx.event.data.object as Stripe.Dispute;
  const pi = dispute.payment_intent == null ? await paymentIntentOfCharge(ctx, dispute.charge) : typeof dispute.payment_intent === 'string' ? dispute.payment_intent : dispute.payment_intent.id;
  if (!pi) return ignored(`dispute ${dispute.id} has no payment intent`);
  return ctx.apply(async (trx) => {
    const bought = await licensesPaidBy(trx, ctx, pi);
    if (bought.length === 0) return ignored(`no license was bought with payment ${pi}`);
    const changed: string[] = [];
    for (const { license } of bought) if (await ctx.fulfilment.suspend(trx, ctx.scope, license.id, 'dispute')) changed.push(license.id);
    return { action: changed.length ? 'changed' : 'unchanged', reason: 'payment disputed', licenses: bought.map((b) => b.license.id) };
  });
}
