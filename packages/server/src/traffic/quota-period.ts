/**
 * Quota period arithmetic (reference §5.10): period n of a monthly quota starts at the billing
 * anchor plus n calendar months, in UTC, at the anchor's time of day, on the anchor's day clamped
 * to the month's end — but always recomputed from the anchor, so a Jan 31 anchor gives Feb 28 (29
 * in leap years) and then Mar 31 again, and a Feb 29 anchor renews on Feb 29 in leap years only.
 * `reset_day` (1..28, DESIGN.md §8.9) is another way to write an anchor: midnight UTC of that
 * day. A period of kind `never` has no end. Pure functions of their arguments; no clock, no store.
 */

export const MAX_RESET_DAY = 28;

interface Civil {
  year: number;
  month: number;
  day: number;
  /** Milliseconds since the day's midnight UTC. */
  timeOfDay: number;
}

function civil(ms: number): Civil {
  const date = new Date(ms);
  const year = date.getUTCFullYear();
  const month = date.getUTCMonth();
  const day = date.getUTCDate();
  return { year, month, day, timeOfDay: ms - Date.UTC(year, month, day) };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** The start (unix ms) of period `index` (0 = the one the anchor opens). */
export function periodStart(anchorMs: number, index: number): number {
  const anchor = civil(anchorMs);
  const months = anchor.month + index;
  const year = anchor.year + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const day = Math.min(anchor.day, daysInMonth(year, month));
  return Date.UTC(year, month, day) + anchor.timeOfDay;
}

/** The period `atMs` lies in: the largest index whose start is not after it (0 before the anchor). */
export function periodIndexAt(anchorMs: number, atMs: number): number {
  if (atMs <= anchorMs) return 0;
  const anchor = civil(anchorMs);
  const at = civil(atMs);
  let index = (at.year - anchor.year) * 12 + (at.month - anchor.month);
  while (index > 0 && periodStart(anchorMs, index) > atMs) index -= 1;
  while (periodStart(anchorMs, index + 1) <= atMs) index += 1;
  return index;
}

/** Start and end (exclusive) of the monthly period holding `atMs`. */
export function monthlyPeriodAt(anchorMs: number, atMs: number): { start: number; end: number } {
  const index = periodIndexAt(anchorMs, atMs);
  return { start: periodStart(anchorMs, index), end: periodStart(anchorMs, index + 1) };
}

/**
 * The anchor a `reset_day` stands for at `nowMs`: the latest midnight UTC on that day of a month
 * that is not after now (this month's, or last month's when the day has not come yet).
 */
export function anchorForResetDay(resetDay: number, nowMs: number): number {
  const now = civil(nowMs);
  const thisMonth = Date.UTC(now.year, now.month, resetDay);
  return thisMonth <= nowMs ? thisMonth : Date.UTC(now.year, now.month - 1, resetDay);
}

export interface PeriodPolicy {
  period: 'monthly' | 'never';
  billingAnchor: number;
  currentPeriodStartedAt: number;
}

/** When the stored current period ends; null for a `never` allowance. */
export function periodEnd(quota: PeriodPolicy): number | null {
  if (quota.period === 'never') return null;
  return monthlyPeriodAt(quota.billingAnchor, quota.currentPeriodStartedAt).end;
}

/**
 * The start of the period a due quota rolls into at `nowMs`, or undefined when it is not due. A
 * clock that jumped ahead several months lands in the current period in one step (usage is reset
 * once); a clock that went back never rolls a period back.
 */
export function rolloverTo(quota: PeriodPolicy, nowMs: number): number | undefined {
  const end = periodEnd(quota);
  if (end === null || nowMs < end) return undefined;
  return monthlyPeriodAt(quota.billingAnchor, nowMs).start;
}
