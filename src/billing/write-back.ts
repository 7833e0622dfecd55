import { PermanentJobError } from '../jobs/worker.js';
import type { StripeConnectionService } from './connection.js';
import type { WriteBackPayload } from './fulfilment.js';

/** Stripe metadata values hold at most 500 characters. */
const MAX_METADATA_VALUE = 500;

/**
 * The write-back job: records the ids of the licenses a purchase created in
 * the Stripe object's metadata (`keymint_license_ids`), merged with what is
 * there, so vendors see them in the Stripe dashboard. Idempotent: the same
 * ids merge to the same value.
 */
export function writeBackHandler(connections: StripeConnectionService) {
  return async (payload: unknown): Promise<void> => {
    const p = payload as WriteBackPayload;
    const stripe = await connections.clientFor({ accountId: p.accountId, env: p.env });
    if (!stripe) throw new PermanentJobError('Stripe is no longer connected');
    const resource = { customers: stripe.customers, payment_intents: stripe.paymentIntents, subscriptions: stripe.subscriptions }[p.target];
    const current = (await resource.retrieve(p.id)) as { metadata?: Record<string, string> | null; deleted?: boolean };
    if (current.deleted) return;
    const known = (current.metadata?.keymint_license_ids ?? '').split(',').filter(Boolean);
    const merged = [...new Set([...known, ...p.licenseIds])];
    let value = merged.join(',');
    // Too many to fit: keep the newest, which are the ones this purchase just created.
    while (value.length > MAX_METADATA_VALUE) value = value.slice(value.indexOf(',') + 1);
    if (value === current.metadata?.keymint_license_ids) return;
    await (resource.update as (id: string, params: { metadata: Record<string, string> }) => Promise<unknown>)(p.id, { metadata: { keymint_license_ids: value } });
  };
}
