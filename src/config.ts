import path from 'node:path';

/**
 * Everything Keymint reads from its environment, read once, validated and
 * frozen. Nothing else in the code base reads `process.env`.
 */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** `postgres://…` to use PostgreSQL; null for the embedded SQLite file. */
  readonly databaseUrl: string | null;
  readonly publicUrl: string;
  /** Master key material; null means "generate one into the data dir". */
  readonly secret: string | null;
  readonly smtpUrl: string | null;
  /** The From header of every email, `Name <address>` or a bare address. */
  readonly mailFrom: string;
  readonly stripeApiUrl: string;
  /** Requests per minute per license key and per client IP on the public license API; 0 = off. */
  readonly rateLimit: number;
  /** Days events (and webhook delivery logs) are kept; 0 keeps them forever. */
  readonly eventRetentionDays: number;
  /** Per webhook delivery attempt; 10 s unless set (tests shorten it). */
  readonly webhookTimeoutMs: number;
  readonly logLevel: string;
  /** Trust `X-Forwarded-For` from a reverse proxy when deriving the client IP. */
  readonly trustProxy: boolean;
  /** Validation answers kept in memory (SQLite only); 0 = every validation reads the database. */
  readonly validationCacheSize: number;
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}`);
  return value;
}

function url(env: Env, name: string, protocols: string[]): string | null {
  const raw = env[name]?.trim();
  if (!raw) return null;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}`);
  }
  return raw;
}

function bool(env: Env, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return false;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false`);
}

/** `Name <local@domain>` or `local@domain`, on one line (it becomes a header). */
function mailbox(env: Env, name: string, fallback: string): string {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^(?:[^<>\r\n]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/.test(raw)) {
    throw new ConfigError(`${name} must be an address like \`Keymint <no-reply@example.com>\` or \`no-reply@example.com\``);
  }
  return raw;
}

export function loadConfig(env: Env = process.env, overrides: Partial<Config> = {}): Config {
  const port = integer(env, 'PORT', 4000, 0, 65535);
  const publicUrl = (url(env, 'KEYMINT_PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(/\/+$/, '');
  const secret = env.KEYMINT_SECRET?.trim() || null;
  if (secret !== null && secret.length < 32) {
    throw new ConfigError('KEYMINT_SECRET must be at least 32 characters (e.g. `openssl rand -base64 32`)');
  }
  const config: Config = {
    port,
    host: env.HOST?.trim() || '0.0.0.0',
    dataDir: path.resolve(env.KEYMINT_DATA_DIR?.trim() || './keymint-data'),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    publicUrl,
    secret,
    smtpUrl: url(env, 'KEYMINT_SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom: mailbox(env, 'KEYMINT_MAIL_FROM', 'Keymint <no-reply@localhost>'),
    stripeApiUrl: (url(env, 'KEYMINT_STRIPE_API_URL', ['http:', 'https:']) ?? 'https://api.stripe.com').replace(/\/+$/, ''),
    rateLimit: integer(env, 'KEYMINT_RATE_LIMIT', 300, 0, 1_000_000),
    eventRetentionDays: integer(env, 'KEYMINT_EVENT_RETENTION_DAYS', 90, 0, 36_500),
    webhookTimeoutMs: integer(env, 'KEYMINT_WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
    logLevel: env.KEYMINT_LOG_LEVEL?.trim() || 'info',
    trustProxy: bool(env, 'KEYMINT_TRUST_PROXY'),
    validationCacheSize: integer(env, 'KEYMINT_VALIDATION_CACHE', 100_000, 0, 1_000_000),
    ...overrides,
  };
  return Object.freeze(config);
}
