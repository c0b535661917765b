/**
 * `portunus-server onboard`: the first superadmin from a terminal, the CLI twin of the web UI's
 * onboarding page. It calls `POST /v1/auth/onboarding` on a running server (the use case stays in
 * the server; this module only gathers input and explains the answer), with the setup token that
 * serve prints at startup (`--setup-token`, else a hidden prompt) and a password typed twice at a
 * hidden prompt, or one line of stdin with `--password-stdin`. `--login` then signs in and stores
 * the CLI credential exactly as `login` does. Mismatched passwords are refused before anything is
 * sent. Shapes come from @portunus/api; only fetch, no server internals.
 */
import os from 'node:os';

import type { Command } from 'commander';

import type { OnboardingRequest, OnboardingResponse } from '@portunus/api';
import { PortunusError, type ErrorCode } from '@portunus/core';

import { endpointOption } from './output.js';
import { baseUrl } from './operator-client.js';
import type { CliIo } from './program.js';
import {
  call,
  expectOk,
  promptHidden,
  signInAndStore,
  type SessionCommandDeps,
} from './session-commands.js';

interface OnboardOptions {
  httpEndpoint: string;
  setupToken?: string;
  user: string;
  displayName: string;
  passwordStdin?: boolean;
  login?: boolean;
  label: string;
}

/** What to do next, by code: the server's message says what is wrong, this says how to go on. */
const TOKEN_REQUIRED_HINT = 'pass --setup-token or run onboard in a terminal to be asked for it';

const HINTS: Partial<Record<ErrorCode, string>> = {
  setup_token_invalid:
    'use the token serve printed at its latest start ("Portunus onboarding setup token: …"); ' +
    'a restart of serve prints a fresh one',
  already_bootstrapped:
    'onboarding is done; sign in with `portunus-server login --user <id>` instead',
};

async function readPassword(
  io: CliIo,
  options: OnboardOptions,
  prompt: (question: string) => Promise<string>,
): Promise<{ password: string; confirm: string }> {
  if (options.passwordStdin) {
    const password = (await io.readStdin()).split(/\r?\n/)[0] ?? '';
    return { password, confirm: password };
  }
  const password = await prompt('Password: ');
  const confirm = await prompt('Confirm password: ');
  if (password !== confirm) {
    throw new PortunusError('password_mismatch', 'the two passwords differ; nothing was sent');
  }
  return { password, confirm };
}

export function registerOnboardCommand(program: Command, deps: SessionCommandDeps): void {
  const { io } = deps;
  const prompt = deps.promptPassword ?? promptHidden;
  program
    .command('onboard')
    .description('create the first superadmin with the setup token serve printed (HTTP)')
    .addOption(endpointOption())
    .option('--setup-token <token>', 'the setup token serve printed (else a hidden prompt)')
    .requiredOption('--user <id>', 'user id of the first superadmin')
    .requiredOption('--display-name <name>', 'display name of the first superadmin')
    .option('--password-stdin', 'read the password from the first line of stdin', false)
    .option('--login', 'then sign in and store the CLI credential, as login does', false)
    .option('--label <text>', 'label of the credential --login creates', `cli@${os.hostname()}`)
    .action(async (options: OnboardOptions) => {
      if (options.setupToken === undefined && !deps.promptPassword && !process.stdin.isTTY) {
        throw new PortunusError('setup_token_required', TOKEN_REQUIRED_HINT);
      }
      const setupToken = (options.setupToken ?? (await prompt('Setup token: '))).trim();
      if (setupToken === '') {
        throw new PortunusError('setup_token_required', TOKEN_REQUIRED_HINT);
      }
      const { password, confirm } = await readPassword(io, options, prompt);
      const body: OnboardingRequest = {
        user_id: options.user,
        display_name: options.displayName,
        password,
        password_confirm: confirm,
        setup_token: setupToken,
      };
      const base = baseUrl(options.httpEndpoint);
      let created: OnboardingResponse;
      try {
        created = JSON.parse(
          await expectOk(
            await call(base, '/v1/auth/onboarding', {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(body),
            }),
          ),
        ) as OnboardingResponse;
      } catch (error) {
        const hint = error instanceof PortunusError ? HINTS[error.code] : undefined;
        if (!(error instanceof PortunusError) || hint === undefined) throw error;
        throw new PortunusError(error.code, `${error.message}; ${hint}`);
      }
      io.writeOut(`onboarded ${created.user_id} (${created.display_name}) as ${created.role}\n`);
      if (options.login) {
        await signInAndStore(io, {
          httpEndpoint: options.httpEndpoint,
          user: created.user_id,
          password,
          label: options.label,
        });
      } else {
        io.writeOut(
          `next: portunus-server login --http-endpoint ${options.httpEndpoint} --user ${created.user_id}\n`,
        );
      }
    });
}
