import type { HandledEvent } from '../stripe-client.js';
import type { EventHandler } from './context.js';
import { onChargeDisputeClosed } from './on-charge-dispute-closed.js';
import { onChargeDisputeCreated } from './on-charge-dispute-created.js';
import { onChargeRefunded } from './on-charge-refunded.js';
import { onCheckoutSessionAsyncPaymentFailed } from './on-checkout-session-async-payment-failed.js';
import { onCheckoutSessionAsyncPaymentSucceeded } from './on-checkout-session-async-payment-succeeded.js';
import { onCheckoutSessionCompleted } from './on-checkout-session-completed.js';
import { onCustomerSubscriptionCreated } from './on-customer-subscription-created.js';
import { onCustomerSubscriptionDeleted } from './on-customer-subscription-deleted.js';
import { onCustomerSubscriptionUpdated } from './on-customer-subscription-updated.js';
import { onInvoicePaid } from './on-invoice-paid.js';
import { onInvoicePaymentFailed } from './on-invoice-payment-failed.js';

/** Every event Keymint handles, one file each; docs/stripe.md has the table of what each does. */
export const EVENT_HANDLERS: Record<HandledEvent, EventHandler> = {
  'checkout.session.completed': onCheckoutSessionCompleted,
  'checkout.session.async_payment_succeeded': onCheckoutSessionAsyncPaymentSucceeded,
  'checkout.session.async_payment_failed': onCheckoutSessionAsyncPaymentFailed,
  'invoice.paid': onInvoicePaid,
  'invoice.payment_failed': onInvoicePaymentFailed,
  'customer.subscription.created': onCustomerSubscriptionCreated,
  'customer.subscription.updated': onCustomerSubscriptionUpdated,
  'customer.subscription.deleted': onCustomerSubscriptionDeleted,
  'charge.refunded': onChargeRefunded,
  'charge.dispute.created': onChargeDisputeCreated,
  'charge.dispute.closed': onChargeDisputeClosed,
};
