import { LRUCache } from 'lru-cache';
import type { ChangeWatch } from '../db/change-watch.js';
import type { ValidationDevice, ValidationSubject } from './validation.js';
import type { DeviceView, PublicLicenseView } from './views.js';

/**
 * What validating one key (with one fingerprint, or none) found, in the form
 * the answer is made from. The verdict itself is not kept: it depends on the
 * request's `product` and `entitlements` too, and is computed per request
 * from `subject` (a pure function, far cheaper than the lookup).
 */
export interface ValidationInputs {
  licenseId: string;
  subject: ValidationSubject;
  device: ValidationDevice | null;
  license: PublicLicenseView;
  deviceView: DeviceView | null;
  /** The clock reading these were computed at. */
  computedAt: number;
  /**
   * The first clock reading at which a part derived from the clock may
   * differ: the license's status, its grace period, a floating lease and its
   * seat count. Before it, only a write can change the answer.
   */
  freshUntil: number;
}

/**
 * An upper bound on how long inputs are reused even when nothing says they
 * changed: a safety net, not part of correctness (the change watch is).
 */
const MAX_AGE_SECONDS = 300;

/**
 * Validation answers' inputs kept in memory, so a key validated again (every
 * installed copy of an app does, at every start or every few minutes) costs
 * no database read. A bounded LRU, keyed by license key and fingerprint.
 *
 * Correct because every write that could change an answer empties the
 * entries of its license before anyone can read them again: the database's
 * change watch (src/db/change-watch.ts) reports each one synchronously, from
 * inside the statement, and reports other processes' writes as "anything
 * changed". Answers derived from the clock are bounded by `freshUntil`.
 * A lookup that finds nothing and a key that does not exist are not kept
 * (so unknown keys cannot fill the cache).
 *
 * A database read and the change that invalidates it can interleave (the
 * read resolves after a write already reported itself): `generation()`
 * taken before the read, and checked by `set()`, refuses what was read
 * before any change reported since.
 */
export class ValidationCache {
  private readonly entries: LRUCache<string, ValidationInputs>;
  /** Cache keys per license, to forget all of a license's entries (one per fingerprint) at once. */
  private readonly byLicense = new Map<string, Set<string>>();
  private changes = 0;

  constructor(
    private readonly watch: ChangeWatch,
    maxEntries: number,
  ) {
    this.entries = new LRUCache<string, ValidationInputs>({
      max: maxEntries,
      dispose: (inputs, cacheKey) => this.unindex(inputs.licenseId, cacheKey),
    });
    watch.subscribe((licenseId) => (licenseId === null ? this.clear() : this.forget(licenseId)));
  }

  /**
   * The inputs for this license key (as presented) and fingerprint, if they
   * are known and still fresh at `now`. Keyed by the key itself, not its
   * hash: a hit costs neither the shape check nor SHA-256, since only keys
   * that passed both and were found are ever kept.
   */
  get(key: string, fingerprint: string | null, now: number): ValidationInputs | undefined {
    if (!this.watch.sync()) return undefined;
    const cacheKey = keyOf(key, fingerprint);
    const inputs = this.entries.get(cacheKey);
    if (inputs === undefined) return undefined;
    // Also when the clock went back (tests move it): computed "in the future", they may not hold now.
    if (now < inputs.computedAt || now >= inputs.freshUntil || now >= inputs.computedAt + MAX_AGE_SECONDS) {
      this.entries.delete(cacheKey);
      return undefined;
    }
    return inputs;
  }

  /** Taken before reading the database; `set()` keeps what was read only if no change was reported since. */
  generation(): number {
    return this.changes;
  }

  set(key: string, fingerprint: string | null, inputs: ValidationInputs, generation: number): void {
    // sync() first: a write by another process since the read counts as a change.
    if (!this.watch.sync() || generation !== this.changes) return;
    const cacheKey = keyOf(key, fingerprint);
    this.entries.set(cacheKey, inputs);
    let keys = this.byLicense.get(inputs.licenseId);
    if (keys === undefined) this.byLicense.set(inputs.licenseId, (keys = new Set()));
    keys.add(cacheKey);
  }

  get size(): number {
    return this.entries.size;
  }

  private forget(licenseId: string): void {
    this.changes++;
    const keys = this.byLicense.get(licenseId);
    if (keys === undefined) return;
    for (const cacheKey of [...keys]) this.entries.delete(cacheKey);
  }

  private clear(): void {
    this.changes++;
    this.entries.clear();
  }

  private unindex(licenseId: string, cacheKey: string): void {
    const keys = this.byLicense.get(licenseId);
    if (keys === undefined) return;
    keys.delete(cacheKey);
    if (keys.size === 0) this.byLicense.delete(licenseId);
  }
}

/**
 * One string per (key, fingerprint), unambiguous whatever the strings hold
 * (a lookup can carry any text): the two forms start differently, and the
 * key's length says where the fingerprint starts.
 */
const keyOf = (key: string, fingerprint: string | null) => (fingerprint === null ? `k${key}` : `f${key.length}:${key}${fingerprint}`);
