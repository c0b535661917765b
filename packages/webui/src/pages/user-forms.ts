/**
 * The state, checks and request bodies of the user page's forms: a grant (add or edit), a quota
 * (set or edit) and a password reset. The checks mirror the server's with the limits
 * @portunus/api exports (isPort, MIN_PASSWORD_CHARS); what it does not export yet
 * (the grant note length, the reset-day range) is left to the server, whose message the form
 * shows. Pure functions: no React, no fetching; each returns field → message key.
 */
import {
  MIN_PASSWORD_CHARS,
  isPort,
  type GrantView,
  type Protocol,
  type QuotaEnforcement,
  type QuotaPeriod,
  type QuotaPutRequest,
  type QuotaView,
} from '@portunus/api';

/** A field's problem: an i18n key and its values. */
export interface Problem {
  key: string;
  values?: Record<string, unknown>;
}
export type Problems<F extends string> = Partial<Record<F, Problem>>;

/** The `client` value of a grant on every client (reference §6.2). */
export const EVERY_CLIENT = '*';

export interface GrantForm {
  client: string;
  start: string;
  end: string;
  tcp: boolean;
  udp: boolean;
  note: string;
}

export interface GrantRequest {
  user_id: string;
  client: string;
  listen_port_start: number;
  listen_port_end: number;
  protocols: Protocol[];
  note?: string;
}

export function grantFormOf(grant?: GrantView): GrantForm {
  if (!grant) return { client: '', start: '', end: '', tcp: true, udp: true, note: '' };
  return {
    client: grant.client_id ?? EVERY_CLIENT,
    start: String(grant.listen_port_start),
    end: String(grant.listen_port_end),
    tcp: grant.protocols.includes('tcp'),
    udp: grant.protocols.includes('udp'),
    note: grant.note,
  };
}

const numberOf = (text: string) => (text.trim() === '' ? NaN : Number(text));

export function checkGrant(form: GrantForm): Problems<'client' | 'start' | 'end' | 'protocols'> {
  const found: Problems<'client' | 'start' | 'end' | 'protocols'> = {};
  const start = numberOf(form.start);
  const end = numberOf(form.end);
  if (!form.client) found.client = { key: 'screens.clientRequired' };
  if (!isPort(start)) found.start = { key: 'screens.portInvalid' };
  if (!isPort(end)) found.end = { key: 'screens.portInvalid' };
  else if (isPort(start) && start > end) found.end = { key: 'screens.endBeforeStart' };
  if (!form.tcp && !form.udp) found.protocols = { key: 'screens.protocolsRequired' };
  return found;
}

export function grantRequest(userId: string, form: GrantForm): GrantRequest {
  const protocols: Protocol[] = [];
  if (form.tcp) protocols.push('tcp');
  if (form.udp) protocols.push('udp');
  return {
    user_id: userId,
    client: form.client,
    listen_port_start: Number(form.start),
    listen_port_end: Number(form.end),
    protocols,
    ...(form.note.trim() ? { note: form.note.trim() } : {}),
  };
}

/** Binary units, as formatBytes prints them. */
export const BYTE_UNITS = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3, TiB: 1024 ** 4 };
export type ByteUnit = keyof typeof BYTE_UNITS;

export interface QuotaForm {
  clientId: string;
  amount: string;
  unit: ByteUnit;
  period: QuotaPeriod;
  enforcement: QuotaEnforcement;
  /** '' keeps the current billing anchor (or starts the period now). */
  resetDay: string;
  clearUsage: boolean;
}

/** The largest unit that divides the limit exactly, so editing a quota never rounds its limit. */
function splitBytes(bytes: number): { amount: string; unit: ByteUnit } {
  const units = Object.entries(BYTE_UNITS).reverse() as [ByteUnit, number][];
  const [unit, size] = units.find(([, size]) => bytes > 0 && bytes % size === 0) ?? ['B', 1];
  return { amount: String(bytes / size), unit };
}

export function quotaFormOf(quota?: QuotaView, clientId = ''): QuotaForm {
  if (!quota)
    return {
      clientId,
      amount: '',
      unit: 'GiB',
      period: 'monthly',
      enforcement: 'hard',
      resetDay: '',
      clearUsage: false,
    };
  return {
    clientId: quota.client_id,
    ...splitBytes(quota.monthly_bytes),
    period: quota.period,
    enforcement: quota.enforcement,
    resetDay: quota.reset_day === null ? '' : String(quota.reset_day),
    clearUsage: false,
  };
}

export function quotaBytes(form: QuotaForm): number {
  return Math.round(numberOf(form.amount) * BYTE_UNITS[form.unit]);
}

export function checkQuota(form: QuotaForm): Problems<'clientId' | 'amount' | 'resetDay'> {
  const found: Problems<'clientId' | 'amount' | 'resetDay'> = {};
  if (!form.clientId) found.clientId = { key: 'screens.clientRequired' };
  const amount = numberOf(form.amount);
  const bytes = quotaBytes(form);
  // The server takes a safe integer ≥ 0 (invalid_quota_size).
  if (!Number.isFinite(amount) || amount < 0 || !Number.isSafeInteger(bytes))
    found.amount = { key: 'screens.bytesInvalid' };
  if (form.period === 'monthly' && form.resetDay.trim() !== '') {
    if (!Number.isInteger(numberOf(form.resetDay)) || numberOf(form.resetDay) < 1)
      found.resetDay = { key: 'screens.resetDayInvalid' };
  }
  return found;
}

export function quotaRequest(form: QuotaForm): QuotaPutRequest {
  const body: QuotaPutRequest = {
    monthly_bytes: quotaBytes(form),
    period: form.period,
    enforcement: form.enforcement,
  };
  // A reset day only means something for a monthly period (server: invalid_quota_policy).
  if (form.period === 'monthly' && form.resetDay.trim() !== '')
    body.reset_day = Number(form.resetDay);
  if (form.clearUsage) body.clear_period_usage = true;
  return body;
}

export interface ResetForm {
  password: string;
  temporary: boolean;
}

/** Blank asks the server to generate one; otherwise its length policy applies. */
export function checkReset(form: ResetForm): Problems<'password'> {
  if (form.password !== '' && Array.from(form.password).length < MIN_PASSWORD_CHARS)
    return { password: { key: 'onboarding.tooShort', values: { count: MIN_PASSWORD_CHARS } } };
  return {};
}

export function resetRequest(form: ResetForm): {
  new_password?: string;
  temporary_password?: boolean;
} {
  if (form.password === '') return {};
  return { new_password: form.password, temporary_password: form.temporary };
}
