import type { Kysely } from 'kysely';
import { findCustomerByStripeId, licensesOfSubscription, linkStripeCustomer, recordPayment } from '../db/repositories/stripe.js';
import type { LicenseRow } from '../db/repositories/licenses.js';
import type { Database, Scope, SuspensionReason } from '../db/schema.js';
import type { CustomerService } from '../customers/customers.js';
import type { EventType } from '../events/event-log.js';
import type { JobService } from '../jobs/jobs.js';
import { addDuration } from '../licensing/duration.js';
import type { LicenseService } from '../licensing/licenses.js';
import type { PriceMappingService, ResolvedPrice } from './price-mappings.js';
import type { Stripe } from './stripe-client.js';

/** What processing one Stripe event did, as `GET /v1/stripe/events` shows it. */
export interface Outcome {
  action: 'created' | 'changed' | 'unchanged' | 'ignored';
  reason: string | null;
  licenses: string[];
  /** Line items or subscription items that mapped to nothing, and why. */
  ignored_items?: Array<{ price: string; reason: string }>;
}

export const ignored = (reason: string, extra: Partial<Outcome> = {}): Outcome => ({ action: 'ignored', reason, licenses: [], ...extra });

/** How purchases reach the customer; the email service implements it. */
export interface PurchaseNotifier {
  enqueueLicenseDelivery(trx: Kysely<Database>, scope: Scope, licenseIds: string[], options?: { dedupeKey?: string }): Promise<unknown>;
  enqueuePaymentFailed?(trx: Kysely<Database>, scope: Scope, licenseId: string, options: { dedupeKey: string }): Promise<unknown>;
}

export const WRITE_BACK_JOB = 'stripe.write_back';

export interface WriteBackPayload {
  accountId: string;
  env: Scope['env'];
  target: 'customers' | 'payment_intents' | 'subscriptions';
  id: string;
  licenseIds: string[];
}

const KEEPS_ACCESS = new Set(['active', 'trialing', 'past_due']);
const SUSPENDS = new Set(['unpaid', 'paused', 'incomplete_expired']);

const id = (value: string | { id: string } | null | undefined): string | null => (value == null ? null : typeof value === 'string' ? value : value.id);

/**
 * The license changes Stripe events lead to. Every method runs inside the
 * transaction that also records the event's outcome, and every creation is
 * keyed on the Stripe objects it comes from (fulfilment keys), so a purchase
 * is one set of licenses whatever order or number of times events arrive.
 * State only moves forward: expiry never shrinks, a revocation is never undone.
 */
export class Fulfilment {
  notifier: PurchaseNotifier | null = null;

  constructor(
    private readonly licenses: LicenseService,
    private readonly customers: CustomerService,
    private readonly priceMappings: PriceMappingService,
    private readonly jobs: JobService,
    private readonly now: () => number,
  ) {}

  resolve(scope: Scope, price: Stripe.Price): ReturnType<PriceMappingService['resolve']> {
    return this.priceMappings.resolve(scope, price);
  }

  /** The Keymint customer for a Stripe customer (or, failing that, an email), linked for next time. */
  async customerFor(trx: Kysely<Database>, scope: Scope, stripeCustomer: string | null, email: string | null, name: string | null): Promise<string | null> {
    if (stripeCustomer) {
      const linked = await findCustomerByStripeId(trx, scope, stripeCustomer);
      if (linked) return linked.id;
    }
    if (!email) return null;
    const customer = await this.customers.findOrCreate(trx, scope, { email, name });
    if (stripeCustomer) await linkStripeCustomer(trx, customer.id, stripeCustomer);
    return customer.id;
  }

  /**
   * Issues what one purchased price grants: `quantity` licenses, or one
   * license with `quantity` seats (max devices multiplied), each keyed
   * `<base>:<n>` so a repeat creates nothing.
   */
  async issue(
    trx: Kysely<Database>,
    scope: Scope,
    resolved: ResolvedPrice,
    purchase: {
      fulfilmentBase: string;
      quantity: number;
      customerId: string | null;
      expiresAt?: number | null;
      stripe: { customer: string | null; checkout_session?: string | null; payment_intent?: string | null; subscription?: string | null; price: string };
    },
  ): Promise<Array<{ id: string; created: boolean }>> {
    const seats = resolved.quantity === 'seats';
    const count = seats ? 1 : Math.max(1, purchase.quantity);
    const baseDevices = resolved.maxDevices ?? resolved.policy.max_devices;
    const issued: Array<{ id: string; created: boolean }> = [];
    for (let n = 0; n < count; n++) {
      const { view, created } = await this.licenses.issue(trx, scope, {
        policy: resolved.policy,
        customerId: purchase.customerId,
        expiresAt: purchase.expiresAt ?? null,
        duration: resolved.duration,
        maxDevices: seats && baseDevices !== null ? baseDevices * Math.max(1, purchase.quantity) : resolved.maxDevices,
        entitlements: resolved.entitlements,
        fulfilmentKey: `${purchase.fulfilmentBase}:${n}`,
        stripe: purchase.stripe,
      });
      issued.push({ id: view.id, created });
      if (purchase.stripe.payment_intent) await recordPayment(trx, scope, purchase.stripe.payment_intent, view.id);
    }
    return issued;
  }

  /** After new licenses commit: the delivery email and the write-back of their ids to Stripe, both as jobs. */
  async announce(trx: Kysely<Database>, scope: Scope, licenseIds: string[], purchaseKey: string, targets: Array<{ target: WriteBackPayload['target']; id: string | null }>): Promise<void> {
    if (licenseIds.length === 0) return;
    await this.notifier?.enqueueLicenseDelivery(trx, scope, licenseIds, { dedupeKey: `email:license_delivery:${purchaseKey}` });
    for (const { target, id: objectId } of targets) {
      if (!objectId) continue;
      const payload: WriteBackPayload = { accountId: scope.accountId, env: scope.env, target, id: objectId, licenseIds };
      await this.jobs.enqueue(trx, scope, WRITE_BACK_JOB, payload, { dedupeKey: `writeback:${target}:${objectId}:${[...licenseIds].sort().join(',')}` });
    }
  }

  /**
   * Brings a subscription's licenses in line with the subscription as Stripe
   * has it now (always freshly retrieved, so events may arrive in any order):
   * creates them the first time the subscription grants access, then follows
   * its period end, quantity, price (policy) and status.
   */
  async syncSubscription(trx: Kysely<Database>, scope: Scope, sub: Stripe.Subscription, resolved: ResolvedPrice, item: Stripe.SubscriptionItem, customer: { email: string | null; name: string | null }, extraPaidUntil = 0): Promise<Outcome> {
    const now = this.now();
    const periodEnd = Math.max(item.current_period_end, extraPaidUntil);
    const quantity = Math.max(1, item.quantity ?? 1);
    const existing = await licensesOfSubscription(trx, scope, sub.id);
    const stripeCustomer = id(sub.customer);
    // All `quantity` of the subscription's licenses (those that exist are found again by their fulfilment keys).
    const issueAll = (customerId: string | null) =>
      this.issue(trx, scope, resolved, {
        fulfilmentBase: `sub:${sub.id}`,
        quantity,
        customerId,
        expiresAt: periodEnd,
        stripe: { customer: stripeCustomer, subscription: sub.id, price: item.price.id },
      });

    if (existing.length === 0) {
      if (!KEEPS_ACCESS.has(sub.status)) return ignored(`subscription ${sub.id} is ${sub.status}; nothing to fulfil`);
      const issued = await issueAll(await this.customerFor(trx, scope, stripeCustomer, customer.email, customer.name));
      const ids = issued.map((i) => i.id);
      await this.announce(trx, scope, ids, `sub:${sub.id}`, [
        { target: 'subscriptions', id: sub.id },
        { target: 'customers', id: stripeCustomer },
      ]);
      return { action: 'created', reason: null, licenses: ids };
    }

    let changed = false;
    const touched: string[] = [];
    // In `licenses` mode a larger quantity adds licenses; they share the subscription's state.
    if (resolved.quantity === 'licenses' && quantity > existing.length && KEEPS_ACCESS.has(sub.status)) {
      const issued = await issueAll(existing[0]?.customer_id ?? null);
      const fresh = issued.filter((i) => i.created).map((i) => i.id);
      if (fresh.length) {
        changed = true;
        await this.announce(trx, scope, fresh, `sub:${sub.id}:q${quantity}`, [{ target: 'subscriptions', id: sub.id }]);
      }
    }
    const all = await licensesOfSubscription(trx, scope, sub.id);
    for (const [index, license] of all.entries()) {
      const surplus = resolved.quantity === 'licenses' && index >= quantity;
      const result = await this.followSubscription(trx, scope, license, sub, resolved, item, periodEnd, quantity, surplus, now);
      if (result) {
        changed = true;
        touched.push(license.id);
      }
    }
    return { action: changed ? 'changed' : 'unchanged', reason: null, licenses: touched.length ? touched : all.map((l) => l.id) };
  }

  private async followSubscription(
    trx: Kysely<Database>,
    scope: Scope,
    license: LicenseRow,
    sub: Stripe.Subscription,
    resolved: ResolvedPrice,
    item: Stripe.SubscriptionItem,
    periodEnd: number,
    quantity: number,
    surplus: boolean,
    now: number,
  ): Promise<boolean> {
    if (license.revoked_at !== null && license.revoked_at <= now) return false; // final
    const policy = resolved.policy;
    const changes: Partial<LicenseRow> = {};
    let type: EventType = 'license.updated';

    if (license.policy_id !== policy.id) {
      // An upgrade or downgrade bought in the portal: same license, same key, new rules.
      changes.policy_id = policy.id;
      changes.product_id = policy.product_id;
      changes.stripe_price = item.price.id;
    }
    const expiresAt = Math.max(license.expires_at ?? 0, periodEnd);
    if (expiresAt !== license.expires_at) {
      changes.expires_at = expiresAt;
      type = 'license.renewed';
    }
    const graceEnds = policy.grace_period ? addDuration(changes.expires_at ?? license.expires_at ?? expiresAt, policy.grace_period) : null;
    if (graceEnds !== license.grace_ends_at) changes.grace_ends_at = graceEnds;
    if (resolved.quantity === 'seats') {
      const base = resolved.maxDevices ?? policy.max_devices;
      const maxDevices = base === null ? null : base * quantity;
      if (maxDevices !== license.max_devices_override) changes.max_devices_override = maxDevices;
    }
    const cancelAtPeriodEnd = sub.cancel_at_period_end ? 1 : 0;
    if (cancelAtPeriodEnd !== license.cancel_at_period_end) changes.cancel_at_period_end = cancelAtPeriodEnd;

    if (sub.status === 'canceled' || surplus) {
      // Access runs to the end of what was paid for, plus grace, then the license is revoked.
      const endedAt = sub.ended_at ?? now;
      const revokeAt = Math.max(now, policy.grace_period ? addDuration(endedAt, policy.grace_period) : endedAt);
      if (license.revoked_at === null || license.revoked_at > revokeAt) {
        changes.revoked_at = revokeAt;
        type = revokeAt <= now ? 'license.revoked' : 'license.updated';
      }
    } else if (SUSPENDS.has(sub.status)) {
      if (license.suspended_at === null) {
        changes.suspended_at = now;
        changes.suspension_reason = 'subscription_status';
        type = 'license.suspended';
      }
    } else if (KEEPS_ACCESS.has(sub.status) && license.suspended_at !== null && (license.suspension_reason === 'subscription_status' || (license.suspension_reason === 'payment_failed' && sub.status !== 'past_due'))) {
      changes.suspended_at = null;
      changes.suspension_reason = null;
      type = 'license.reinstated';
    }
    if (Object.keys(changes).length === 0) return false;
    await this.licenses.changeIn(trx, scope, license.id, type, () => changes);
    return true;
  }

  async suspend(trx: Kysely<Database>, scope: Scope, licenseId: string, reason: SuspensionReason): Promise<boolean> {
    let changed = false;
    await this.licenses.changeIn(trx, scope, licenseId, 'license.suspended', (license, now) => {
      if ((license.revoked_at !== null && license.revoked_at <= now) || license.suspended_at !== null) return null;
      changed = true;
      return { suspended_at: now, suspension_reason: reason };
    });
    return changed;
  }

  /** Lifts a suspension, but only one made for `reason`: a won dispute does not undo a vendor's manual suspension. */
  async reinstate(trx: Kysely<Database>, scope: Scope, licenseId: string, reason: SuspensionReason): Promise<boolean> {
    let changed = false;
    await this.licenses.changeIn(trx, scope, licenseId, 'license.reinstated', (license) => {
      if (license.suspended_at === null || license.suspension_reason !== reason) return null;
      changed = true;
      return { suspended_at: null, suspension_reason: null };
    });
    return changed;
  }

  async revoke(trx: Kysely<Database>, scope: Scope, licenseId: string): Promise<boolean> {
    let changed = false;
    await this.licenses.changeIn(trx, scope, licenseId, 'license.revoked', (license, now) => {
      if (license.revoked_at !== null && license.revoked_at <= now) return null;
      changed = true;
      return { revoked_at: now };
    });
    return changed;
  }
}
