/**
 * `GET/PUT /v1/settings/advertised-endpoint` (superadmin, reference §9.4): the control address
 * clients are told to dial, resolved by tiers — the operator's override (stored), the seed
 * (`--advertised-endpoint` / PORTUNUS_ADVERTISED_ENDPOINT), an address derived from the request's
 * Host header if the certificate covers it, else loopback. An override must be a bare host:port
 * that the certificate's SANs cover.
 */
import net from 'node:net';

import type { FastifyInstance, FastifyRequest } from 'fastify';

import { EVENTS, PortunusError } from '@portunus/core';
import { getAdvertisedEndpointOverride, setAdvertisedEndpointOverride } from '@portunus/store';

import { requireSuperadmin } from '../auth.js';
import type { OperatorContext } from '../context.js';

const MAX_ENDPOINT_LENGTH = 263;

/** Splits a bare `host:port` (no scheme, path, userinfo or IPv6 literal), or undefined. */
export function parseEndpoint(text: string): { host: string; port: number } | undefined {
  if (text.length > MAX_ENDPOINT_LENGTH) return undefined;
  const match = /^([A-Za-z0-9.-]+):([1-9]\d{0,4})$/.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const host = match[1];
  const port = Number(match[2]);
  if (port > 65535) return undefined;
  if (net.isIPv4(host)) return { host, port };
  if (/^[\d.]+$/.test(host) || host.length > 253) return undefined;
  const labels = host.replace(/\.$/, '').split('.');
  const valid = labels.every((label) =>
    /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(label),
  );
  return valid ? { host, port } : undefined;
}

type Source = 'override' | 'seed' | 'derived' | 'loopback';

function view(ctx: OperatorContext, request: FastifyRequest): Record<string, unknown> {
  const override = getAdvertisedEndpointOverride(ctx.db);
  const diagnostics: string[] = [];
  const pick = (): { effective: string | null; source: Source | null } => {
    if (override !== null) return { effective: override, source: 'override' };
    if (ctx.control.seed !== undefined) {
      const seed = parseEndpoint(ctx.control.seed);
      if (seed && ctx.control.coversHost(seed.host))
        return { effective: ctx.control.seed, source: 'seed' };
      diagnostics.push(`the seed ${ctx.control.seed} is invalid or not covered by the certificate`);
      return { effective: null, source: null };
    }
    const host = (request.headers.host ?? '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
    if (host !== '' && ctx.control.coversHost(host) && !net.isIPv6(host)) {
      return { effective: `${host}:${ctx.control.port}`, source: 'derived' };
    }
    if (host !== '') diagnostics.push(`the request host ${host} is not covered by the certificate`);
    return { effective: `127.0.0.1:${ctx.control.port}`, source: 'loopback' };
  };
  const { effective, source } = pick();
  return {
    override,
    effective,
    source,
    diagnostic: diagnostics.length > 0 ? diagnostics.join('; ') : null,
  };
}

export function registerSettingsRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get('/v1/settings/advertised-endpoint', (request) => {
    requireSuperadmin(request.identity);
    return view(ctx, request);
  });

  app.put<{ Body: { advertised_endpoint: string | null } }>(
    '/v1/settings/advertised-endpoint',
    {
      schema: {
        body: {
          type: 'object',
          required: ['advertised_endpoint'],
          additionalProperties: false,
          properties: { advertised_endpoint: { type: ['string', 'null'] } },
        },
      },
    },
    (request) => {
      requireSuperadmin(request.identity);
      const text = request.body.advertised_endpoint?.trim() ?? '';
      if (text === '') {
        setAdvertisedEndpointOverride(ctx.db, null, ctx.now());
      } else {
        const endpoint = parseEndpoint(text);
        if (!endpoint) {
          throw new PortunusError(
            'endpoint_invalid',
            `${JSON.stringify(text)} is not a bare host:port (no scheme, path or IPv6 literal)`,
          );
        }
        if (!ctx.control.coversHost(endpoint.host)) {
          throw new PortunusError(
            'endpoint_not_in_cert_san',
            `the server certificate does not cover ${endpoint.host}; clients would refuse it`,
          );
        }
        setAdvertisedEndpointOverride(ctx.db, text, ctx.now());
      }
      request.auditAction = {
        action: EVENTS.settingsUpdated,
        resourceKind: 'setting',
        resourceValue: 'advertised_endpoint',
        details: { advertised_endpoint: text === '' ? null : text },
      };
      return view(ctx, request);
    },
  );
}
