import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { SecretBox } from '../crypto/secret-box.js';
import { conflict, notFound } from '../errors.js';
import {
  countLicensesSignedBy,
  deleteSigningKey,
  retireSigningKeys,
  findActiveSigningKey,
  findSigningKey,
  insertSigningKey,
  listSigningKeys,
  type SigningKeyRow,
} from '../db/repositories/signing-keys.js';
import type { Database, Scope } from '../db/schema.js';
import { newId } from '../ids.js';

export interface SigningKey {
  id: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export interface SigningKeyView {
  id: string;
  object: 'signing_key';
  algorithm: 'ed25519';
  public_key: string;
  public_key_pem: string;
  status: 'active' | 'retired';
  created: number;
}

const sealContext = (kid: string) => `signing_key:${kid}`;

/**
 * One Ed25519 key pair per environment. The private half is sealed under the
 * master key; decrypted keys are cached by id, which is safe because a key
 * pair never changes once created (rotation adds a new id).
 */
export class SigningKeyService {
  private readonly cache = new Map<string, SigningKey>();

  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
    private readonly now: () => number,
  ) {}

  /** Creates the environment's first key pair; called when an account is set up. */
  async create(db: Kysely<Database>, scope: Scope): Promise<SigningKeyRow> {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const id = newId('signingKey');
    const row: SigningKeyRow = {
      id,
      account_id: scope.accountId,
      env: scope.env,
      algorithm: 'ed25519',
      public_key: rawPublicKey(publicKey),
      private_key_sealed: this.box.seal(privateKey.export({ format: 'der', type: 'pkcs8' }), sealContext(id)),
      status: 'active',
      created: this.now(),
    };
    await insertSigningKey(db, row);
    return row;
  }

  /**
   * `db` must be the caller's transaction when there is one: on SQLite the
   * single connection is held by the transaction, and a query through
   * another handle would wait for it forever.
   */
  async active(scope: Scope, db: Kysely<Database> = this.db): Promise<SigningKey> {
    // Not cached: after a rotation on any replica, every replica signs new keys with the new key.
    const row = await findActiveSigningKey(db, scope);
    if (!row) throw new Error(`environment ${scope.env} of ${scope.accountId} has no active signing key`);
    return this.cache.get(row.id) ?? this.fromRow(row);
  }

  async byId(id: string, db: Kysely<Database> = this.db): Promise<SigningKey> {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const row = await findSigningKey(db, id);
    if (!row) throw new Error(`signing key ${id} is missing`);
    return this.fromRow(row);
  }

  /**
   * Rotation: a new key becomes active and signs new license keys; the
   * previous one is retired — it signs nothing new, but what it signed keeps
   * verifying, and answers about its licenses are still signed with it.
   */
  async rotate(scope: Scope): Promise<SigningKeyView> {
    return this.db.transaction().execute(async (trx) => {
      await retireSigningKeys(trx, scope);
      return toView(await this.create(trx, scope));
    });
  }

  /** Removes a retired key no license still needs (its keys could no longer be shown, re-sent or answered for). */
  async remove(scope: Scope, id: string): Promise<{ id: string; object: 'signing_key'; deleted: true }> {
    return this.db.transaction().execute(async (trx) => {
      const row = (await listSigningKeys(trx, scope)).find((k) => k.id === id);
      if (!row) throw notFound('signing key', id, 'id');
      if (row.status === 'active') throw conflict('signing_key_active', 'the active signing key cannot be removed; rotate first');
      const users = await countLicensesSignedBy(trx, id);
      if (users > 0) throw conflict('signing_key_in_use', `${users} license${users === 1 ? '' : 's'} not revoked still use this key; it is needed to show, re-send and answer for their keys`);
      await deleteSigningKey(trx, id);
      this.cache.delete(id);
      return { id, object: 'signing_key' as const, deleted: true as const };
    });
  }

  async list(scope: Scope): Promise<SigningKeyView[]> {
    const rows = await listSigningKeys(this.db, scope);
    return rows.map(toView);
  }

  private fromRow(row: SigningKeyRow): SigningKey {
    const privateKey = createPrivateKey({
      key: this.box.open(row.private_key_sealed, sealContext(row.id)),
      format: 'der',
      type: 'pkcs8',
    });
    const key = { id: row.id, privateKey, publicKey: createPublicKey(privateKey) };
    this.cache.set(row.id, key);
    return key;
  }
}

function rawPublicKey(publicKey: KeyObject): string {
  // The JWK `x` member of an Ed25519 key is exactly the raw 32 bytes, base64url.
  const jwk = publicKey.export({ format: 'jwk' });
  if (!jwk.x) throw new Error('not an Ed25519 public key');
  return jwk.x;
}

function toView(row: SigningKeyRow): SigningKeyView {
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: row.public_key }, format: 'jwk' });
  return {
    id: row.id,
    object: 'signing_key',
    algorithm: row.algorithm,
    public_key: row.public_key,
    public_key_pem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    status: row.status,
    created: row.created,
  };
}
