import { createCipheriv, createHash, randomBytes, sign } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sha256Hex } from '../crypto/secret-box.js';
import { findLicenseByKeyHash, findLicenseContext } from '../db/repositories/licenses.js';
import type { Database, Scope } from '../db/schema.js';
import { DomainError, invalidRequest, permission } from '../errors.js';
import type { LicenseApiService } from './license-api.js';
import { hasKeyShape } from './license-key.js';
import type { SigningKey, SigningKeyService } from './signing-keys.js';
import { licenseStatus } from './status.js';
import { deviceView, publicLicenseView, type DeviceView } from './views.js';

/** Fourteen days, unless the checkout asks otherwise (within the policy's bounds). */
export const DEFAULT_FILE_TTL = 14 * 86_400;

export interface CheckoutInput {
  key: string;
  fingerprint?: string;
  ttl?: number;
  encrypt?: boolean;
}

export interface LicenseFile {
  object: 'license_file';
  certificate: string;
  issued: number;
  expires: number;
}

const licenseNotFound = () => new DomainError('not_found', 'license_not_found', 'license key not found', 'key');

/** Base64 wrapped at 76 columns between BEGIN/END lines, as docs/formats.md fixes. */
export function armor(label: string, json: string): string {
  const body = Buffer.from(json, 'utf8').toString('base64').replace(/.{1,76}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** The JSON inside an armored text; null when it is not one. */
export function unarmor(label: string, text: string): unknown {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(text);
  if (!match?.[1]) return null;
  try {
    return JSON.parse(Buffer.from(match[1].replace(/\s+/g, ''), 'base64').toString('utf8'));
  } catch {
    return null;
  }
}

/**
 * License files (API.md, docs/formats.md): a signed snapshot of a license's
 * state an app can trust offline until it expires, optionally encrypted and
 * bound to an activated device. Signed with the key that signed the license
 * key (while it exists), so an app that verifies the key verifies the file.
 */
export class LicenseFileService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly signingKeys: SigningKeyService,
    private readonly licenseApi: LicenseApiService,
    private readonly now: () => number,
  ) {}

  /** `scope`, when given (the admin API), must be the license's environment; otherwise the key alone decides. */
  async checkout(input: CheckoutInput, scope?: Scope): Promise<LicenseFile & { device: DeviceView | null }> {
    if (!hasKeyShape(input.key)) throw licenseNotFound();
    const found = await findLicenseByKeyHash(this.db, sha256Hex(input.key));
    if (!found || (scope && (found.account_id !== scope.accountId || found.env !== scope.env))) throw licenseNotFound();
    const now = this.now();
    const license = await findLicenseContext(this.db, { accountId: found.account_id, env: found.env }, found.id, now);
    if (!license) throw licenseNotFound();
    const status = licenseStatus(license, license.perpetual_fallback === 1, now);
    if (status === 'revoked' || status === 'suspended') throw permission('license_not_active', `license is ${status}; no license file is issued`);

    const policy = await this.db.selectFrom('policies').select(['min_file_ttl', 'max_file_ttl']).where('id', '=', license.policy_id).executeTakeFirstOrThrow();
    const ttl = input.ttl ?? Math.min(Math.max(DEFAULT_FILE_TTL, policy.min_file_ttl), policy.max_file_ttl);
    if (ttl < policy.min_file_ttl || ttl > policy.max_file_ttl) {
      throw invalidRequest('parameter_invalid', `ttl must be between ${policy.min_file_ttl} and ${policy.max_file_ttl} seconds for this license`, 'ttl');
    }

    let device: DeviceView | null = null;
    if (input.fingerprint !== undefined) {
      const row = await this.db.selectFrom('devices').selectAll().where('license_id', '=', license.id).where('fingerprint', '=', input.fingerprint).executeTakeFirst();
      // A lapsed floating lease no longer holds a seat: it gets no file either.
      if (!row || (row.lease_expires_at !== null && row.lease_expires_at <= now)) {
        throw new DomainError('not_found', 'device_not_activated', 'this device is not activated on this license; activate it first', 'fingerprint');
      }
      device = deviceView(row);
    }

    const payload = JSON.stringify({ license: publicLicenseView(license, now), device, issued: now, expires: now + ttl, ttl });
    let enc: Buffer;
    let alg: 'base64+ed25519' | 'aes-256-gcm+ed25519' = 'base64+ed25519';
    if (input.encrypt) {
      alg = 'aes-256-gcm+ed25519';
      const aesKey = createHash('sha256').update(input.key, 'utf8');
      if (input.fingerprint !== undefined) aesKey.update(input.fingerprint, 'utf8');
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', aesKey.digest(), iv);
      enc = Buffer.concat([iv, cipher.update(payload, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    } else {
      enc = Buffer.from(payload, 'utf8');
    }
    const signer = await this.signerFor(found.key_kid, { accountId: found.account_id, env: found.env });
    const encText = enc.toString('base64url');
    const sig = sign(null, Buffer.from(`license/${encText}`, 'ascii'), signer.privateKey).toString('base64url');
    const certificate = armor('KEYMINT LICENSE FILE', JSON.stringify({ alg, kid: signer.id, enc: encText, sig }));
    return { object: 'license_file', certificate, issued: now, expires: now + ttl, device };
  }

  /**
   * An air-gapped activation (docs/formats.md): read the request text the
   * offline machine wrote, activate its device exactly as the online API
   * would (same limit, same idempotency), and check out a file bound to it.
   */
  async activateOffline(scope: Scope, text: string, options: { ttl?: number; encrypt?: boolean }) {
    const request = unarmor('KEYMINT ACTIVATION REQUEST', text) as Record<string, unknown> | null;
    const str = (v: unknown, max: number) => typeof v === 'string' && v.length >= 1 && v.length <= max;
    if (
      !request ||
      request.v !== 1 ||
      !str(request.key, 1024) ||
      !str(request.fingerprint, 255) ||
      !(typeof request.nonce === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(request.nonce)) ||
      (request.name != null && !str(request.name, 200)) ||
      (request.platform != null && !str(request.platform, 100)) ||
      (request.metadata != null && (typeof request.metadata !== 'object' || Array.isArray(request.metadata) || Object.values(request.metadata).some((v) => typeof v !== 'string')))
    ) {
      throw invalidRequest('invalid_activation_request', 'this is not a Keymint activation request (-----BEGIN KEYMINT ACTIVATION REQUEST----- …)', 'request');
    }
    const key = (request.key as string).trim();
    const fingerprint = request.fingerprint as string;
    // The admin key's environment must own the license before anything changes.
    const found = hasKeyShape(key) ? await findLicenseByKeyHash(this.db, sha256Hex(key)) : undefined;
    if (!found || found.account_id !== scope.accountId || found.env !== scope.env) throw licenseNotFound();
    const { created } = await this.licenseApi.activate({
      key,
      fingerprint,
      name: (request.name as string | null | undefined) ?? null,
      platform: (request.platform as string | null | undefined) ?? null,
      metadata: (request.metadata as Record<string, string> | undefined) ?? {},
    });
    const file = await this.checkout({ key, fingerprint, ttl: options.ttl, encrypt: options.encrypt ?? true }, scope);
    return { file, created };
  }

  private async signerFor(kid: string, scope: Scope): Promise<SigningKey> {
    try {
      return await this.signingKeys.byId(kid);
    } catch {
      return this.signingKeys.active(scope);
    }
  }
}
