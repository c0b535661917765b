/**
 * Field rules the operator API and the CLI share (reference §6.1): user id grammar, display
 * names, reserved ids and port ranges. Each failure is its catalogued code, so the HTTP answer
 * and the CLI exit agree.
 */
import { PortunusError, assertPrintableText } from '@portunus/core';
import type { Protocol } from '@portunus/store';

const USER_ID = /^[a-z][a-z0-9_-]{0,31}$/;

/** A user id an operator may create: the grammar, and not reserved. */
export function checkNewUserId(userId: string): string {
  if (userId.startsWith('_')) {
    throw new PortunusError('reserved_user_id', `${userId}: ids starting with _ are reserved`);
  }
  if (!USER_ID.test(userId)) {
    throw new PortunusError(
      'invalid_user_id',
      `${JSON.stringify(userId)}: user ids are a lowercase letter followed by up to 31 lowercase letters, digits, _ or -`,
    );
  }
  return userId;
}

export function checkDisplayName(displayName: string): string {
  assertPrintableText(displayName, 'display_name');
  const trimmed = displayName.trim();
  if (trimmed.length < 1 || Array.from(trimmed).length > 64) {
    throw new PortunusError('invalid_display_name');
  }
  return trimmed;
}

export function checkPortRange(start: number, end: number): void {
  const valid = (port: number): boolean => Number.isInteger(port) && port >= 1 && port <= 65535;
  if (!valid(start) || !valid(end) || start > end) {
    throw new PortunusError(
      'invalid_port_range',
      `listen ports ${start}..${end}: ports are 1..65535 and the start may not exceed the end`,
    );
  }
}

export function checkProtocols(protocols: readonly string[]): Protocol[] {
  if (protocols.length === 0) throw new PortunusError('empty_protocol_set');
  const unique = [...new Set(protocols)];
  for (const protocol of unique) {
    if (protocol !== 'tcp' && protocol !== 'udp') {
      throw new PortunusError('invalid_protocol', `${JSON.stringify(protocol)} is not tcp or udp`);
    }
  }
  return unique as Protocol[];
}
