import { ignored, type Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';
import { licensesPaidBy, paymentIntentOfCharge } from './payments.js';

/**
 * A dispute was decided, read fresh from Stripe: lost revokes; won (or
 * closed with a warning only) lifts the dispute's suspension — not a
 * suspension made for another reason.
 */
export async function onChargeDisputeClosed(ctx: HandlerContext): Promise<Outcome> {
  const dispute = await ctx.stripe.disputes.retrieve((ctx.event.data.object as Stripe.Dispute).id);
  const pi = dispute.payment_intent == null ? await paymentIntentOfCharge(ctx, dispute.charge) : typeof dispute.payment_intent === 'string' ? dispute.payment_intent : dispute.payment_intent.id;
  if (!pi) return ignored(`dispute ${dispute.id} has no payment intent`);
  const lost = dispute.status === 'lost';
  return ctx.apply(async (trx) => {
    const bought = await licensesPaidBy(trx, ctx, pi);
    if (bought.length === 0) return ignored(`no license was bought with payment ${pi}`);
    const changed: string[] = [];
    for (const { license } of bought) {
      const did = lost ? await ctx.fulfilment.revoke(trx, ctx.scope, license.id) : await ctx.fulfilment.reinstate(trx, ctx.scope, license.id, 'dispute');
      if (did) changed.push(license.id);
    }
    return { action: changed.length ? 'changed' : 'unchanged', reason: lost ? 'dispute lost' : `dispute ${dispute.status}`, licenses: bought.map((b) => b.license.id) };
  });
}
