import type { Kysely } from 'kysely';
import { findEvent, insertEvent, listEvents } from '../db/repositories/events.js';
import type { PageParams } from '../db/repositories/pagination.js';
import type { Database, EventsTable, Scope } from '../db/schema.js';
import { notFound } from '../errors.js';
import { newId } from '../ids.js';

export type EventType =
  | 'product.created'
  | 'product.updated'
  | 'policy.created'
  | 'policy.updated'
  | 'customer.created'
  | 'customer.updated'
  | 'license.created'
  | 'license.updated'
  | 'license.suspended'
  | 'license.reinstated'
  | 'license.revoked'
  | 'license.renewed'
  | 'license.expiring_soon'
  | 'license.expired'
  | 'webhook_endpoint.disabled'
  | 'device.activated'
  | 'device.deactivated'
  | 'stripe.event_failed';

export interface EventView {
  id: string;
  object: 'event';
  type: string;
  created: number;
  livemode: boolean;
  data: { object: Record<string, unknown> };
}

/**
 * The audit/event log. Every change to a product, policy, customer, license or
 * device writes one entry, in the same transaction as the change, carrying the
 * object as the admin API shows it. Secrets (license keys) are never stored
 * here; `reveal` puts them back when an event is read. `fanOut` queues the
 * event's vendor webhook deliveries in that same transaction.
 */
export class EventLog {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => number,
    private readonly reveal: (scope: Scope, object: Record<string, unknown>) => Promise<Record<string, unknown>>,
    /** Runs in the recording transaction: queues the event's webhook deliveries (delivery/webhooks.ts). */
    private readonly fanOut: (trx: Kysely<Database>, scope: Scope, event: { id: string; type: EventType }) => Promise<void> = async () => undefined,
  ) {}

  async record(trx: Kysely<Database>, scope: Scope, type: EventType, object: { id: string; object: string } & Record<string, unknown>): Promise<void> {
    const { key: _secret, ...withoutSecret } = object;
    const id = newId('event');
    await insertEvent(trx, {
      id,
      account_id: scope.accountId,
      env: scope.env,
      type,
      object_type: object.object,
      object_id: object.id,
      data: JSON.stringify(withoutSecret),
      created: this.now(),
    });
    await this.fanOut(trx, scope, { id, type });
  }

  async list(scope: Scope, filter: { type?: string; object_id?: string }, page: PageParams) {
    const result = await listEvents(this.db, scope, filter, page);
    return { data: await Promise.all(result.data.map((row) => this.toView(scope, row))), has_more: result.has_more };
  }

  async get(scope: Scope, id: string): Promise<EventView> {
    const row = await findEvent(this.db, scope, id);
    if (!row) throw notFound('event', id, 'id');
    return this.toView(scope, row);
  }

  private async toView(scope: Scope, row: EventsTable): Promise<EventView> {
    return {
      id: row.id,
      object: 'event',
      type: row.type,
      created: row.created,
      livemode: row.env === 'live',
      data: { object: await this.reveal(scope, JSON.parse(row.data) as Record<string, unknown>) },
    };
  }
}
