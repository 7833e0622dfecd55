import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import { sha256Hex } from '../crypto/secret-box.js';
import type { Dialect } from '../db/database.js';
import {
  findApiKeyByHash,
  firstAccount,
  insertAccount,
  insertApiKey,
  lockAccountSetup,
} from '../db/repositories/accounts.js';
import type { Database, Env, Scope } from '../db/schema.js';
import { newId } from '../ids.js';
import type { SigningKeyService } from '../licensing/signing-keys.js';

export const ENVIRONMENTS: readonly Env[] = ['test', 'live'];

const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const API_KEY_RE = /^km_(test|live)_[A-Za-z0-9]{40}$/;

export interface CreatedApiKey {
  id: string;
  object: 'api_key';
  env: Env;
  name: string | null;
  /** The secret itself: shown once, stored only as a hash. */
  secret: string;
  created: number;
}

/**
 * Accounts, their two environments, and the secret API keys that select one.
 * A deployment starts with one account; nothing here assumes it is the only one.
 */
export class AccountService {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly dialect: Dialect,
    private readonly signingKeys: SigningKeyService,
    private readonly now: () => number,
  ) {}

  /** The deployment's first account, created with a signing key per environment on first use. */
  async ensureDefaultAccount(): Promise<string> {
    const existing = await firstAccount(this.db);
    if (existing) return existing.id;
    return this.db.transaction().execute(async (trx) => {
      await lockAccountSetup(trx, this.dialect);
      const raced = await firstAccount(trx);
      if (raced) return raced.id;
      const id = newId('account');
      await insertAccount(trx, { id, name: 'Default', created: this.now() });
      for (const env of ENVIRONMENTS) await this.signingKeys.create(trx, { accountId: id, env });
      return id;
    });
  }

  async createApiKey(accountId: string, env: Env, name: string | null): Promise<CreatedApiKey> {
    let random = '';
    for (let i = 0; i < 40; i++) random += KEY_ALPHABET[randomInt(KEY_ALPHABET.length)];
    const secret = `km_${env}_${random}`;
    const row = {
      id: newId('apiKey'),
      account_id: accountId,
      env,
      name,
      key_hash: sha256Hex(secret),
      key_hint: secret.slice(0, 12),
      created: this.now(),
      revoked_at: null,
    };
    await insertApiKey(this.db, row);
    return { id: row.id, object: 'api_key', env, name, secret, created: row.created };
  }

  /** The environment a secret key opens, or null for anything that is not a live key of ours. */
  async authenticate(secret: string): Promise<(Scope & { apiKeyId: string }) | null> {
    if (!API_KEY_RE.test(secret)) return null;
    const row = await findApiKeyByHash(this.db, sha256Hex(secret));
    if (!row) return null;
    return { accountId: row.account_id, env: row.env, apiKeyId: row.id };
  }
}
