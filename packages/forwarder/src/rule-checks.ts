/**
 * The pure rule checks shared by every producer of a RuleSpec: the server's `POST /v1/rules`
 * validation and the standalone's TOML config both call these, so a target host, a port or a
 * PROXY version is judged by one piece of code (reference §2.4, §5.4). They live here because
 * the forwarder is the one package both may import (scripts/check-boundaries.mjs). Pure: no
 * sockets, no clock, no logger; the only dependencies are `node:net`'s IP literal test and
 * core's host-name grammar and error catalogue.
 */
import net from 'node:net';

import {
  MAX_HOST_LABEL_LENGTH,
  MAX_HOST_NAME_LENGTH,
  hostNameProblem,
  type ErrorCode,
} from '@portunus/core';

import type { ProxyProtocolVersion } from './rule-spec.js';

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
  const problem = hostNameProblem(host, { trailingDot: true });
  switch (problem?.kind) {
    case undefined:
      return undefined;
    case 'too_long':
      return {
        code: 'invalid_target_host_too_long',
        message: `${quoted} is longer than ${MAX_HOST_NAME_LENGTH} characters`,
      };
    case 'not_a_name':
      return {
        code: 'invalid_target_host',
        message: `${quoted} is neither an IP address nor a DNS name`,
      };
    case 'label_too_long':
      return {
        code: 'invalid_target_host_label_too_long',
        message: `${quoted}: label ${problem.label.slice(0, 16)}… exceeds ${MAX_HOST_LABEL_LENGTH} characters`,
      };
    case 'label_hyphen':
      return {
        code: 'invalid_target_host_label_hyphen',
        message: `${quoted}: label ${problem.label} starts or ends with a hyphen`,
      };
  }
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
