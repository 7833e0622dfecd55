import { ignored } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';

/** A delayed payment failed: nothing was ever issued for the session, so there is only something to record. */
export async function onCheckoutSessionAsyncPaymentFailed(ctx: HandlerContext) {
  const session = ctx.event.data.object as Stripe.Checkout.Session;
  return ignored(`the delayed payment for checkout session ${session.id} failed; no license was issued`);
}
