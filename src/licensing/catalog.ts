import type { Kysely } from 'kysely';
import {
  findPolicy,
  findProduct,
  insertPolicy,
  insertProduct,
  listPolicies,
  listProducts,
  updatePolicy,
  updateProduct,
  type PolicyRow,
  type ProductRow,
} from '../db/repositories/catalog.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import type { Bool, Database, LicenseType, Scope } from '../db/schema.js';
import { conflict, invalidRequest, notFound } from '../errors.js';
import type { EventLog } from '../events/event-log.js';
import { newId } from '../ids.js';
import { isUniqueViolation } from '../db/errors.js';
import { mergeEmailSettings, parseEmailSettings, type EmailSettingsInput } from '../delivery/email-settings.js';

export type Metadata = Record<string, string>;

export interface ProductInput {
  name: string;
  code?: string | null;
  perpetual_fallback?: boolean;
  metadata?: Metadata;
  /** Partial: only the settings given change; null resets one to its default. */
  email?: EmailSettingsInput;
}

export interface PolicyInput {
  product: string;
  name: string;
  license_type: LicenseType;
  duration?: string | null;
  expires_at?: number | null;
  max_devices?: number | null;
  floating?: boolean;
  heartbeat_interval?: number | null;
  entitlements?: string[];
  grace_period?: string | null;
  maintenance_period?: string | null;
  require_fingerprint?: boolean;
  /** Stripe: suspend at the first failed payment, or keep access until the paid period (+ grace) runs out. */
  on_payment_failure?: PolicyRow['on_payment_failure'];
  on_partial_refund?: PolicyRow['on_partial_refund'];
  on_subscription_refund?: PolicyRow['on_subscription_refund'];
  /** Bounds, in seconds, on the lifetime of license files (offline use). */
  min_file_ttl?: number;
  max_file_ttl?: number;
  metadata?: Metadata;
}

export type PolicyUpdate = Partial<Omit<PolicyInput, 'product' | 'license_type'>>;

/** The lease a floating device gets when the policy does not say: ten minutes. */
export const DEFAULT_HEARTBEAT_INTERVAL = 600;

export function productView(row: ProductRow) {
  return {
    id: row.id,
    object: 'product' as const,
    name: row.name,
    code: row.code,
    perpetual_fallback: row.perpetual_fallback === 1,
    email: parseEmailSettings(row.email_settings),
    metadata: JSON.parse(row.metadata) as Metadata,
    livemode: row.env === 'live',
    created: row.created,
    updated: row.updated,
  };
}
export type ProductView = ReturnType<typeof productView>;

export function policyView(row: PolicyRow) {
  return {
    id: row.id,
    object: 'policy' as const,
    product: row.product_id,
    name: row.name,
    license_type: row.license_type,
    duration: row.duration,
    expires_at: row.fixed_expires_at,
    max_devices: row.max_devices,
    floating: row.floating === 1,
    heartbeat_interval: row.heartbeat_interval,
    entitlements: JSON.parse(row.entitlements) as string[],
    grace_period: row.grace_period,
    maintenance_period: row.maintenance_period,
    require_fingerprint: row.require_fingerprint === 1,
    on_payment_failure: row.on_payment_failure,
    on_partial_refund: row.on_partial_refund,
    on_subscription_refund: row.on_subscription_refund,
    min_file_ttl: row.min_file_ttl,
    max_file_ttl: row.max_file_ttl,
    metadata: JSON.parse(row.metadata) as Metadata,
    livemode: row.env === 'live',
    created: row.created,
    updated: row.updated,
  };
}
export type PolicyView = ReturnType<typeof policyView>;

/** Checks that hold for a policy as a whole, after create or update. */
function checkPolicy(p: Pick<PolicyRow, 'license_type' | 'duration' | 'fixed_expires_at' | 'floating' | 'heartbeat_interval' | 'min_file_ttl' | 'max_file_ttl'>): void {
  if (p.min_file_ttl > p.max_file_ttl) throw invalidRequest('parameter_invalid', 'min_file_ttl cannot exceed max_file_ttl', 'min_file_ttl');
  if (p.license_type === 'perpetual' && (p.duration !== null || p.fixed_expires_at !== null)) {
    throw invalidRequest('parameter_invalid', 'a perpetual policy cannot have a duration or an expiry date', p.duration !== null ? 'duration' : 'expires_at');
  }
  if (p.license_type === 'timed' && (p.duration === null) === (p.fixed_expires_at === null)) {
    throw invalidRequest('parameter_missing', 'a timed policy needs exactly one of duration or expires_at', 'duration');
  }
  if (p.license_type === 'subscription' && p.fixed_expires_at !== null) {
    throw invalidRequest('parameter_invalid', 'a subscription policy follows its billing periods and cannot have a fixed expiry date', 'expires_at');
  }
  if (p.floating === 0 && p.heartbeat_interval !== null) {
    throw invalidRequest('parameter_invalid', 'heartbeat_interval applies only to floating policies', 'heartbeat_interval');
  }
}

export class CatalogService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly events: EventLog,
    private readonly now: () => number,
  ) {}

  async createProduct(scope: Scope, input: ProductInput): Promise<ProductView> {
    const now = this.now();
    const row: ProductRow = {
      id: newId('product'),
      account_id: scope.accountId,
      env: scope.env,
      name: input.name,
      code: input.code ?? null,
      perpetual_fallback: input.perpetual_fallback ? 1 : 0,
      metadata: JSON.stringify(input.metadata ?? {}),
      email_settings: mergeEmailSettings('{}', input.email),
      created: now,
      updated: now,
    };
    const view = productView(row);
    await this.db
      .transaction()
      .execute(async (trx) => {
        await insertProduct(trx, row);
        await this.events.record(trx, scope, 'product.created', view);
      })
      .catch(rethrowCodeTaken);
    return view;
  }

  async updateProduct(scope: Scope, id: string, input: Partial<ProductInput>): Promise<ProductView> {
    return this.db
      .transaction()
      .execute(async (trx) => {
        const current = await this.productRow(trx, scope, id);
        const changes = {
          ...(input.name !== undefined && { name: input.name }),
          ...(input.code !== undefined && { code: input.code }),
          ...(input.perpetual_fallback !== undefined && { perpetual_fallback: (input.perpetual_fallback ? 1 : 0) as Bool }),
          ...(input.metadata !== undefined && { metadata: JSON.stringify({ ...JSON.parse(current.metadata), ...input.metadata }) }),
          ...(input.email !== undefined && { email_settings: mergeEmailSettings(current.email_settings, input.email) }),
          updated: this.now(),
        } as const;
        await updateProduct(trx, scope, current.id, changes);
        const view = productView({ ...current, ...changes });
        await this.events.record(trx, scope, 'product.updated', view);
        return view;
      })
      .catch(rethrowCodeTaken);
  }

  async getProduct(scope: Scope, idOrCode: string): Promise<ProductView> {
    return productView(await this.productRow(this.db, scope, idOrCode));
  }

  async listProducts(scope: Scope, page: PageParams) {
    const result = await listProducts(this.db, scope, page);
    return mapPage(result, productView);
  }

  async productRow(db: Kysely<Database>, scope: Scope, idOrCode: string, param = 'id'): Promise<ProductRow> {
    const row = await findProduct(db, scope, idOrCode);
    if (!row) throw notFound('product', idOrCode, param);
    return row;
  }

  async createPolicy(scope: Scope, input: PolicyInput): Promise<PolicyView> {
    const product = await this.productRow(this.db, scope, input.product, 'product');
    const now = this.now();
    const floating: Bool = input.floating ? 1 : 0;
    const row: PolicyRow = {
      id: newId('policy'),
      account_id: scope.accountId,
      env: scope.env,
      product_id: product.id,
      name: input.name,
      license_type: input.license_type,
      duration: input.duration ?? null,
      fixed_expires_at: input.expires_at ?? null,
      max_devices: input.max_devices ?? null,
      floating,
      heartbeat_interval: input.heartbeat_interval ?? (floating ? DEFAULT_HEARTBEAT_INTERVAL : null),
      entitlements: JSON.stringify([...new Set(input.entitlements ?? [])]),
      grace_period: input.grace_period ?? null,
      maintenance_period: input.maintenance_period ?? null,
      require_fingerprint: input.require_fingerprint ? 1 : 0,
      on_payment_failure: input.on_payment_failure ?? 'keep_until_period_end',
      on_partial_refund: input.on_partial_refund ?? 'ignore',
      on_subscription_refund: input.on_subscription_refund ?? 'revoke',
      min_file_ttl: input.min_file_ttl ?? 3600,
      max_file_ttl: input.max_file_ttl ?? 90 * 86_400,
      metadata: JSON.stringify(input.metadata ?? {}),
      created: now,
      updated: now,
    };
    checkPolicy(row);
    const view = policyView(row);
    await this.db.transaction().execute(async (trx) => {
      await insertPolicy(trx, row);
      await this.events.record(trx, scope, 'policy.created', view);
    });
    return view;
  }

  async updatePolicy(scope: Scope, id: string, input: PolicyUpdate): Promise<PolicyView> {
    return this.db.transaction().execute(async (trx) => {
      const current = await this.policyRow(trx, scope, id);
      const floating: Bool = input.floating === undefined ? current.floating : input.floating ? 1 : 0;
      const next: PolicyRow = {
        ...current,
        ...(input.name !== undefined && { name: input.name }),
        ...(input.duration !== undefined && { duration: input.duration }),
        ...(input.expires_at !== undefined && { fixed_expires_at: input.expires_at }),
        ...(input.max_devices !== undefined && { max_devices: input.max_devices }),
        floating,
        heartbeat_interval:
          input.heartbeat_interval !== undefined
            ? input.heartbeat_interval
            : floating
              ? (current.heartbeat_interval ?? DEFAULT_HEARTBEAT_INTERVAL)
              : null,
        ...(input.entitlements !== undefined && { entitlements: JSON.stringify([...new Set(input.entitlements)]) }),
        ...(input.grace_period !== undefined && { grace_period: input.grace_period }),
        ...(input.maintenance_period !== undefined && { maintenance_period: input.maintenance_period }),
        ...(input.require_fingerprint !== undefined && { require_fingerprint: input.require_fingerprint ? 1 : 0 }),
        ...(input.on_payment_failure !== undefined && { on_payment_failure: input.on_payment_failure }),
        ...(input.on_partial_refund !== undefined && { on_partial_refund: input.on_partial_refund }),
        ...(input.on_subscription_refund !== undefined && { on_subscription_refund: input.on_subscription_refund }),
        ...(input.min_file_ttl !== undefined && { min_file_ttl: input.min_file_ttl }),
        ...(input.max_file_ttl !== undefined && { max_file_ttl: input.max_file_ttl }),
        ...(input.metadata !== undefined && { metadata: JSON.stringify({ ...JSON.parse(current.metadata), ...input.metadata }) }),
        updated: this.now(),
      };
      checkPolicy(next);
      const { id: _id, account_id: _a, env: _e, ...changes } = next;
      await updatePolicy(trx, scope, current.id, changes);
      const view = policyView(next);
      await this.events.record(trx, scope, 'policy.updated', view);
      return view;
    });
  }

  async getPolicy(scope: Scope, id: string): Promise<PolicyView> {
    return policyView(await this.policyRow(this.db, scope, id));
  }

  async listPolicies(scope: Scope, filter: { product?: string }, page: PageParams) {
    let productId = filter.product;
    if (productId !== undefined) productId = (await findProduct(this.db, scope, productId))?.id ?? productId;
    const result = await listPolicies(this.db, scope, { product: productId }, page);
    return mapPage(result, policyView);
  }

  async policyRow(db: Kysely<Database>, scope: Scope, id: string, param = 'id'): Promise<PolicyRow> {
    const row = await findPolicy(db, scope, id);
    if (!row) throw notFound('policy', id, param);
    return row;
  }
}

function rethrowCodeTaken(err: unknown): never {
  if (isUniqueViolation(err)) throw conflict('product_code_taken', 'another product of this environment already uses this code', 'code');
  throw err;
}
