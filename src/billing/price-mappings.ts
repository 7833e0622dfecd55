import type { Kysely } from 'kysely';
import { findPolicy } from '../db/repositories/catalog.js';
import { type PageParams, mapPage } from '../db/repositories/pagination.js';
import {
  deletePriceMapping,
  findPriceMapping,
  findPriceMappingById,
  insertPriceMapping,
  listPriceMappings,
  type PriceMappingRow,
} from '../db/repositories/stripe.js';
import { isUniqueViolation } from '../db/errors.js';
import type { Database, Scope } from '../db/schema.js';
import { conflict, notFound } from '../errors.js';
import { newId } from '../ids.js';
import type { PolicyRow } from '../db/repositories/catalog.js';
import type { CatalogService } from '../licensing/catalog.js';
import { isDuration } from '../licensing/duration.js';

export interface PriceMappingInput {
  price: string;
  policy: string;
  quantity?: 'licenses' | 'seats';
  max_devices?: number | null;
  duration?: string | null;
  entitlements?: string[] | null;
}

export function priceMappingView(row: PriceMappingRow) {
  return {
    id: row.id,
    object: 'price_mapping' as const,
    price: row.price,
    policy: row.policy_id,
    quantity: row.quantity,
    max_devices: row.max_devices,
    duration: row.duration,
    entitlements: row.entitlements === null ? null : (JSON.parse(row.entitlements) as string[]),
    livemode: row.env === 'live',
    created: row.created,
  };
}
export type PriceMappingView = ReturnType<typeof priceMappingView>;

/** What a purchased price turns into, wherever that was decided. */
export interface ResolvedPrice {
  policy: PolicyRow;
  quantity: 'licenses' | 'seats';
  maxDevices: number | null;
  duration: string | null;
  entitlements: string[] | null;
  source: 'mapping' | 'price_metadata';
}

/** A price as the Stripe SDK returns it, reduced to what mapping needs. */
export interface PriceLike {
  id: string;
  metadata?: Record<string, string> | null;
}

const CODE_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export class PriceMappingService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly catalog: CatalogService,
    private readonly now: () => number,
  ) {}

  async create(scope: Scope, input: PriceMappingInput): Promise<PriceMappingView> {
    const policy = await this.catalog.policyRow(this.db, scope, input.policy, 'policy');
    const row: PriceMappingRow = {
      id: newId('priceMapping'),
      account_id: scope.accountId,
      env: scope.env,
      price: input.price,
      policy_id: policy.id,
      quantity: input.quantity ?? 'licenses',
      max_devices: input.max_devices ?? null,
      duration: input.duration ?? null,
      entitlements: input.entitlements ? JSON.stringify([...new Set(input.entitlements)]) : null,
      created: this.now(),
    };
    try {
      await insertPriceMapping(this.db, row);
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict('price_already_mapped', 'this price already has a mapping; delete it first', 'price');
      throw err;
    }
    return priceMappingView(row);
  }

  async list(scope: Scope, page: PageParams) {
    const result = await listPriceMappings(this.db, scope, page);
    return mapPage(result, priceMappingView);
  }

  async get(scope: Scope, id: string): Promise<PriceMappingView> {
    const row = await findPriceMappingById(this.db, scope, id);
    if (!row) throw notFound('price mapping', id, 'id');
    return priceMappingView(row);
  }

  async delete(scope: Scope, id: string) {
    const row = await findPriceMappingById(this.db, scope, id);
    if (!row) throw notFound('price mapping', id, 'id');
    await deletePriceMapping(this.db, scope, id);
    return { id, object: 'price_mapping' as const, deleted: true as const };
  }

  /**
   * What a purchased price maps to: an explicit mapping wins; otherwise the
   * price's own metadata (`keymint_policy`, `keymint_quantity`,
   * `keymint_max_devices`, `keymint_duration`, `keymint_entitlements`).
   * Returns the reason when the price maps to nothing usable.
   */
  async resolve(scope: Scope, price: PriceLike): Promise<ResolvedPrice | { ignored: string }> {
    const mapping = await findPriceMapping(this.db, scope, price.id);
    if (mapping) {
      const policy = await findPolicy(this.db, scope, mapping.policy_id);
      if (!policy) return { ignored: `price ${price.id} is mapped to policy ${mapping.policy_id}, which no longer exists` };
      return {
        policy,
        quantity: mapping.quantity,
        maxDevices: mapping.max_devices,
        duration: mapping.duration,
        entitlements: mapping.entitlements === null ? null : (JSON.parse(mapping.entitlements) as string[]),
        source: 'mapping',
      };
    }
    const meta = price.metadata ?? {};
    const policyId = meta.keymint_policy?.trim();
    if (!policyId) return { ignored: `price ${price.id} has no price mapping and no keymint_policy metadata` };
    const policy = await findPolicy(this.db, scope, policyId);
    if (!policy) return { ignored: `price ${price.id} names policy ${policyId} in its metadata, which does not exist in ${scope.env} mode` };
    const quantity = meta.keymint_quantity?.trim() || 'licenses';
    if (quantity !== 'licenses' && quantity !== 'seats') return { ignored: `price ${price.id}: keymint_quantity must be "licenses" or "seats"` };
    const maxRaw = meta.keymint_max_devices?.trim();
    const maxDevices = maxRaw ? Number(maxRaw) : null;
    if (maxDevices !== null && !(Number.isInteger(maxDevices) && maxDevices >= 1 && maxDevices <= 100_000)) {
      return { ignored: `price ${price.id}: keymint_max_devices must be a whole number from 1 to 100000` };
    }
    const duration = meta.keymint_duration?.trim() || null;
    if (duration !== null && !isDuration(duration)) return { ignored: `price ${price.id}: keymint_duration must look like 30d, 2w, 1m or 1y` };
    const entRaw = meta.keymint_entitlements?.trim();
    const entitlements = entRaw ? entRaw.split(',').map((e) => e.trim()).filter(Boolean) : null;
    if (entitlements && entitlements.some((e) => !CODE_RE.test(e))) return { ignored: `price ${price.id}: keymint_entitlements must be comma-separated codes` };
    return { policy, quantity, maxDevices, duration, entitlements, source: 'price_metadata' };
  }
}
