import type { Kysely } from 'kysely';
import type { Database, Scope } from '../../db/schema.js';
import type { Fulfilment, Outcome } from '../fulfilment.js';
import type { Stripe } from '../stripe-client.js';

export interface HandlerContext {
  scope: Scope;
  /** A client for the vendor's connected account: handlers read the current object when order matters. */
  stripe: Stripe;
  event: Stripe.Event;
  fulfilment: Fulfilment;
  /** Runs `fn` in one transaction together with recording the event's outcome. */
  apply(fn: (trx: Kysely<Database>) => Promise<Outcome>): Promise<Outcome>;
}

/** One Stripe event type's handling. Unknown types never reach a handler: they are recorded as ignored. */
export type EventHandler = (ctx: HandlerContext) => Promise<Outcome>;
