import type { Kysely } from 'kysely';
import type { Database } from '../../db/schema.js';
import { recordPayment } from '../../db/repositories/stripe.js';
import { ignored, type Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';

const idOf = (value: string | { id: string } | null | undefined) => (value == null ? null : typeof value === 'string' ? value : value.id);

/**
 * Reads the subscription as Stripe has it now and brings its licenses in
 * line. Every subscription event funnels here, so it does not matter which
 * arrives first or how often: the result is the subscription's current state.
 *
 * `paid` carries what an `invoice.paid` event adds: the end of the period
 * it paid for and its payment intents (so refunds can find the license).
 */
export async function fulfilSubscription(
  ctx: HandlerContext,
  subscriptionId: string,
  paid?: { until: number; paymentIntents: string[] },
  /** More changes to make in the same transaction, once the licenses are in line. */
  after?: (trx: Kysely<Database>, outcome: Outcome) => Promise<Outcome>,
): Promise<Outcome> {
  const sub = await ctx.stripe.subscriptions.retrieve(subscriptionId);
  let chosen: { item: Stripe.SubscriptionItem; resolved: Exclude<Awaited<ReturnType<HandlerContext['fulfilment']['resolve']>>, { ignored: string }> } | null = null;
  const ignoredItems: Array<{ price: string; reason: string }> = [];
  for (const item of sub.items.data) {
    const resolved = await ctx.fulfilment.resolve(ctx.scope, item.price);
    if ('ignored' in resolved) ignoredItems.push({ price: item.price.id, reason: resolved.ignored });
    else if (!chosen) chosen = { item, resolved };
  }
  if (!chosen) return ignored(`no price of subscription ${sub.id} is mapped to a policy`, { ignored_items: ignoredItems });

  let customer: { email: string | null; name: string | null } = { email: null, name: null };
  const customerId = idOf(sub.customer);
  if (customerId) {
    const c = await ctx.stripe.customers.retrieve(customerId);
    if (!('deleted' in c && c.deleted)) customer = { email: (c as Stripe.Customer).email ?? null, name: (c as Stripe.Customer).name ?? null };
  }
  const { item, resolved } = chosen;
  return ctx.apply(async (trx) => {
    const outcome = await ctx.fulfilment.syncSubscription(trx, ctx.scope, sub, resolved, item, customer, paid?.until ?? 0);
    for (const pi of paid?.paymentIntents ?? []) for (const licenseId of outcome.licenses) await recordPayment(trx, ctx.scope, pi, licenseId);
    const final = after ? await after(trx, outcome) : outcome;
    return ignoredItems.length ? { ...final, ignored_items: ignoredItems } : final;
  });
}

export const onSubscriptionChanged = (ctx: HandlerContext) => fulfilSubscription(ctx, (ctx.event.data.object as Stripe.Subscription).id);
