import { accessEndsAt, licenseStatus, type StatusFields } from './status.js';

export type ValidationCode =
  | 'NOT_FOUND'
  | 'REVOKED'
  | 'SUSPENDED'
  | 'PRODUCT_MISMATCH'
  | 'EXPIRED'
  | 'FALLBACK'
  | 'FINGERPRINT_REQUIRED'
  | 'DEVICE_NOT_ACTIVATED'
  | 'HEARTBEAT_DEAD'
  | 'ENTITLEMENTS_MISSING'
  | 'VALID';

export interface ValidationSubject extends StatusFields {
  product_id: string;
  product_code: string | null;
  perpetual_fallback: boolean;
  floating: boolean;
  require_fingerprint: boolean;
  entitlements: string[];
}

export interface ValidationDevice {
  lease_expires_at: number | null;
}

export interface ValidationRequest {
  fingerprint?: string;
  product?: string;
  entitlements?: string[];
}

export interface Verdict {
  valid: boolean;
  code: ValidationCode;
  message: string;
}

const verdict = (code: ValidationCode, message: string): Verdict => ({ valid: code === 'VALID', code, message });

/**
 * License validation as a pure function. The order of the checks is the
 * precedence table of API.md and is part of the contract: an app that gets
 * `SUSPENDED` must be able to rely on the license not also being revoked, so
 * each check assumes every earlier one passed.
 *
 * `device` is the device activated with `request.fingerprint` on this license,
 * or null.
 */
export function validateLicense(
  license: ValidationSubject | null,
  device: ValidationDevice | null,
  request: ValidationRequest,
  now: number,
): Verdict {
  if (!license) return verdict('NOT_FOUND', 'license key not found');

  // Revocation and suspension come before everything else: they are decisions
  // about the customer, and outrank what the license would otherwise allow.
  const status = licenseStatus(license, license.perpetual_fallback, now);
  if (status === 'revoked') return verdict('REVOKED', 'license has been revoked');
  if (status === 'suspended') return verdict('SUSPENDED', 'license is suspended');

  if (request.product !== undefined && request.product !== license.product_id && request.product !== license.product_code) {
    return verdict('PRODUCT_MISMATCH', 'license is for another product');
  }

  if (status === 'expired') return verdict('EXPIRED', 'license has expired');
  // Fallback answers before any device check: the app grants the versions
  // released before expiry whatever machine it runs on.
  if (status === 'fallback') return verdict('FALLBACK', 'license has expired; perpetual fallback applies');

  if (request.fingerprint === undefined) {
    if (license.require_fingerprint) return verdict('FINGERPRINT_REQUIRED', 'a device fingerprint is required');
  } else {
    if (!device) return verdict('DEVICE_NOT_ACTIVATED', 'device is not activated on this license');
    if (license.floating && device.lease_expires_at !== null && device.lease_expires_at <= now) {
      return verdict('HEARTBEAT_DEAD', 'floating lease for this device has lapsed');
    }
  }

  if (request.entitlements !== undefined) {
    const missing = request.entitlements.filter((e) => !license.entitlements.includes(e));
    if (missing.length > 0) return verdict('ENTITLEMENTS_MISSING', `missing entitlements: ${missing.join(', ')}`);
  }

  const end = accessEndsAt(license);
  if (license.expires_at !== null && license.expires_at <= now && end !== null && end > now) {
    return verdict('VALID', 'license is valid (in grace period)');
  }
  return verdict('VALID', 'license is valid');
}
