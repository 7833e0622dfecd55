import { ignored, type Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';
import { licensesPaidBy } from './payments.js';

/**
 * A full refund revokes the licenses that payment bought — for a
 * subscription's payment only if its policy says so (`on_subscription_refund`).
 * A partial refund is recorded and changes nothing unless the policy says
 * `on_partial_refund: revoke`. The charge is read fresh: refunds accumulate.
 */
export async function onChargeRefunded(ctx: HandlerContext): Promise<Outcome> {
  const event = ctx.event.data.object as Stripe.Charge;
  const charge = await ctx.stripe.charges.retrieve(event.id);
  const paymentIntent = charge.payment_intent == null ? null : typeof charge.payment_intent === 'string' ? charge.payment_intent : charge.payment_intent.id;
  if (!paymentIntent) return ignored(`charge ${charge.id} has no payment intent Keymint knows`);
  const full = charge.refunded || charge.amount_refunded >= charge.amount;
  return ctx.apply(async (trx) => {
    const bought = await licensesPaidBy(trx, ctx, paymentIntent);
    if (bought.length === 0) return ignored(`no license was bought with payment ${paymentIntent}`);
    const revoked: string[] = [];
    for (const { license, policy } of bought) {
      const isSubscription = license.stripe_subscription !== null;
      const revoke = full ? !isSubscription || policy?.on_subscription_refund !== 'ignore' : policy?.on_partial_refund === 'revoke';
      if (revoke && (await ctx.fulfilment.revoke(trx, ctx.scope, license.id))) revoked.push(license.id);
    }
    if (revoked.length) return { action: 'changed', reason: full ? 'fully refunded' : 'partially refunded; the policy revokes on partial refunds', licenses: revoked };
    return {
      action: 'unchanged',
      reason: full ? 'fully refunded; the policy keeps subscription licenses on refunds' : `partial refund of ${charge.amount_refunded} of ${charge.amount} recorded; the policy ignores partial refunds`,
      licenses: bought.map((b) => b.license.id),
    };
  });
}
