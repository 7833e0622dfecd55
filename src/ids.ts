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
  stripeConnection: 'sconn',
  priceMapping: 'pmap',
  stripeEvent: 'sev',
  request: 'req',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

const ulid = monotonicFactory();

export function newId(kind: IdKind): string {
  return `${ID_PREFIXES[kind]}_${ulid().toLowerCase()}`;
}

/** Shape check only: the prefix and 26 base32 characters. */
export function looksLikeId(kind: IdKind, value: string): boolean {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-hjkmnp-tv-z]{26}$`).test(value);
}
