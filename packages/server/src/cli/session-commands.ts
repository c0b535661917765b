/**
 * `portunus-server login` and `logout`: an operator's own API credential for the CLI. login signs
 * in with user id and password (a hidden prompt, or `--password-stdin` for scripts), creates a
 * per-user API credential with that short-lived web session, ends the session, and stores the
 * token in the 0600 credential file every CLI command reads (credential-file.ts); logout revokes
 * the credential on the server and removes the file. The password is never stored or logged.
 * Shapes come from @portunus/api; only fetch, no server internals.
 */
import os from 'node:os';

import type { Command } from 'commander';

import type {
  CreateCredentialRequest,
  CreatedCredential,
  LoginRequest,
  LoginResponse,
} from '@portunus/api';
import { EVENTS, PortunusError } from '@portunus/core';

import {
  credentialFilePath,
  readStoredCredential,
  removeStoredCredential,
  writeStoredCredential,
} from './credential-file.js';
import { endpointOption } from './output.js';
import { baseUrl, fromErrorBody, operatorClient } from './operator-client.js';
import type { CliIo } from './program.js';

const SESSION_COOKIE = 'portunus_session';
const REQUEST_TIMEOUT_MS = 10_000;

export interface SessionCommandDeps {
  io: CliIo;
  /** Reads a password without echo; tests pass a canned one. */
  promptPassword?: (question: string) => Promise<string>;
}

export async function call(base: string, path: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(`${base}${path}`, {
      ...init,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new PortunusError(
      'server_unreachable',
      `cannot reach ${base}: ${(error as Error).message}`,
      {
        endpoint: base,
      },
    );
  }
}

export async function expectOk(response: Response): Promise<string> {
  const text = await response.text();
  if (!response.ok) throw fromErrorBody(response.status, text);
  return text;
}

/** A hidden prompt on the controlling terminal: characters are read raw and never echoed. */
export function promptHidden(question: string): Promise<string> {
  const input = process.stdin;
  if (!input.isTTY) {
    return Promise.reject(
      new PortunusError('usage_error', 'no terminal to ask for the password; use --password-stdin'),
    );
  }
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    input.setRawMode(true);
    input.setEncoding('utf8');
    input.resume();
    const done = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n') {
          done();
          return;
        }
        if (char === '\u0003') {
          done(new PortunusError('usage_error', 'cancelled'));
          return;
        }
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else value += char;
      }
    };
    input.on('data', onData);
  });
}

/**
 * Signs in with a password, creates an API credential with that short-lived web session, ends
 * the session and stores the token (login, and `onboard --login`).
 */
export async function signInAndStore(
  io: CliIo,
  options: { httpEndpoint: string; user: string; password: string; label: string },
): Promise<void> {
  const { password } = options;
  const base = baseUrl(options.httpEndpoint);
  const login: LoginRequest = { user_id: options.user, password };
  const signedIn = await call(base, '/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(login),
  });
  const answer = JSON.parse(await expectOk(signedIn)) as LoginResponse;
  const cookie = signedIn.headers
    .getSetCookie()
    .map((line) => line.split(';')[0] ?? '')
    .find((pair) => pair.startsWith(`${SESSION_COOKIE}=`));
  if (!cookie) throw new PortunusError('internal_error', 'the server set no session cookie');
  // The session is a cookie session: writes need the same-origin and CSRF headers.
  const session = { cookie, origin: base, 'x-portunus-csrf': '1' };
  try {
    if (answer.password_change_required) throw new PortunusError('password_change_required');
    const body: CreateCredentialRequest = { label: options.label };
    const created = JSON.parse(
      await expectOk(
        await call(base, '/v1/credentials', {
          method: 'POST',
          headers: { ...session, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      ),
    ) as CreatedCredential;
    const file = writeStoredCredential(io.env, {
      endpoint: options.httpEndpoint,
      user_id: created.user_id,
      credential_id: created.credential_id,
      token: created.token,
      created_at: created.issued_at,
    });
    io.logger.info(EVENTS.cliLoggedIn, {
      user_id: created.user_id,
      credential_id: created.credential_id,
      path: file,
    });
    io.writeOut(
      `logged in as ${created.user_id}\ncredential_id=${created.credential_id}\nstored in ${file} (mode 0600)\n`,
    );
  } finally {
    // The CLI keeps only the API credential; the web session ends now.
    await call(base, '/v1/auth/logout', { method: 'POST', headers: session }).catch(
      () => undefined,
    );
  }
}

export function registerSessionCommands(program: Command, deps: SessionCommandDeps): void {
  const { io } = deps;
  program
    .command('login')
    .description('sign in and store an API credential for the CLI (0600 file; env token wins)')
    .addOption(endpointOption())
    .requiredOption('--user <id>', 'user id to sign in as')
    .option('--password-stdin', 'read the password from stdin instead of prompting')
    .option('--label <text>', 'label of the created credential', `cli@${os.hostname()}`)
    .action(
      async (options: {
        httpEndpoint: string;
        user: string;
        passwordStdin?: boolean;
        label: string;
      }) => {
        const password = options.passwordStdin
          ? (await io.readStdin()).replace(/\r?\n$/, '')
          : await (deps.promptPassword ?? promptHidden)('Password: ');
        if (password === '') throw new PortunusError('usage_error', 'the password is empty');
        await signInAndStore(io, { ...options, password });
      },
    );

  program
    .command('logout')
    .description('revoke the stored CLI credential on the server and delete its file')
    .addOption(endpointOption())
    .action(async (options: { httpEndpoint: string }, command: Command) => {
      const stored = readStoredCredential(io.env);
      if (!stored)
        throw new PortunusError('not_logged_in', `no credential at ${credentialFilePath(io.env)}`);
      // The endpoint the credential was made on, unless the operator named one.
      const explicit = command.getOptionValueSource('httpEndpoint') === 'cli';
      const endpoint = explicit ? options.httpEndpoint : stored.endpoint;
      const client = operatorClient(endpoint, { ...io.env, PORTUNUS_OPERATOR_TOKEN: stored.token });
      try {
        await client.request(
          'DELETE',
          `/v1/credentials/${encodeURIComponent(stored.credential_id)}`,
        );
      } catch (error) {
        // Already revoked elsewhere: the file is all that is left to remove.
        if (!(error instanceof PortunusError && error.code === 'credential_invalid')) throw error;
      }
      removeStoredCredential(io.env);
      io.logger.info(EVENTS.cliLoggedOut, { credential_id: stored.credential_id });
      io.writeOut(
        `logged out; credential ${stored.credential_id} revoked and ${credentialFilePath(io.env)} removed\n`,
      );
    });
}
