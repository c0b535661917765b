/**
 * The HTTP side of the CLI: commands that act on a running server call its operator API at
 * `--http-endpoint` (default 127.0.0.1:7080) with the bearer token from PORTUNUS_OPERATOR_TOKEN
 * (reference §1.1), else the credential `portunus-server login` stored (credential-file.ts). An error body `{"error":{"code","message"}}` becomes the PortunusError of
 * that code, so the CLI exits with the same catalogued code the server answered with; codes this
 * binary does not know exit 1.
 */
import { ERROR_CATALOGUE, PortunusError, type ErrorCode } from '@portunus/core';

import { readStoredCredential } from './credential-file.js';

export const DEFAULT_HTTP_ENDPOINT = '127.0.0.1:7080';
/** Per request, as the reference: identity commands 10 s; rule pushes pass their ack budget. */
const REQUEST_TIMEOUT_MS = 10_000;

export interface OperatorClient {
  request<T>(method: string, path: string, body?: unknown, timeoutMs?: number): Promise<T>;
}

export function operatorClient(
  endpoint: string,
  env: Readonly<Record<string, string | undefined>>,
): OperatorClient {
  const base = baseUrl(endpoint);
  // The env var wins over the stored credential, so a script's explicit token is never ignored.
  let token = env['PORTUNUS_OPERATOR_TOKEN']?.trim();
  return {
    async request<T>(
      method: string,
      path: string,
      body?: unknown,
      timeoutMs = REQUEST_TIMEOUT_MS,
    ): Promise<T> {
      token ||= readStoredCredential(env)?.token;
      if (!token) throw new PortunusError('operator_token_missing');
      let response: Response;
      try {
        response = await fetch(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (error) {
        throw new PortunusError(
          'server_unreachable',
          `cannot reach ${base}: ${(error as Error).cause instanceof Error ? ((error as Error).cause as Error).message : (error as Error).message}`,
          { endpoint: base },
        );
      }
      const text = await response.text();
      if (!response.ok) throw fromErrorBody(response.status, text);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    },
  };
}

export function baseUrl(endpoint: string): string {
  return /^https?:\/\//.test(endpoint) ? endpoint.replace(/\/$/, '') : `http://${endpoint}`;
}

export function fromErrorBody(status: number, text: string): PortunusError {
  let code = `http_${status}`;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
  } catch {
    // not the error envelope; keep the raw text
  }
  if (Object.hasOwn(ERROR_CATALOGUE, code)) return new PortunusError(code as ErrorCode, message);
  return new PortunusError('internal_error', `${code}: ${message}`, { code, status });
}
