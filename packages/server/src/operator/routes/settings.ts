/**
 * `GET/PUT /v1/settings/advertised-endpoint` (superadmin, reference §9.4): the control address
 * enrollment URIs tell clients to dial, resolved by tiers, the first that yields winning —
 * (1) the operator's override (stored) and (2) the seed (`--advertised-endpoint` /
 * PORTUNUS_ADVERTISED_ENDPOINT) are explicit, so a malformed or certificate-uncovered one is a
 * hard failure, never skipped; (3) the request's Host header with the control port, only when the
 * certificate covers it; (4) `127.0.0.1:<control port>`. GET always answers 200 and says why
 * nothing resolved in `diagnostic`. An override must be a bare host:port the certificate covers.
 */
import net from 'node:net';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import {
  AdvertisedEndpointRequestSchema,
  AdvertisedEndpointViewSchema,
  NoQuerySchema,
  type AdvertisedEndpointView,
} from '@portunus/api';
import { EVENTS, PortunusError } from '@portunus/core';
import { getAdvertisedEndpointOverride, setAdvertisedEndpointOverride } from '@portunus/store';

import { requireSuperadmin } from '../auth.js';
import type { ControlEndpoint, OperatorContext } from '../context.js';
import { ADMIN_FAILURES, failures } from '../route-schemas.js';

const MAX_ENDPOINT_LENGTH = 263;
const MAX_HOST_LENGTH = 253;

export type EndpointSource = NonNullable<AdvertisedEndpointView['source']>;
export type { AdvertisedEndpointView };

const getSchema = {
  querystring: NoQuerySchema,
  response: { 200: AdvertisedEndpointViewSchema, ...failures(ADMIN_FAILURES) },
};
const putSchema = {
  querystring: NoQuerySchema,
  body: AdvertisedEndpointRequestSchema,
  response: {
    200: AdvertisedEndpointViewSchema,
    ...failures(ADMIN_FAILURES, ['endpoint_invalid', 'endpoint_not_in_cert_san']),
  },
};

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

function isHostName(host: string): boolean {
  if (host.length > MAX_HOST_LENGTH || /^[\d.]+$/.test(host)) return false;
  return host
    .split('.')
    .every((label) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label));
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

type Resolution = Pick<AdvertisedEndpointView, 'effective' | 'source' | 'diagnostic'>;

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

/** Resolves the advertised endpoint for a request (its Host header feeds the derived tier). */
export function resolveAdvertisedEndpoint(
  ctx: OperatorContext,
  request: FastifyRequest,
): AdvertisedEndpointView {
  const override = getAdvertisedEndpointOverride(ctx.db);
  return { override, ...resolveTiers(ctx.control, override, request.headers.host) };
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

export function registerSettingsRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/settings/advertised-endpoint', { schema: getSchema }, (request) => {
    requireSuperadmin(request.identity);
    return resolveAdvertisedEndpoint(ctx, request);
  });

  app.put<{ Body: { advertised_endpoint: string | null } }>(
    '/v1/settings/advertised-endpoint',
    { schema: putSchema },
    (request) => {
      request.auditResource = { kind: 'setting', value: 'advertised_endpoint' };
      requireSuperadmin(request.identity);
      const value = request.body.advertised_endpoint;
      const next = value === null || value.trim() === '' ? null : value;
      if (next !== null) {
        const parsed = parseEndpoint(next);
        if ('problem' in parsed) {
          throw new PortunusError(
            'endpoint_invalid',
            `${JSON.stringify(next)} is not a bare host:port: ${parsed.problem}`,
          );
        }
        if (!ctx.control.coversHost(parsed.host)) {
          throw new PortunusError(
            'endpoint_not_in_cert_san',
            `the server certificate does not cover ${parsed.host}; clients would refuse it`,
          );
        }
      }
      setAdvertisedEndpointOverride(ctx.db, next, ctx.now());
      request.auditAction = {
        action: EVENTS.settingsUpdated,
        resourceKind: 'setting',
        resourceValue: 'advertised_endpoint',
        details: { advertised_endpoint: next },
      };
      return resolveAdvertisedEndpoint(ctx, request);
    },
  );
}
