import type { HandlerContext } from './context.js';
import { onSubscriptionChanged } from './subscription.js';

/**
 * The subscription ended: its licenses keep access until the policy's grace
 * period after the end, then read as REVOKED (a future `revoked_at`; no job
 * needed). A late `updated` event afterwards cannot undo this: the
 * subscription Stripe returns is canceled, and revocation is final.
 */
export const onCustomerSubscriptionDeleted = (ctx: HandlerContext) => onSubscriptionChanged(ctx);
