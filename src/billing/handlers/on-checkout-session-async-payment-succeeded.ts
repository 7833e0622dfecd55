import type { Stripe } from '../stripe-client.js';
import { fulfilCheckout } from './on-checkout-session-completed.js';
import type { HandlerContext } from './context.js';

/** A delayed payment (bank debit, voucher) cleared: fulfil exactly as an instantly paid session. */
export const onCheckoutSessionAsyncPaymentSucceeded = (ctx: HandlerContext) => fulfilCheckout(ctx, ctx.event.data.object as Stripe.Checkout.Session);
