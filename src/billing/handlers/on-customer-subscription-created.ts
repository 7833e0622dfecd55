import type { HandlerContext } from './context.js';
import { onSubscriptionChanged } from './subscription.js';

/** Usually the first subscription event; licenses are issued once the subscription grants access. */
export const onCustomerSubscriptionCreated = (ctx: HandlerContext) => onSubscriptionChanged(ctx);
