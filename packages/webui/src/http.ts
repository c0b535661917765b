/**
 * The web UI's only door to the operator API. The session lives in the HttpOnly cookie alone
 * (`credentials: 'same-origin'`), so no token or secret ever reaches web storage; every write
 * carries `X-Portunus-CSRF: 1` (reference §2.1). A 401 on any call but the login itself hands
 * control to the registered handler, which returns to the login page with "Session expired".
 * Shapes come from @portunus/api; this module must not import React.
 */
import { CSRF_HEADER, type ErrorBody } from '@portunus/api';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let onUnauthorized: (() => void) | undefined;

/** The app installs the "Session expired" redirect here once. */
export function setUnauthorizedHandler(handler: () => void): void {
  onUnauthorized = handler;
}

/** Calls where a 401 is an answer (wrong password), not an expired session. */
const UNAUTHORIZED_IS_ANSWER = ['/v1/auth/login', '/v1/auth/onboarding', '/v1/users/me/password'];

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const isWrite = method !== 'GET' && method !== 'HEAD';
  const headers: Record<string, string> = {};
  if (isWrite) headers[CSRF_HEADER] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text) as Partial<ErrorBody>;
      if (parsed.error) ({ code, message } = parsed.error);
    } catch {
      // not the error envelope: keep the status as the code
    }
    if (response.status === 401 && !UNAUTHORIZED_IS_ANSWER.includes(path)) onUnauthorized?.();
    throw new ApiError(response.status, code, message);
  }
  if (text === '') return undefined as T;
  const type = response.headers.get('content-type') ?? '';
  return (type.includes('json') ? JSON.parse(text) : text) as T;
}
