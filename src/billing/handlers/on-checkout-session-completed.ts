import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { ignored, type Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';
import { fulfilSubscription } from './subscription.js';

const idOf = (value: string | { id: string } | null | undefined) => (value == null ? null : typeof value === 'string' ? value : value.id);

/**
 * Fulfils a paid Checkout Session. Line items are never in the event, so
 * they are read from Stripe; each mapped price becomes licenses keyed on
 * (session, price), so the same session fulfilled twice creates nothing new.
 */
export async function fulfilCheckout(ctx: HandlerContext, session: Stripe.Checkout.Session): Promise<Outcome> {
  if (session.mode === 'subscription') {
    const subscription = idOf(session.subscription);
    if (!subscription) return ignored(`checkout session ${session.id} has no subscription`);
    return fulfilSubscription(ctx, subscription);
  }
  if (session.mode !== 'payment') return ignored(`checkout session ${session.id} is in ${session.mode} mode; nothing was bought`);
  // Read the session as it is now: a late or replayed event must not act on a stale payment status.
  const current = await ctx.stripe.checkout.sessions.retrieve(session.id);
  if (current.payment_status === 'unpaid') {
    return ignored('payment not yet received (delayed payment method); waiting for checkout.session.async_payment_succeeded');
  }
  const items: Stripe.LineItem[] = [];
  for await (const item of ctx.stripe.checkout.sessions.listLineItems(current.id, { limit: 100 })) items.push(item);

  const planned: Array<{ item: Stripe.LineItem; resolved: Exclude<Awaited<ReturnType<HandlerContext['fulfilment']['resolve']>>, { ignored: string }> }> = [];
  const ignoredItems: Array<{ price: string; reason: string }> = [];
  for (const item of items) {
    if (!item.price) continue;
    const resolved = await ctx.fulfilment.resolve(ctx.scope, item.price);
    if ('ignored' in resolved) ignoredItems.push({ price: item.price.id, reason: resolved.ignored });
    else planned.push({ item, resolved });
  }
  if (planned.length === 0) {
    return ignored('no purchased price is mapped to a policy', { ignored_items: ignoredItems });
  }

  const stripeCustomer = idOf(current.customer);
  const paymentIntent = idOf(current.payment_intent);
  const email = current.customer_details?.email ?? current.customer_email ?? null;
  return ctx.apply(async (trx: Kysely<Database>) => {
    const customerId = await ctx.fulfilment.customerFor(trx, ctx.scope, stripeCustomer, email, current.customer_details?.name ?? null);
    const created: string[] = [];
    const all: string[] = [];
    for (const { item, resolved } of planned) {
      const issued = await ctx.fulfilment.issue(trx, ctx.scope, resolved, {
        fulfilmentBase: `cs:${current.id}:${item.price!.id}`,
        quantity: item.quantity ?? 1,
        customerId,
        stripe: { customer: stripeCustomer, checkout_session: current.id, payment_intent: paymentIntent, price: item.price!.id },
      });
      for (const i of issued) {
        all.push(i.id);
        if (i.created) created.push(i.id);
      }
    }
    await ctx.fulfilment.announce(trx, ctx.scope, created, `cs:${current.id}`, [
      { target: 'payment_intents', id: paymentIntent },
      { target: 'customers', id: stripeCustomer },
    ]);
    return {
      action: created.length ? 'created' : 'unchanged',
      reason: created.length ? null : 'this session was already fulfilled',
      licenses: all,
      ...(ignoredItems.length && { ignored_items: ignoredItems }),
    };
  });
}

export const onCheckoutSessionCompleted = (ctx: HandlerContext) => fulfilCheckout(ctx, ctx.event.data.object as Stripe.Checkout.Session);
