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

/** What is remembered for one license key: the answer without a fingerprint, and those for its activated devices. */
interface KeyEntry {
  licenseId: string;
  plain: ValidationInputs | undefined;
  devices: Map<string, ValidationInputs> | undefined;
}

/**
 * Devices remembered per key. Only activated devices are kept at all (an
 * unknown fingerprint is answered from the database), so this only keeps
 * one license with a very large device limit from taking the whole cache.
 */
const MAX_DEVICES_PER_KEY = 100;

/**
 * Validation answers' inputs kept in memory, so a key validated again (every
 * installed copy of an app does, at every start or every few minutes) costs
 * no database read. An LRU of license keys; under each, the answer without
 * a fingerprint and one per activated device; bounded by the number of
 * answers.
 *
 * Keyed by the license key as presented, not its hash: a hit costs neither
 * the shape check nor SHA-256 nor building a compound key (only keys that
 * passed both and were found are ever kept).
 *
 * Correct because every write that could change an answer empties its
 * license's entry before anyone can read it again: the database's change
 * watch (src/db/change-watch.ts) reports each one synchronously, from inside
 * the statement, and reports other processes' writes as "anything changed".
 * Answers derived from the clock are bounded by `freshUntil`. Unknown keys
 * and unknown fingerprints are never kept, so they cannot fill the cache.
 *
 * A database read and the change that invalidates it can interleave (the
 * read resolves after a write already reported itself): `generation()`
 * taken before the read, and checked by `set()`, refuses what was read
 * before any change reported since.
 */
export class ValidationCache {
  private readonly entries: LRUCache<string, KeyEntry>;
  /** The key of each remembered license, to forget it when the license changes. */
  private readonly keyOfLicense = new Map<string, string>();
  private changes = 0;

  /** `maxAnswers`: how many answers are kept, counting a key's answer without a fingerprint and each of its devices'. */
  constructor(
    private readonly watch: ChangeWatch,
    maxAnswers: number,
  ) {
    this.entries = new LRUCache<string, KeyEntry>({
      maxSize: maxAnswers,
      sizeCalculation: (entry) => Math.max(1, (entry.plain === undefined ? 0 : 1) + (entry.devices?.size ?? 0)),
      // set() stores a key's entry again after adding an answer to it, to have its size counted anew.
      noDisposeOnSet: true,
      dispose: (entry) => this.keyOfLicense.delete(entry.licenseId),
    });
    watch.subscribe((licenseId) => (licenseId === null ? this.clear() : this.forget(licenseId)));
  }

  /** The inputs for this license key (as presented) and fingerprint, if they are known and still fresh at `now`. */
  get(key: string, fingerprint: string | null, now: number): ValidationInputs | undefined {
    if (!this.watch.sync()) return undefined;
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    const inputs = fingerprint === null ? entry.plain : entry.devices?.get(fingerprint);
    if (inputs === undefined) return undefined;
    // Also when the clock went back (tests move it): computed "in the future", they may not hold now.
    if (now < inputs.computedAt || now >= inputs.freshUntil || now >= inputs.computedAt + MAX_AGE_SECONDS) {
      if (fingerprint === null) entry.plain = undefined;
      else entry.devices?.delete(fingerprint);
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
    if (fingerprint !== null && inputs.deviceView === null) return;
    const entry = this.entries.get(key) ?? { licenseId: inputs.licenseId, plain: undefined, devices: undefined };
    if (fingerprint === null) {
      entry.plain = inputs;
    } else {
      entry.devices ??= new Map();
      if (entry.devices.size >= MAX_DEVICES_PER_KEY) entry.devices.clear();
      entry.devices.set(fingerprint, inputs);
    }
    this.entries.set(key, entry);
    // Not kept when one key's answers alone exceed the bound (a tiny bound).
    if (this.entries.has(key)) this.keyOfLicense.set(inputs.licenseId, key);
  }

  /** How many answers are remembered. */
  get size(): number {
    return this.entries.calculatedSize;
  }

  private forget(licenseId: string): void {
    this.changes++;
    const key = this.keyOfLicense.get(licenseId);
    if (key !== undefined) this.entries.delete(key);
  }

  private clear(): void {
    this.changes++;
    this.entries.clear();
  }
}
