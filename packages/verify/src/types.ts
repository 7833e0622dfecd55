/**
 * The objects of the public license API (API.md), as the SDK reads them.
 * Members the server may add later are kept (index signatures), and nothing
 * here is validated beyond what verification needs: the signature already
 * vouches for the content.
 */

export type LicenseStatus = 'active' | 'expired' | 'fallback' | 'suspended' | 'revoked';

export interface License {
  id: string;
  object: 'license';
  status: LicenseStatus;
  product: string;
  policy: string;
  expires_at: number | null;
  grace_ends_at: number | null;
  maintenance_ends_at: number | null;
  max_devices: number | null;
  active_devices: number;
  entitlements: string[];
  metadata: Record<string, string>;
  created: number;
  [member: string]: unknown;
}

export interface Device {
  id: string;
  object: 'device';
  license: string;
  fingerprint: string;
  name: string | null;
  platform: string | null;
  metadata: Record<string, string>;
  lease_expires_at: number | null;
  last_seen_at: number | null;
  created: number;
  [member: string]: unknown;
}

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

/** `POST /v1/licenses/validate`'s answer. */
export interface LicenseValidation {
  object: 'license_validation';
  valid: boolean;
  code: ValidationCode;
  message: string;
  license: License | null;
  device: Device | null;
  nonce?: string;
  ts: number;
  [member: string]: unknown;
}

/** `POST /v1/licenses/checkout`'s answer. */
export interface LicenseFileResponse {
  object: 'license_file';
  certificate: string;
  issued: number;
  expires: number;
  [member: string]: unknown;
}

export interface DeletedDevice {
  id: string;
  object: 'device';
  deleted: true;
}
