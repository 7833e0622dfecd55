import type { DeviceRow, LicenseContextRow, PublicLicenseColumns } from '../db/repositories/licenses.js';
import { licenseStatus } from './status.js';

export function effectiveEntitlements(l: Pick<LicenseContextRow, 'entitlements_override' | 'policy_entitlements'>): string[] {
  return JSON.parse(l.entitlements_override ?? l.policy_entitlements) as string[];
}

export function effectiveMaxDevices(l: Pick<LicenseContextRow, 'max_devices_override' | 'policy_max_devices'>): number | null {
  return l.max_devices_override ?? l.policy_max_devices;
}

/** The columns publicLicenseView() reads (the validation query selects only these). */
export type PublicLicenseFields = PublicLicenseColumns;

/**
 * The license as the vendor's app sees it (public license API, license files).
 * `entitlements`: effectiveEntitlements(l), when the caller has parsed them already.
 */
export function publicLicenseView(l: PublicLicenseFields, now: number, entitlements: string[] = effectiveEntitlements(l)) {
  return {
    id: l.id,
    object: 'license' as const,
    status: licenseStatus(l, l.perpetual_fallback === 1, now),
    product: l.product_id,
    policy: l.policy_id,
    expires_at: l.expires_at,
    grace_ends_at: l.grace_ends_at,
    maintenance_ends_at: l.maintenance_ends_at,
    max_devices: effectiveMaxDevices(l),
    active_devices: Number(l.active_devices),
    floating: l.floating === 1,
    entitlements,
    metadata: JSON.parse(l.metadata) as Record<string, string>,
    created: l.created,
  };
}
export type PublicLicenseView = ReturnType<typeof publicLicenseView>;

/** The license as the admin API shows it: everything public, plus the key and the bookkeeping. */
export function adminLicenseView(l: LicenseContextRow, key: string, now: number) {
  return {
    ...publicLicenseView(l, now),
    key,
    customer: l.customer_id,
    suspended_at: l.suspended_at,
    suspension_reason: l.suspension_reason,
    revoked_at: l.revoked_at,
    stripe: {
      customer: l.stripe_customer,
      checkout_session: l.stripe_checkout_session,
      payment_intent: l.stripe_payment_intent,
      subscription: l.stripe_subscription,
      price: l.stripe_price,
      cancel_at_period_end: l.cancel_at_period_end === 1,
    },
    last_validated_at: l.last_validated_at,
    livemode: l.env === 'live',
    updated: l.updated,
  };
}
export type AdminLicenseView = ReturnType<typeof adminLicenseView>;

export function deviceView(d: Omit<DeviceRow, 'account_id' | 'env'>) {
  return {
    id: d.id,
    object: 'device' as const,
    license: d.license_id,
    fingerprint: d.fingerprint,
    name: d.name,
    platform: d.platform,
    metadata: JSON.parse(d.metadata) as Record<string, string>,
    lease_expires_at: d.lease_expires_at,
    last_seen_at: d.last_seen_at,
    created: d.created,
  };
}
export type DeviceView = ReturnType<typeof deviceView>;
