/**
 * A failed check is a value (`{ valid: false, reason }`); these errors are for
 * what stops a check from happening at all — a network failure, a response
 * that cannot be trusted, a platform without Ed25519 — and for misuse.
 */
export class KeymintError extends Error {
  override readonly name: string = 'KeymintError';
  /** A machine code in SCREAMING_SNAKE (or the API's own error code for `KeymintApiError`). */
  readonly code: string;
  /** Whether trying again later can help. */
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** The server could not be reached or did not answer usefully: a timeout, a refused connection, a 5xx. */
export class KeymintNetworkError extends KeymintError {
  override readonly name = 'KeymintNetworkError';
  readonly status: number | null;

  constructor(code: 'TIMEOUT' | 'NETWORK_ERROR' | 'SERVER_ERROR', message: string, options: { status?: number; cause?: unknown } = {}) {
    super(code, message, { retryable: true, cause: options.cause });
    this.status = options.status ?? null;
  }
}

/**
 * A response whose `Keymint-Signature` does not check out: a spoofed server
 * (no signature, or one by a key not in `publicKeys`), a replayed response (a
 * nonce from another request, or an old timestamp), or a body edited in
 * transit. Never treated as "offline": the response is discarded and nothing
 * falls back silently.
 */
export class KeymintSignatureError extends KeymintError {
  override readonly name = 'KeymintSignatureError';
  readonly reason: ResponseRejection;

  constructor(reason: ResponseRejection, message: string) {
    super('RESPONSE_SIGNATURE_INVALID', message);
    this.reason = reason;
  }
}

/** The API's error shape (`{"error":{type,code,message,param,request_id}}`), from a signed 4xx response. */
export class KeymintApiError extends KeymintError {
  override readonly name = 'KeymintApiError';
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly requestId: string | null;

  constructor(status: number, error: { type?: unknown; code?: unknown; message?: unknown; param?: unknown; request_id?: unknown }) {
    super(typeof error.code === 'string' ? error.code : `http_${status}`, typeof error.message === 'string' ? error.message : `the server answered ${status}`, {
      retryable: status === 429,
    });
    this.status = status;
    this.type = typeof error.type === 'string' ? error.type : 'api_error';
    this.param = typeof error.param === 'string' ? error.param : null;
    this.requestId = typeof error.request_id === 'string' ? error.request_id : null;
  }
}

/**
 * `validate` could not reach the server and had no license file to answer
 * from: none stored, or the stored one failed verification (`fileReason`:
 * expired, tampered with, for another device, …). `cause` is the network error.
 */
export class KeymintOfflineError extends KeymintError {
  override readonly name = 'KeymintOfflineError';
  readonly fileReason: LicenseFileRejection | 'NO_LICENSE_FILE';

  constructor(fileReason: LicenseFileRejection | 'NO_LICENSE_FILE', message: string, cause: unknown) {
    super('OFFLINE_UNAVAILABLE', message, { retryable: true, cause });
    this.fileReason = fileReason;
  }
}

export type KeyRejection = 'MALFORMED' | 'UNKNOWN_KEY_ID' | 'BAD_SIGNATURE' | 'WRONG_ENVIRONMENT' | 'WRONG_PRODUCT';

export type LicenseFileRejection =
  | 'MALFORMED'
  | 'UNKNOWN_KEY_ID'
  | 'BAD_SIGNATURE'
  | 'WRONG_KEY'
  | 'WRONG_DEVICE'
  | 'NOT_YET_VALID'
  | 'EXPIRED';

export type ResponseRejection = 'MISSING_SIGNATURE' | 'MALFORMED' | 'NONCE_MISMATCH' | 'UNKNOWN_KEY_ID' | 'BAD_SIGNATURE' | 'STALE';
