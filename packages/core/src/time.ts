/**
 * Timestamps at the edges of the system: strict RFC3339 parsing for operator input (CLI flags,
 * query strings) and RFC3339 rendering of the unix-millisecond integers the store keeps. A lax
 * parser (Date.parse) accepts "2026-05-01" or "May 1"; an operator's typo must fail instead, with
 * `invalid_timestamp`. Depends on the error catalogue.
 */
import { PortunusError } from './errors.js';

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Parses an RFC3339 timestamp into unix milliseconds, or throws `invalid_timestamp`. */
export function parseRfc3339(text: string, field = 'timestamp'): number {
  const match = RFC3339.exec(text);
  if (!match) throw invalidTimestamp(text, field);
  const [, y, mo, d, h, mi, s, frac, , sign, oh, om] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const offsetMinutes = sign ? (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)) : 0;
  const inRange =
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysInMonth(year, month) &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 60 &&
    Number(oh ?? 0) <= 23 &&
    Number(om ?? 0) <= 59;
  if (!inRange) throw invalidTimestamp(text, field);
  const millis = frac ? Math.floor(Number(`0${frac}`) * 1000) : 0;
  const utc = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), millis);
  return utc - offsetMinutes * 60_000;
}

/** Renders unix milliseconds as RFC3339 UTC with millisecond precision. */
export function formatRfc3339(unixMillis: number): string {
  return new Date(unixMillis).toISOString();
}

/** `20260508T120000Z`: sortable, filename-safe. */
export function compactUtcStamp(unixMillis: number): string {
  return new Date(unixMillis)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function invalidTimestamp(text: string, field: string): PortunusError {
  return new PortunusError(
    'invalid_timestamp',
    `${field} ${JSON.stringify(text)} is not an RFC3339 timestamp (example: 2026-05-01T00:00:00Z)`,
    { field },
  );
}
