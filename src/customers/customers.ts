import type { Kysely } from 'kysely';
import {
  findCustomer,
  findCustomerByEmail,
  insertCustomerIfAbsent,
  listCustomers,
  updateCustomer,
  type CustomerRow,
} from '../db/repositories/customers.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import type { Database, Scope } from '../db/schema.js';
import { conflict, notFound } from '../errors.js';
import type { EventLog } from '../events/event-log.js';
import { newId } from '../ids.js';
import { isUniqueViolation } from '../db/errors.js';

export interface CustomerInput {
  email: string;
  name?: string | null;
  metadata?: Record<string, string>;
}

/** Emails compare case-insensitively; the stored form is trimmed and lower-cased. */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

export function customerView(row: CustomerRow) {
  return {
    id: row.id,
    object: 'customer' as const,
    email: row.email,
    name: row.name,
    stripe_customer: row.stripe_customer_id,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    livemode: row.env === 'live',
    created: row.created,
    updated: row.updated,
  };
}
export type CustomerView = ReturnType<typeof customerView>;

export class CustomerService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly events: EventLog,
    private readonly now: () => number,
  ) {}

  /**
   * The customer with this email, created if new — inside the caller's
   * transaction, so a license and its new customer commit together.
   */
  async findOrCreate(trx: Kysely<Database>, scope: Scope, input: CustomerInput): Promise<CustomerRow> {
    const email = normalizeEmail(input.email);
    const existing = await findCustomerByEmail(trx, scope, email);
    if (existing) return existing;
    const now = this.now();
    const row: CustomerRow = {
      id: newId('customer'),
      account_id: scope.accountId,
      env: scope.env,
      email,
      name: input.name ?? null,
      stripe_customer_id: null,
      metadata: JSON.stringify(input.metadata ?? {}),
      created: now,
      updated: now,
    };
    if (await insertCustomerIfAbsent(trx, row)) {
      await this.events.record(trx, scope, 'customer.created', customerView(row));
      return row;
    }
    // Another request created the same customer in the meantime.
    const raced = await findCustomerByEmail(trx, scope, email);
    if (!raced) throw new Error('customer vanished after a conflicting insert');
    return raced;
  }

  async create(scope: Scope, input: CustomerInput): Promise<CustomerView> {
    return this.db.transaction().execute(async (trx) => {
      if (await findCustomerByEmail(trx, scope, normalizeEmail(input.email))) {
        throw conflict('customer_exists', 'a customer with this email already exists', 'email');
      }
      return customerView(await this.findOrCreate(trx, scope, input));
    });
  }

  async update(scope: Scope, id: string, input: Partial<CustomerInput>): Promise<CustomerView> {
    return this.db
      .transaction()
      .execute(async (trx) => {
        const current = await this.row(trx, scope, id);
        const next: CustomerRow = {
          ...current,
          ...(input.email !== undefined && { email: normalizeEmail(input.email) }),
          ...(input.name !== undefined && { name: input.name }),
          ...(input.metadata !== undefined && { metadata: JSON.stringify({ ...JSON.parse(current.metadata), ...input.metadata }) }),
          updated: this.now(),
        };
        await updateCustomer(trx, scope, id, { email: next.email, name: next.name, metadata: next.metadata, updated: next.updated });
        const view = customerView(next);
        await this.events.record(trx, scope, 'customer.updated', view);
        return view;
      })
      .catch((err: unknown) => {
        if (isUniqueViolation(err)) throw conflict('customer_exists', 'a customer with this email already exists', 'email');
        throw err;
      });
  }

  async get(scope: Scope, id: string): Promise<CustomerView> {
    return customerView(await this.row(this.db, scope, id));
  }

  async list(scope: Scope, filter: { email?: string }, page: PageParams) {
    const email = filter.email === undefined ? undefined : normalizeEmail(filter.email);
    const result = await listCustomers(this.db, scope, { email }, page);
    return mapPage(result, customerView);
  }

  async row(db: Kysely<Database>, scope: Scope, id: string, param = 'id'): Promise<CustomerRow> {
    const row = await findCustomer(db, scope, id);
    if (!row) throw notFound('customer', id, param);
    return row;
  }
}
