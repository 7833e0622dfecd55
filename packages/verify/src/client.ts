import { createNonce } from './activation-request.js';
import { sha256 } from './crypto.js';
import { concatBytes, parseJsonObject, utf8, utf8Decode } from './encoding.js';
import { KeymintApiError, KeymintError, KeymintNetworkError, KeymintOfflineError, KeymintSignatureError, type LicenseFileRejection } from './errors.js';
import { verifyKey } from './license-key.js';
import { DEFAULT_CLOCK_SKEW, verifyLicenseFile, type LicenseFilePayload, type LicenseFileVerification } from './license-file.js';
import { createKeySet, type KeySet, type PublicKeyInput } from './public-keys.js';
import { ACCEPT_SIGNATURE_HEADER, DEFAULT_SIGNATURE_TOLERANCE, SIGNATURE_HEADER, verifyResponseSignature } from './response-signature.js';
import { MemoryStorage, type LicenseStorage } from './storage.js';
import type { DeletedDevice, Device, LicenseFileResponse, LicenseValidation, ValidationCode } from './types.js';

export interface KeymintClientOptions {
  /** Where Keymint answers, e.g. `https://licensing.example.com` (a path prefix before `/v1` is fine). */
  baseUrl: string;
  /** The environment's trusted signing keys (see `PublicKeyInput`); ship them inside the app. */
  publicKeys: PublicKeyInput;
  /** Per request, covering the whole response; default 10,000 ms. */
  timeoutMs?: number;
  /** Ask for and require a `Keymint-Signature` on every response; default true. Turn off only for debugging. */
  verifyResponses?: boolean;
  /** How old a signed response may be, in seconds (against the device clock and the latest server time seen); default 300. */
  signatureTolerance?: number;
  /** How far in the future a license file's `issued` may be before it counts as a rolled-back clock; default 300 s. */
  clockSkew?: number;
  /** Where the last good license file and the latest server time are kept; in memory by default. */
  storage?: LicenseStorage;
  /** When the server cannot be reached, let `validate` answer from the last good license file; default true. */
  offlineFallback?: boolean;
  /** Keep a license file for offline use: check one out after `activate` and, when missing or half-way to expiry, after a valid `validate`; default true. */
  autoCheckout?: boolean;
  /** TTL (seconds) asked for in automatic checkouts; the policy's default when unset. */
  checkoutTtl?: number;
  /** Told about failures of background work (automatic checkouts, storage writes), which never fail the call that started them. */
  onError?: (error: unknown) => void;
  /** A `fetch` to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
  /** Extra request headers, e.g. `User-Agent`. */
  headers?: Record<string, string>;
  /** The device clock in unix seconds; for tests. */
  now?: () => number;
}

export interface ValidateParams {
  key: string;
  fingerprint?: string;
  /** A product id or code; offline, only an id (`pdt_…`) can be compared. */
  product?: string;
  entitlements?: string[];
}

export interface ActivateParams {
  key: string;
  fingerprint: string;
  name?: string | null;
  platform?: string | null;
  metadata?: Record<string, string>;
}

export interface DeviceParams {
  key: string;
  fingerprint: string;
}

export interface CheckoutParams {
  key: string;
  fingerprint?: string;
  ttl?: number;
  encrypt?: boolean;
  /** Keep the file for the offline fallback; default true. */
  store?: boolean;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export type Validation = OnlineValidation | OfflineValidation;

export interface OnlineValidation extends LicenseValidation {
  offline: false;
  /** Set when the key failed verification against `publicKeys`: answered `NOT_FOUND` without asking the server. */
  local?: true;
}

/** The answer `validate` gives from the stored license file while the server cannot be reached. */
export interface OfflineValidation extends LicenseValidation {
  offline: true;
  /** The license file the answer comes from. */
  file: { kid: string; issued: number; expires: number; encrypted: boolean };
  /** Why the server could not be reached. */
  cause: unknown;
}

export interface CheckoutResult extends LicenseFileResponse {
  /** The verified content of `certificate`. */
  payload: LicenseFilePayload;
}

const SERVER_TIME = 'server-time';
/** Persist the server time at most this often (seconds): it is a floor for the offline clock, not a precise value. */
const SERVER_TIME_PERSIST_STEP = 60;
/** Well above any real response; the bound keeps a hostile server from making the app buffer gigabytes. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** Online answers that are about the request, not the license: they do not invalidate a stored file. */
const REQUEST_SPECIFIC_CODES: ReadonlySet<ValidationCode> = new Set(['PRODUCT_MISMATCH', 'ENTITLEMENTS_MISSING']);

/**
 * The public license API from an app, with every response's signature
 * checked (a fake server behind a hosts-file entry, or a replayed answer,
 * raises `KeymintSignatureError`) and an offline fallback: when the server is
 * unreachable, `validate` answers from the last good license file, verified
 * against a clock that cannot be set back before the latest server time seen.
 */
export class KeymintClient {
  private readonly baseUrl: string;
  private readonly keys: KeySet;
  private readonly timeoutMs: number;
  private readonly verifyResponses: boolean;
  private readonly tolerance: number;
  private readonly clockSkew: number;
  private readonly storage: LicenseStorage;
  private readonly offlineFallback: boolean;
  private readonly autoCheckout: boolean;
  private readonly checkoutTtl: number | undefined;
  private readonly onError: (error: unknown) => void;
  private readonly fetchImpl: typeof globalThis.fetch;
  private readonly headers: Record<string, string>;
  private readonly clock: () => number;
  private serverTime: number | null = null;
  private persistedServerTime = 0;
  /** Lifetimes of the files in storage, by storage name, so a fresh one is not re-verified on every validation. */
  private readonly fileLife = new Map<string, { issued: number; expires: number }>();

  constructor(options: KeymintClientOptions) {
    if (!options || typeof options.baseUrl !== 'string') throw new TypeError('baseUrl is required');
    const url = new URL(options.baseUrl);
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.keys = createKeySet(options.publicKeys);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.verifyResponses = options.verifyResponses ?? true;
    this.tolerance = options.signatureTolerance ?? DEFAULT_SIGNATURE_TOLERANCE;
    this.clockSkew = options.clockSkew ?? DEFAULT_CLOCK_SKEW;
    this.storage = options.storage ?? new MemoryStorage();
    this.offlineFallback = options.offlineFallback ?? true;
    this.autoCheckout = options.autoCheckout ?? true;
    this.checkoutTtl = options.checkoutTtl;
    this.onError = options.onError ?? (() => {});
    const fetchImpl = options.fetch ?? (globalThis as { fetch?: typeof globalThis.fetch }).fetch;
    if (!fetchImpl) throw new TypeError('this platform has no fetch; pass options.fetch');
    // Browsers throw "Illegal invocation" when fetch is called as a method of anything but the global.
    this.fetchImpl = options.fetch ? fetchImpl : fetchImpl.bind(globalThis);
    this.headers = { ...options.headers };
    this.clock = options.now ?? (() => Date.now() / 1000);
  }

  /**
   * `POST /v1/licenses/validate`. Online, the server's verdict (`offline:
   * false`). When the server cannot be reached (timeout, network error, 5xx)
   * and a stored license file verifies, a verdict from that file (`offline:
   * true`); with no usable file, `KeymintOfflineError`. A response that fails
   * its signature check is never "offline": it throws `KeymintSignatureError`.
   */
  async validate(params: ValidateParams, options: RequestOptions = {}): Promise<Validation> {
    // A key that does not verify here can never be valid for this app, and the
    // server could not say which signing key to answer with: no round trip.
    const keyCheck = await verifyKey(params.key, this.keys);
    if (!keyCheck.valid) {
      return {
        object: 'license_validation',
        valid: false,
        code: 'NOT_FOUND',
        message: `the license key is not genuine: ${keyCheck.message}`,
        license: null,
        device: null,
        ts: await this.trustedNow(),
        offline: false,
        local: true,
      };
    }
    let result: LicenseValidation;
    try {
      result = await this.request<LicenseValidation>('/v1/licenses/validate', compact({ ...params, key: params.key.trim() }), options.signal);
    } catch (error) {
      if (error instanceof KeymintNetworkError && this.offlineFallback) return this.validateOffline(params, error);
      throw error;
    }
    await this.afterOnlineValidation(params, result);
    return { ...result, offline: false };
  }

  /**
   * A verdict from the stored license file alone, without asking the server;
   * what `validate` falls back to. Throws `KeymintOfflineError` when no stored
   * file verifies (its `fileReason` says why: `NO_LICENSE_FILE`, `EXPIRED`,
   * `BAD_SIGNATURE` for an edited file, …).
   */
  async validateOffline(params: ValidateParams, cause: unknown = null): Promise<OfflineValidation> {
    const now = await this.trustedNow();
    let rejection: { reason: LicenseFileRejection; message: string } | null = null;
    for (const fingerprint of fingerprintsToTry(params.fingerprint)) {
      const name = await fileName(params.key, fingerprint);
      const text = await this.storage.get(name);
      if (!text) continue;
      const check = await verifyLicenseFile(text, { publicKeys: this.keys, key: params.key, fingerprint: params.fingerprint, now, clockSkew: this.clockSkew });
      if (check.valid) return offlineVerdict(params, check, now, cause);
      rejection ??= { reason: check.reason, message: check.message };
    }
    const reason = rejection?.reason ?? 'NO_LICENSE_FILE';
    const detail = rejection ? `the stored license file was refused: ${rejection.message}` : 'no license file is stored for this license';
    throw new KeymintOfflineError(reason, `${cause === null ? 'offline validation failed' : 'the license server cannot be reached'} and ${detail}`, cause);
  }

  /** `POST /v1/licenses/activate`; then, with `autoCheckout`, keeps a device-bound license file for offline use. */
  async activate(params: ActivateParams, options: RequestOptions = {}): Promise<Device> {
    await this.requireGenuineKey(params.key);
    const device = await this.request<Device>('/v1/licenses/activate', compact({ ...params, key: params.key.trim() }), options.signal);
    if (this.autoCheckout) await this.backgroundCheckout({ key: params.key, fingerprint: params.fingerprint }, options.signal);
    return device;
  }

  /** `POST /v1/licenses/deactivate`; also forgets this device's stored license file. */
  async deactivate(params: DeviceParams, options: RequestOptions = {}): Promise<DeletedDevice> {
    await this.requireGenuineKey(params.key);
    const deleted = await this.request<DeletedDevice>('/v1/licenses/deactivate', { key: params.key.trim(), fingerprint: params.fingerprint }, options.signal);
    await this.forget(params.key, params.fingerprint, false);
    return deleted;
  }

  /** `POST /v1/licenses/heartbeat`: renews a floating device's lease. */
  async heartbeat(params: DeviceParams, options: RequestOptions = {}): Promise<Device> {
    await this.requireGenuineKey(params.key);
    return this.request<Device>('/v1/licenses/heartbeat', { key: params.key.trim(), fingerprint: params.fingerprint }, options.signal);
  }

  /**
   * `POST /v1/licenses/checkout`: a signed license file, verified here before
   * it is returned and (unless `store: false`) kept for the offline fallback.
   */
  async checkout(params: CheckoutParams, options: RequestOptions = {}): Promise<CheckoutResult> {
    await this.requireGenuineKey(params.key);
    const body = compact({ key: params.key.trim(), fingerprint: params.fingerprint, ttl: params.ttl, encrypt: params.encrypt });
    const response = await this.request<LicenseFileResponse>('/v1/licenses/checkout', body, options.signal);
    const check = await verifyLicenseFile(response.certificate, {
      publicKeys: this.keys,
      key: params.key,
      fingerprint: params.fingerprint,
      now: await this.trustedNow(),
      clockSkew: this.clockSkew,
    });
    if (!check.valid) throw new KeymintError('INVALID_LICENSE_FILE', `the license file from the server does not verify: ${check.message}`);
    if (params.store ?? true) await this.keep(params.key, check, response.certificate);
    return { ...response, payload: check.payload };
  }

  /**
   * Verifies a license file obtained some other way — an air-gapped
   * activation, a file the customer downloaded — and keeps it for offline
   * validation when it is valid.
   */
  async importLicenseFile(certificate: string, params: { key: string; fingerprint?: string }): Promise<LicenseFileVerification> {
    const check = await verifyLicenseFile(certificate, {
      publicKeys: this.keys,
      key: params.key,
      fingerprint: params.fingerprint,
      now: await this.trustedNow(),
      clockSkew: this.clockSkew,
    });
    if (check.valid) await this.keep(params.key, check, certificate);
    return check;
  }

  /** Forgets the stored license files of a license (and device). */
  async forget(key: string, fingerprint?: string, includeLicenseWide = true): Promise<void> {
    const fingerprints = includeLicenseWide ? fingerprintsToTry(fingerprint) : [fingerprint];
    for (const fp of fingerprints) {
      const name = await fileName(key, fp);
      this.fileLife.delete(name);
      await this.storage.delete(name);
    }
  }

  /** The device clock, but never earlier than the latest server time seen: setting the clock back does not revive an expired file. */
  async trustedNow(): Promise<number> {
    const local = Math.floor(this.clock());
    const server = await this.lastServerTime();
    return server === null ? local : Math.max(local, server);
  }

  /** Also rules out non-strings before `.trim()` is called on them. */
  private async requireGenuineKey(key: string): Promise<void> {
    const check = await verifyKey(key, this.keys);
    if (!check.valid) throw new KeymintError('INVALID_LICENSE_KEY', `the license key is not genuine (${check.reason}): ${check.message}`);
  }

  private async afterOnlineValidation(params: ValidateParams, result: LicenseValidation): Promise<void> {
    try {
      if (!result.valid) {
        // The server says no for this license or device: a file from better
        // days must not grant access the moment the network drops.
        if (!REQUEST_SPECIFIC_CODES.has(result.code)) await this.forget(params.key, params.fingerprint);
        return;
      }
      if (!this.autoCheckout) return;
      const fingerprint = result.device ? params.fingerprint : undefined;
      const name = await fileName(params.key, fingerprint);
      const life = this.fileLife.get(name) ?? (await this.storedLife(name, params.key, fingerprint));
      const now = await this.trustedNow();
      if (life && now < life.issued + (life.expires - life.issued) / 2) return;
      await this.backgroundCheckout({ key: params.key, fingerprint });
    } catch (error) {
      this.onError(error);
    }
  }

  private async storedLife(name: string, key: string, fingerprint: string | undefined): Promise<{ issued: number; expires: number } | null> {
    const text = await this.storage.get(name);
    if (!text) return null;
    const check = await verifyLicenseFile(text, { publicKeys: this.keys, key, fingerprint, now: await this.trustedNow(), clockSkew: this.clockSkew });
    if (!check.valid) return null;
    const life = { issued: check.payload.issued, expires: check.payload.expires };
    this.fileLife.set(name, life);
    return life;
  }

  private async backgroundCheckout(params: { key: string; fingerprint?: string }, signal?: AbortSignal): Promise<void> {
    try {
      await this.checkout({ ...params, encrypt: true, ...(this.checkoutTtl !== undefined && { ttl: this.checkoutTtl }) }, { signal });
    } catch (error) {
      this.onError(error);
    }
  }

  private async keep(key: string, check: Extract<LicenseFileVerification, { valid: true }>, certificate: string): Promise<void> {
    const fingerprint = check.payload.device?.fingerprint;
    const name = await fileName(key, fingerprint);
    await this.storage.set(name, certificate);
    this.fileLife.set(name, { issued: check.payload.issued, expires: check.payload.expires });
  }

  private async lastServerTime(): Promise<number | null> {
    if (this.serverTime === null) {
      try {
        const stored = Number(await this.storage.get(SERVER_TIME));
        if (Number.isSafeInteger(stored) && stored > 0) this.serverTime = this.persistedServerTime = stored;
      } catch (error) {
        this.onError(error);
      }
    }
    return this.serverTime;
  }

  private async sawServerTime(t: number): Promise<void> {
    const last = await this.lastServerTime();
    if (last !== null && t <= last) return;
    this.serverTime = t;
    if (t - this.persistedServerTime < SERVER_TIME_PERSIST_STEP) return;
    try {
      await this.storage.set(SERVER_TIME, String(t));
      this.persistedServerTime = t;
    } catch (error) {
      this.onError(error);
    }
  }

  private async request<T>(path: string, body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted) throw signal.reason;
    const nonce = this.verifyResponses ? await createNonce() : null;
    const headers: Record<string, string> = { ...this.headers, 'Content-Type': 'application/json', Accept: 'application/json' };
    if (nonce) headers[ACCEPT_SIGNATURE_HEADER] = nonce;

    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const transportError = (cause: unknown) => {
      if (signal?.aborted) return signal.reason as unknown;
      if (timedOut) return new KeymintNetworkError('TIMEOUT', `the license server did not answer within ${this.timeoutMs} ms`, { cause });
      return new KeymintNetworkError('NETWORK_ERROR', 'the license server cannot be reached', { cause });
    };

    try {
      let response: Response;
      try {
        response = await this.fetchImpl(this.baseUrl + path, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: controller.signal,
          // Keymint never redirects; following one would send the key elsewhere.
          redirect: 'manual',
        });
      } catch (cause) {
        throw transportError(cause);
      }
      if (response.type === 'opaqueredirect' || (response.status >= 300 && response.status < 400)) {
        throw new KeymintError('UNEXPECTED_REDIRECT', `the license server answered with a redirect (${response.status}); check baseUrl`);
      }
      const declared = Number(response.headers.get('content-length') ?? 0);
      if (declared > MAX_RESPONSE_BYTES) throw new KeymintError('INVALID_RESPONSE', 'the response is too large to be from Keymint');
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await response.arrayBuffer());
      } catch (cause) {
        throw transportError(cause);
      }
      if (bytes.length > MAX_RESPONSE_BYTES) throw new KeymintError('INVALID_RESPONSE', 'the response is too large to be from Keymint');
      // A 5xx (often from a proxy or load balancer in front of Keymint) means
      // "not available now", whoever sent it: retry later, or answer offline.
      if (response.status >= 500) throw new KeymintNetworkError('SERVER_ERROR', `the license server answered ${response.status}`, { status: response.status });

      if (nonce) {
        const check = await verifyResponseSignature({
          header: response.headers.get(SIGNATURE_HEADER),
          method: 'POST',
          path,
          nonce,
          body: bytes,
          publicKeys: this.keys,
          now: Math.floor(this.clock()),
          lastServerTime: (await this.lastServerTime()) ?? undefined,
          tolerance: this.tolerance,
        });
        if (!check.valid) throw new KeymintSignatureError(check.reason, check.message);
        await this.sawServerTime(check.t);
      }

      const text = utf8Decode(bytes);
      const json = text === null ? null : parseJsonObject(text);
      if (!json) throw new KeymintError('INVALID_RESPONSE', `the license server answered ${response.status} with a body that is not a JSON object`);
      if (response.status >= 400) throw new KeymintApiError(response.status, (json.error as Record<string, unknown> | undefined) ?? {});
      return json as T;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Storage name of the file for a key (and fingerprint): a hash, so neither appears in file names. */
async function fileName(key: string, fingerprint: string | undefined): Promise<string> {
  const digest = await sha256(concatBytes(utf8(key.trim()), new Uint8Array([0]), utf8(fingerprint ?? '')));
  const id = Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
  return `license-file.${id}`;
}

/** A device-bound file first, then one for the whole license. */
function fingerprintsToTry(fingerprint: string | undefined): Array<string | undefined> {
  return fingerprint === undefined ? [undefined] : [fingerprint, undefined];
}

function compact(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined));
}

/**
 * The verdict the server would most likely give, from the snapshot in the
 * file and the trusted time. The file cannot know what changed since it was
 * issued — that is what its TTL bounds — so this follows API.md's precedence
 * for the checks a snapshot can answer: status, product, expiry and grace,
 * entitlements.
 */
function offlineVerdict(params: ValidateParams, check: Extract<LicenseFileVerification, { valid: true }>, now: number, cause: unknown): OfflineValidation {
  const { license, device } = check.payload;
  const verdict = (code: ValidationCode, message: string): OfflineValidation => ({
    object: 'license_validation',
    valid: code === 'VALID',
    code,
    message,
    license,
    device,
    ts: now,
    offline: true,
    file: { kid: check.kid, issued: check.payload.issued, expires: check.payload.expires, encrypted: check.encrypted },
    cause,
  });
  if (license.status === 'revoked') return verdict('REVOKED', 'the license was revoked');
  if (license.status === 'suspended') return verdict('SUSPENDED', 'the license is suspended');
  if (params.product !== undefined && params.product.includes('_') && params.product !== license.product) {
    return verdict('PRODUCT_MISMATCH', 'the license is for another product');
  }
  const ended = license.expires_at !== null && now >= license.expires_at && (license.grace_ends_at === null || now >= license.grace_ends_at);
  if (license.status === 'fallback') return verdict('FALLBACK', 'the license has expired; fallback access only');
  if (license.status === 'expired' || ended) return verdict('EXPIRED', 'the license has expired');
  const missing = (params.entitlements ?? []).filter((e) => !license.entitlements.includes(e));
  if (missing.length > 0) return verdict('ENTITLEMENTS_MISSING', `missing entitlements: ${missing.join(', ')}`);
  return verdict('VALID', 'valid (offline, from the stored license file)');
}
