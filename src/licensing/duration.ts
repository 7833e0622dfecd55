/**
 * Durations as vendors write them: `N` followed by d (days), w (weeks),
 * m (calendar months) or y (calendar years), e.g. `30d`, `1y`. Months and years
 * follow the calendar in UTC, as Stripe's billing periods do (Jan 31 + 1m =
 * Feb 28/29), so a yearly license ends on the same date next year.
 */
export const DURATION_PATTERN = '^[1-9][0-9]{0,3}[dwmy]$';
const DURATION_RE = new RegExp(DURATION_PATTERN);

export function isDuration(value: string): boolean {
  return DURATION_RE.test(value);
}

export function addDuration(fromUnix: number, duration: string): number {
  if (!isDuration(duration)) throw new Error(`not a duration: ${duration}`);
  const n = Number(duration.slice(0, -1));
  const unit = duration.slice(-1);
  if (unit === 'd') return fromUnix + n * 86_400;
  if (unit === 'w') return fromUnix + n * 7 * 86_400;
  const date = new Date(fromUnix * 1000);
  const day = date.getUTCDate();
  const months = unit === 'm' ? n : n * 12;
  date.setUTCDate(1);
  date.setUTCMonth(date.getUTCMonth() + months);
  // Clamp to the last day of the target month rather than rolling over.
  const lastDay = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
  date.setUTCDate(Math.min(day, lastDay));
  return Math.floor(date.getTime() / 1000);
}
