export type LicenseStatus = 'active' | 'expired' | 'fallback' | 'suspended' | 'revoked';

export interface StatusFields {
  revoked_at: number | null;
  suspended_at: number | null;
  expires_at: number | null;
  grace_ends_at: number | null;
}

/** When access actually ends: the end of the grace period if there is one, else the expiry. */
export function accessEndsAt(l: Pick<StatusFields, 'expires_at' | 'grace_ends_at'>): number | null {
  return l.grace_ends_at ?? l.expires_at;
}

/**
 * A license's status is derived from its timestamps and the clock, never
 * stored, so expiry needs no job to be correct. A timestamp in the future
 * (a revocation scheduled for the end of a grace period) takes effect when
 * the clock reaches it. Revocation outranks suspension outranks expiry.
 */
export function licenseStatus(l: StatusFields, perpetualFallback: boolean, now: number): LicenseStatus {
  if (l.revoked_at !== null && l.revoked_at <= now) return 'revoked';
  if (l.suspended_at !== null && l.suspended_at <= now) return 'suspended';
  const end = accessEndsAt(l);
  if (end !== null && end <= now) return perpetualFallback ? 'fallback' : 'expired';
  return 'active';
}
