import type { HandlerContext } from './context.js';
import { onSubscriptionChanged } from './subscription.js';

/**
 * Status (active, trialing and past_due keep access; unpaid, paused and
 * incomplete_expired suspend), quantity (seats or licenses), price (the
 * mapped policy: an upgrade or downgrade, same key) and cancel_at_period_end,
 * all read from the subscription as it is now.
 */
export const onCustomerSubscriptionUpdated = (ctx: HandlerContext) => onSubscriptionChanged(ctx);
