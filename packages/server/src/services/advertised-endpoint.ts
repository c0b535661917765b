/**
 * The advertised control endpoint (reference §9.4) that enrollment URIs tell clients to dial,
 * resolved by tiers, the first that yields winning: (1) the operator's override (stored) and
 * (2) the seed (`--advertised-endpoint` / PORTUNUS_ADVERTISED_ENDPOINT) are explicit, so a
 * malformed or certificate-uncovered one is a hard failure, never skipped; (3) a request's Host
 * header with the control port, only when the certificate covers it; (4) `127.0.0.1:<control
 * port>`. Shared by the settings and client routes and by the offline `enroll-client` and
 * `check-config` commands, which is why it lives here and not in a route module. Pure: no store,
 * no HTTP framework.
 */
import net from 'node:net';

import type { AdvertisedEndpointView } from '@portunus/api';
import { PortunusError, isHostName } from '@portunus/core';

import type { ControlEndpoint } from '../operator/context.js';

export type EndpointSource = NonNullable<AdvertisedEndpointView['source']>;

const MAX_ENDPOINT_LENGTH = 263;

/**
 * A bare `host:port` (reference §9.4): no scheme, path, query, fragment, userinfo, whitespace or
 * IPv6 literal; ≤263 characters; port 1..65535 without a leading zero; host an IPv4 address or an
 * RFC-1123 name (labels 1..63 of letters, digits and inner hyphens, ≤253 in all, not all digits
 * and dots). Returns the parts, or why the text is not one.
 */
export function parseEndpoint(text: string): { host: string; port: number } | { problem: string } {
  if (text === '') return { problem: 'it is empty' };
  if (text.length > MAX_ENDPOINT_LENGTH) {
    return { problem: `it is longer than ${MAX_ENDPOINT_LENGTH} characters` };
  }
  if (text.includes('://')) return { problem: 'it must not contain a scheme' };
  if (text.includes('/')) return { problem: 'it must not contain a path' };
  if (text.includes('?') || text.includes('#')) {
    return { problem: 'it must not contain a query or fragment' };
  }
  if (text.includes('@')) return { problem: 'it must not contain userinfo' };
  if (text.includes('[') || text.includes(']')) {
    return { problem: 'IPv6 literals are not supported' };
  }
  // eslint-disable-next-line no-control-regex -- refusing control characters is the point
  if (/[\s\u0000-\u001f\u007f]/.test(text)) {
    return { problem: 'it must not contain whitespace or control characters' };
  }
  const colon = text.lastIndexOf(':');
  if (colon === -1) return { problem: 'it has no :port' };
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (host === '') return { problem: 'the host is empty' };
  const port = /^[1-9]\d{0,4}$/.test(portText) ? Number(portText) : 0;
  if (port < 1 || port > 65535) {
    return { problem: 'the port must be 1..65535 in decimal without a leading zero' };
  }
  if (!net.isIPv4(host) && !isHostName(host)) {
    return { problem: 'the host must be an IPv4 address or an RFC-1123 host name' };
  }
  return { host, port };
}

/**
 * The derived candidate `<Host header host>:<control port>`, or undefined when the header is
 * unusable (scheme, path, userinfo, whitespace, IPv6 literal, a non-numeric port).
 */
export function hostFromHeader(raw: string, controlPort: number): string | undefined {
  const header = raw.trim();
  if (header === '' || header.length > 255 || /[/@[\]\s]/.test(header)) return undefined;
  const colon = header.lastIndexOf(':');
  if (colon !== -1 && !/^\d+$/.test(header.slice(colon + 1))) return undefined;
  const host = colon === -1 ? header : header.slice(0, colon);
  const candidate = `${host}:${controlPort}`;
  return 'problem' in parseEndpoint(candidate) ? undefined : candidate;
}

export type Resolution = Pick<AdvertisedEndpointView, 'effective' | 'source' | 'diagnostic'>;

/** An explicit tier (override or seed): used as is, or a hard failure with its reason. */
function explicitTier(
  control: ControlEndpoint,
  value: string,
  source: 'override' | 'seed',
): Resolution {
  const parsed = parseEndpoint(value);
  if ('problem' in parsed) {
    return {
      effective: null,
      source: null,
      diagnostic: `endpoint_invalid: the ${source} ${JSON.stringify(value)} is not a bare host:port (${parsed.problem})`,
    };
  }
  if (!control.coversHost(parsed.host)) {
    return {
      effective: null,
      source: null,
      diagnostic: `endpoint_not_in_cert_san: the ${source} host ${parsed.host} is not covered by the server certificate`,
    };
  }
  return { effective: value, source, diagnostic: null };
}

/**
 * The tiers over explicit inputs, for a caller without a request (the offline `enroll-client`
 * passes no Host header, so the derived tier never applies there).
 */
export function resolveTiers(
  control: ControlEndpoint,
  override: string | null,
  hostHeader: string | undefined,
): Resolution {
  if (override !== null) return explicitTier(control, override, 'override');
  if (control.seed !== undefined && control.seed !== '') {
    return explicitTier(control, control.seed, 'seed');
  }
  let skipped: string | null = null;
  const derived = hostFromHeader(hostHeader ?? '', control.port);
  if (derived !== undefined) {
    const host = derived.slice(0, derived.lastIndexOf(':'));
    if (control.coversHost(host))
      return { effective: derived, source: 'derived', diagnostic: null };
    skipped = `the request host ${host} is not covered by the server certificate, so clients are told the loopback address`;
  }
  const loopback = `127.0.0.1:${control.port}`;
  if (!('problem' in parseEndpoint(loopback)) && control.coversHost('127.0.0.1')) {
    return { effective: loopback, source: 'loopback', diagnostic: skipped };
  }
  return {
    effective: null,
    source: null,
    diagnostic:
      'endpoint_not_in_cert_san: no advertised endpoint candidate is covered by the server certificate; set an override',
  };
}

/**
 * The endpoint an enrollment code carries (reference §4.5, §9.4): the first tier that yields, or
 * that tier's failure as endpoint_invalid / endpoint_not_in_cert_san (HTTP 422, CLI exit 2).
 */
export function requireAdvertisedEndpoint(
  control: ControlEndpoint,
  override: string | null,
  hostHeader: string | undefined,
): { endpoint: string; source: EndpointSource } {
  const resolved = resolveTiers(control, override, hostHeader);
  if (resolved.effective !== null && resolved.source !== null) {
    return { endpoint: resolved.effective, source: resolved.source };
  }
  // Every failing tier writes its diagnostic as `<code>: <why>`.
  const diagnostic = resolved.diagnostic ?? 'endpoint_not_in_cert_san: no endpoint resolved';
  const code = diagnostic.startsWith('endpoint_invalid:')
    ? 'endpoint_invalid'
    : 'endpoint_not_in_cert_san';
  throw new PortunusError(code, diagnostic.slice(code.length + 2));
}

/** A new override (reference §9.4): a bare host:port the certificate covers, else 422. */
export function checkOverride(control: ControlEndpoint, value: string): void {
  const parsed = parseEndpoint(value);
  if ('problem' in parsed) {
    throw new PortunusError(
      'endpoint_invalid',
      `${JSON.stringify(value)} is not a bare host:port: ${parsed.problem}`,
    );
  }
  if (!control.coversHost(parsed.host)) {
    throw new PortunusError(
      'endpoint_not_in_cert_san',
      `the server certificate does not cover ${parsed.host}; clients would refuse it`,
    );
  }
}
