/**
 * The pure rule checks shared by every producer of a RuleSpec: the server's `POST /v1/rules`
 * validation and the standalone's TOML config both call these, so a target host, a port or a
 * PROXY version is judged by one piece of code (reference §2.4, §5.4). They live here because
 * the forwarder is the one package both may import (scripts/check-boundaries.mjs). Pure: no
 * sockets, no clock, no logger; the only dependency is `node:net`'s IP literal test and the
 * core error catalogue for the codes.
 */
import net from 'node:net';

import type { ErrorCode } from '@portunus/core';

import type { ProxyProtocolVersion } from './rule-spec.js';

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

/** A port a rule may listen on or dial: an integer in 1..65535. */
export function isValidPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

export interface HostProblem {
  code: ErrorCode;
  message: string;
}

/**
 * Why `host` is not a valid target (reference §5.4), or undefined: an IPv4/IPv6 literal passes; a
 * name needs ≤253 characters, labels of 1..63 letters, digits or hyphens with no hyphen at either
 * end, and must not be all digits and dots (a mistyped IPv4 address). One trailing dot is allowed.
 */
export function targetHostProblem(host: string): HostProblem | undefined {
  if (net.isIP(host) !== 0) return undefined;
  const quoted = JSON.stringify(host);
  const name = host.endsWith('.') ? host.slice(0, -1) : host;
  if (name.length > MAX_NAME_LENGTH) {
    return {
      code: 'invalid_target_host_too_long',
      message: `${quoted} is longer than ${MAX_NAME_LENGTH} characters`,
    };
  }
  if (/^[\d.]*$/.test(name)) {
    return {
      code: 'invalid_target_host',
      message: `${quoted} is neither an IP address nor a DNS name`,
    };
  }
  for (const label of name.split('.')) {
    if (label === '' || !/^[A-Za-z0-9-]+$/.test(label)) {
      return {
        code: 'invalid_target_host',
        message: `${quoted} is neither an IP address nor a DNS name`,
      };
    }
    if (label.length > MAX_LABEL_LENGTH) {
      return {
        code: 'invalid_target_host_label_too_long',
        message: `${quoted}: label ${label.slice(0, 16)}… exceeds ${MAX_LABEL_LENGTH} characters`,
      };
    }
    if (label.startsWith('-') || label.endsWith('-')) {
      return {
        code: 'invalid_target_host_label_hyphen',
        message: `${quoted}: label ${label} starts or ends with a hyphen`,
      };
    }
  }
  return undefined;
}

/**
 * A PROXY protocol setting: `v1`/`v2` case-insensitively, blank or absent for none. Returns
 * `invalid` rather than throwing so each caller reports it with its own key path.
 */
export function parseProxyProtocol(
  raw: string | null | undefined,
): ProxyProtocolVersion | null | 'invalid' {
  const value = (raw ?? '').trim().toLowerCase();
  if (value === '') return null;
  if (value === 'v1' || value === 'v2') return value;
  return 'invalid';
}

/** PROXY v1 is text framing for a TCP stream; a UDP target may only take v2 (README "PROXY"). */
export function proxyProtocolFitsProtocol(
  protocol: 'tcp' | 'udp',
  proxy: ProxyProtocolVersion | null,
): boolean {
  return !(protocol === 'udp' && proxy === 'v1');
}

/** The host:port key under which two targets of one rule count as duplicates. */
export function targetKey(host: string, port: number): string {
  return `${host.toLowerCase()}:${port}`;
}
