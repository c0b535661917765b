/**
 * Trust in the control server by fingerprint only (DESIGN.md §5, deps-verified §3): no CA, no
 * hostname check. Node calls `checkServerIdentity` only after chain verification succeeded, so
 * `rejectUnauthorized: false` plus a callback would accept any certificate. Instead each connect
 * first fetches the leaf with a plain TLS handshake and compares SHA-256 of its DER with the pin
 * (timing-safe), then builds gRPC credentials that trust exactly that certificate as the only
 * root and compare the fingerprint again in `checkServerIdentity` — so an impostor swapped in
 * between the two handshakes still fails. Depends on node:tls/crypto and proto's grpc instance;
 * it knows nothing of bundles, rules or the data plane.
 */
import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

import { PortunusError } from '@portunus/core';
import { grpc } from '@portunus/proto';

export const DEFAULT_PIN_FETCH_TIMEOUT_MS = 10_000;
/**
 * TLS server name used when the endpoint is an IP literal: grpc-js would otherwise set the SNI
 * to the IP, which Node refuses with DEP0123. The name is never checked (the pin is).
 */
export const PINNED_SERVER_NAME = 'portunus';

export function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/** Constant-time comparison of two lowercase hex fingerprints. */
export function fingerprintsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a.toLowerCase(), 'utf8');
  const right = Buffer.from(b.toLowerCase(), 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

export interface PinnedCertificate {
  /** PEM of the verified leaf, the only trust anchor for the gRPC channel. */
  pem: string;
  sha256: string;
}

export interface FetchOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

function serverNameFor(host: string): string | undefined {
  return net.isIP(host) === 0 ? host : undefined;
}

/**
 * Fetches the server's leaf certificate and checks it against the pin before anything is sent
 * (the handshake is all that happens). Throws `pin_mismatch` or `control_unreachable`.
 */
export function fetchPinnedCertificate(
  host: string,
  port: number,
  pin: string,
  options: FetchOptions = {},
): Promise<PinnedCertificate> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PIN_FETCH_TIMEOUT_MS;
  const endpoint = net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    const servername = serverNameFor(host);
    const socket = tls.connect({
      host,
      port,
      ...(servername !== undefined ? { servername } : {}),
      // Verification is the fingerprint comparison below; this handshake carries no data.
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      outcome();
    };
    const unreachable = (why: string, cause?: unknown): void => {
      finish(() => {
        reject(
          new PortunusError(
            'control_unreachable',
            `transport: ${endpoint}: ${why}`,
            { endpoint },
            { cause },
          ),
        );
      });
    };
    const onAbort = (): void => {
      unreachable('aborted');
    };
    const timer = setTimeout(() => {
      unreachable(`TLS handshake timed out after ${timeoutMs} ms`);
    }, timeoutMs);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error: Error) => {
      unreachable(error.message, error);
    });
    socket.once('secureConnect', () => {
      const der = socket.getPeerCertificate().raw as Buffer | undefined;
      if (der === undefined || der.length === 0) {
        unreachable('the server presented no certificate');
        return;
      }
      const actual = sha256Hex(der);
      if (!fingerprintsEqual(actual, pin)) {
        finish(() => {
          reject(
            new PortunusError(
              'pin_mismatch',
              `pin mismatch: ${endpoint} presents sha256:${actual}, the pin is sha256:${pin}`,
              { endpoint, expected_sha256: pin, actual_sha256: actual },
            ),
          );
        });
        return;
      }
      finish(() => {
        resolve({ pem: new X509Certificate(der).toString(), sha256: actual });
      });
    });
  });
}

/** gRPC credentials trusting only the pinned PEM and re-checking the fingerprint. */
export function pinnedCredentials(certificate: PinnedCertificate): grpc.ChannelCredentials {
  const pin = certificate.sha256;
  return grpc.credentials.createSsl(Buffer.from(certificate.pem), null, null, {
    checkServerIdentity: (_host, cert) =>
      fingerprintsEqual(sha256Hex(cert.raw), pin)
        ? undefined
        : new Error(`pin mismatch: the server certificate is not sha256:${pin}`),
  });
}

/** Channel options for a pinned connection to `host`, optionally with keepalive pings. */
export function pinnedChannelOptions(
  host: string,
  extra: grpc.ChannelOptions = {},
): grpc.ChannelOptions {
  return {
    // The name is only the TLS SNI value; `checkServerIdentity` above replaces the name check.
    'grpc.ssl_target_name_override': serverNameFor(host) ?? PINNED_SERVER_NAME,
    // Each connect builds fresh credentials; never share a subchannel across them.
    'grpc.use_local_subchannel_pool': 1,
    ...extra,
  };
}

/** `host:port` for a grpc-js target (IPv6 literals bracketed). */
export function grpcTarget(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}
