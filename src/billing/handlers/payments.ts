import type { Kysely } from 'kysely';
import { findPolicy } from '../../db/repositories/catalog.js';
import { licenseIdsForPayment } from '../../db/repositories/stripe.js';
import type { Database } from '../../db/schema.js';
import type { Stripe } from '../stripe-client.js';
import type { HandlerContext } from './context.js';

const idOf = (value: string | { id: string } | null | undefined) => (value == null ? null : typeof value === 'string' ? value : value.id);

/** The payment intent behind a charge, read from Stripe when the event's object does not carry it. */
export async function paymentIntentOfCharge(ctx: HandlerContext, charge: string | Stripe.Charge | null | undefined): Promise<string | null> {
  if (charge == null) return null;
  const full = typeof charge === 'string' ? await ctx.stripe.charges.retrieve(charge) : charge;
  return idOf(full.payment_intent);
}

/** The licenses a payment bought, with their policies (whose refund rules apply). */
export async function licensesPaidBy(trx: Kysely<Database>, ctx: HandlerContext, paymentIntent: string) {
  const ids = await licenseIdsForPayment(trx, ctx.scope, paymentIntent);
  const rows = await trx.selectFrom('licenses').selectAll().where('id', 'in', ids.length ? ids : ['']).execute();
  return Promise.all(rows.map(async (license) => ({ license, policy: await findPolicy(trx, ctx.scope, license.policy_id) })));
}
