import { randomFillSync } from 'node:crypto';
import { monotonicFactory } from 'ulid';

/**
 * Every id Keymint hands out: a prefix naming the object, then a ULID
 * (48-bit millisecond time + 80 random bits, Crockford base32), so ids sort by
 * creation time — cursor pagination relies on that. No prefix collides with
 * Stripe's (`cus_`, `prod_`, `price_`, `sub_`, `in_`, `ch_`, `pi_`, `cs_`,
 * `evt_`, `we_`), so a Keymint id can never be mistaken for a Stripe one.
 */
export const ID_PREFIXES = {
  account: 'acct',
  apiKey: 'ak',
  signingKey: 'kid',
  product: 'pdt',
  policy: 'pol',
  customer: 'ctm',
  license: 'lic',
  device: 'dev',
  event: 'kev',
  job: 'job',
  webhookEndpoint: 'whe',
  webhookDelivery: 'whd',
  email: 'eml',
  stripeConnection: 'sconn',
  priceMapping: 'pmap',
  stripeEvent: 'sev',
  request: 'req',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/**
 * ulid's default generator calls `crypto.randomBytes(1)` for each of the 16
 * random characters of an id. This one hands out bytes from a buffer refilled
 * by the same CSPRNG 4 KiB at a time. A byte / 256 is a float in [0, 1) that
 * ulid scales to one of 32 characters, i.e. its top 5 bits: uniform.
 */
const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let poolOffset = POOL_SIZE;
function bufferedCryptoPrng(): number {
  if (poolOffset === POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  return (pool[poolOffset++] as number) / 256;
}

const ulid = monotonicFactory(bufferedCryptoPrng);

export function newId(kind: IdKind): string {
  return `${ID_PREFIXES[kind]}_${ulid().toLowerCase()}`;
}

/** Shape check only: the prefix and 26 base32 characters. */
export function looksLikeId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-hjkmnp-tv-z]{26}$`).test(value);
}
