/**
 * `portunus-client enroll`: redeems a one-time enrollment URI for a credential bundle (reference
 * §1.6, §4.5). The URI's pin is checked on the server's leaf certificate before the code is sent
 * (pinning.ts), the gRPC `ClientEnrollment.Enroll` call runs over credentials that trust only that
 * certificate, and the bundle is written 0600 (bundle.ts). Each refusal the server names becomes
 * its own catalogued error. Depends on proto and core; never on the data plane.
 */
import { EVENTS, PortunusError, type Logger } from '@portunus/core';
import {
  EnrollmentClient,
  grpc,
  parseEnrollUri,
  type CredentialBundle,
  type EnrollClientRequest,
} from '@portunus/proto';

import { BUNDLE_VERSION, validateBundle, writeBundle, type Bundle } from './bundle.js';
import {
  fetchPinnedCertificate,
  fingerprintsEqual,
  grpcTarget,
  pinnedChannelOptions,
  pinnedCredentials,
} from './pinning.js';

export const DEFAULT_ENROLL_TIMEOUT_MS = 15_000;

/** Server refusals that are stable codes of their own (UNAUTHENTICATED details). */
const ENROLLMENT_REFUSALS = [
  'enrollment_invalid',
  'enrollment_used',
  'enrollment_expired',
] as const;

export interface EnrollOptions {
  uri: string;
  /** Where the bundle goes (already resolved by the caller). */
  outPath: string;
  logger: Logger;
  timeoutMs?: number;
}

export interface EnrollResult {
  path: string;
  bundle: Bundle;
}

/** Maps a failed Enroll call to a catalogued error naming what the server said. */
export function enrollRpcError(error: grpc.ServiceError, endpoint: string): PortunusError {
  const details = error.details;
  const refusal = ENROLLMENT_REFUSALS.find((code) => code === details);
  if (error.code === grpc.status.UNAUTHENTICATED && refusal !== undefined) {
    return new PortunusError(refusal, `rpc: ${refusal}`, { endpoint, grpc_code: error.code });
  }
  const codeName = grpc.status[error.code] as string | undefined;
  const what = details !== '' ? details : (codeName ?? String(error.code));
  const prefix =
    error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.DEADLINE_EXCEEDED
      ? 'transport'
      : 'rpc';
  return new PortunusError(
    'control_unreachable',
    `${prefix}: ${what}`,
    { endpoint, grpc_code: error.code },
    { cause: error },
  );
}

function callEnroll(
  client: grpc.Client,
  request: EnrollClientRequest,
  timeoutMs: number,
): Promise<CredentialBundle> {
  return new Promise((resolve, reject) => {
    const method = (client as unknown as Record<string, unknown>)['Enroll'] as (
      this: grpc.Client,
      request: EnrollClientRequest,
      options: grpc.CallOptions,
      callback: grpc.requestCallback<CredentialBundle>,
    ) => grpc.ClientUnaryCall;
    method.call(client, request, { deadline: Date.now() + timeoutMs }, (error, response) => {
      if (error) reject(error);
      else if (response === undefined) reject(new Error('empty Enroll response'));
      else resolve(response);
    });
  });
}

/** Runs the whole enrollment and returns where the bundle was written. */
export async function enroll(options: EnrollOptions): Promise<EnrollResult> {
  const uri = parseEnrollUri(options.uri);
  const timeoutMs = options.timeoutMs ?? DEFAULT_ENROLL_TIMEOUT_MS;
  const certificate = await fetchPinnedCertificate(uri.host, uri.port, uri.pinSha256, {
    timeoutMs,
  });
  const client = new EnrollmentClient(
    grpcTarget(uri.host, uri.port),
    pinnedCredentials(certificate),
    pinnedChannelOptions(uri.host),
  );
  let response: CredentialBundle;
  try {
    response = await callEnroll(client, { code: uri.code }, timeoutMs);
  } catch (error) {
    if (isServiceError(error)) throw enrollRpcError(error, uri.endpoint);
    throw error;
  } finally {
    client.close();
  }
  const bundle = validateBundle(
    {
      version: response.version === 0 ? BUNDLE_VERSION : response.version,
      client_name: response.client_name,
      client_id: response.client_id,
      // A server that stored no advertised endpoint answers none; the URI's is the one that works.
      server_endpoint: response.server_endpoint !== '' ? response.server_endpoint : uri.endpoint,
      server_cert_sha256:
        response.server_cert_sha256 !== '' ? response.server_cert_sha256 : uri.pinSha256,
      token: response.token,
    },
    'from the Enroll response',
  );
  if (!fingerprintsEqual(bundle.server_cert_sha256, uri.pinSha256)) {
    throw new PortunusError(
      'bundle_invalid',
      'the Enroll response names a certificate fingerprint other than the pinned one',
      { endpoint: uri.endpoint },
    );
  }
  try {
    writeBundle(options.outPath, bundle);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    throw new PortunusError(
      'io_error',
      `cannot write the client bundle to ${options.outPath} (${code})`,
      { path: options.outPath },
      { cause: error },
    );
  }
  options.logger.info(EVENTS.clientEnrolled, {
    path: options.outPath,
    client_id: bundle.client_id,
    client_name: bundle.client_name,
    server_endpoint: bundle.server_endpoint,
  });
  return { path: options.outPath, bundle };
}

function isServiceError(error: unknown): error is grpc.ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<grpc.ServiceError>).code === 'number' &&
    'details' in error
  );
}
