/**
 * CLI commands for identities (reference §1.2), one registrar per command: `gen-token`; offline
 * `onboarding-token` and `reset-password` (they take the data dir's lock, so they refuse while
 * serve runs); and the HTTP-backed `user-*`, `grant-*` and `token-*` commands that call a running
 * server through the typed operator API. Output is JSON by default for user/grant commands
 * (`--format text` for columns), as in the reference.
 */
import { createInterface } from 'node:readline/promises';

import { Option, type Command } from 'commander';

import type { CredentialView, GrantView, Protocol, UserView } from '@portunus/api';
import { PortunusError } from '@portunus/core';
import { openStore } from '@portunus/store';

import { issueSetupToken } from '../identity/bootstrap.js';
import { checkPasswordPolicy } from '../identity/passwords.js';
import { generateSecret } from '../identity/secrets.js';
import { localCliAudit } from '../services/audit-sink.js';
import { resetPassword } from '../services/passwords.js';
import { operatorApi, type OperatorApi } from './operator-client.js';
import {
  endpointOption,
  formatOption,
  printRecords,
  type Format,
  type HttpOptions,
} from './output.js';
import type { CliIo } from './program.js';

export interface IdentityCommandDeps {
  io: CliIo;
  dataDir: (command: Command) => string;
  /** Reads standard input to the end (for --password-stdin). */
  readStdin: () => Promise<string>;
}

type Options = HttpOptions & { format: Format };

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? '';
}

function api(io: CliIo, options: HttpOptions): OperatorApi {
  return operatorApi(options.httpEndpoint, io.env);
}

const USER_COLUMNS = [
  'user_id',
  'display_name',
  'role',
  'disabled',
  'grant_count',
  'created_at',
] as const satisfies readonly (keyof UserView)[];

const GRANT_COLUMNS = [
  'grant_id',
  'user_id',
  'client',
  'listen_port_start',
  'listen_port_end',
  'protocols',
  'note',
] as const satisfies readonly (keyof GrantView)[];

const CREDENTIAL_COLUMNS = [
  'credential_id',
  'user_id',
  'label',
  'status',
  'issued_at',
  'last_used_at',
  'revoked_at',
] as const satisfies readonly (keyof CredentialView)[];

/**
 * A command that sends one request and prints the answer: a positional id or a --user-id
 * filter (either is what `call` gets as `id`), then `--format` (default per command) and
 * `--http-endpoint`.
 */
function requestCommand<T extends object>(
  program: Command,
  io: CliIo,
  spec: {
    name: string;
    description: string;
    argument?: string;
    userFilter?: boolean;
    call: (api: OperatorApi, id: string | undefined) => Promise<T | T[]>;
    columns: readonly (keyof T & string)[];
    format: Format;
  },
): void {
  const command = program.command(spec.name).description(spec.description);
  if (spec.argument !== undefined) command.argument(spec.argument);
  if (spec.userFilter === true) command.option('--user-id <id>', 'only this user');
  command
    .addOption(formatOption(spec.format))
    .addOption(endpointOption())
    .action(async (...args: unknown[]) => {
      const id = spec.argument !== undefined ? (args.shift() as string) : undefined;
      const options = args[0] as Options & { userId?: string };
      const answer = await spec.call(api(io, options), id ?? (options.userId || undefined));
      printRecords(io, options.format, answer, spec.columns);
    });
}

function registerGenToken(program: Command, { io }: IdentityCommandDeps): void {
  program
    .command('gen-token')
    .description('print a new random 43-character token (e.g. for operator_token)')
    .action(() => {
      io.writeOut(`${generateSecret()}\n`);
    });
}

function registerOnboardingToken(program: Command, deps: IdentityCommandDeps): void {
  const { io } = deps;
  program
    .command('onboarding-token')
    .description('rotate the first-run setup token (offline; only while no superadmin exists)')
    .action((_options: object, command: Command) => {
      const store = openStore(deps.dataDir(command), { logger: io.logger });
      try {
        io.writeOut(`setup_token=${issueSetupToken(store, io.logger, Date.now())}\n`);
      } finally {
        store.close();
      }
    });
}

function registerResetPassword(program: Command, deps: IdentityCommandDeps): void {
  const { io } = deps;
  program
    .command('reset-password')
    .description("reset a user's password offline and revoke their web sessions")
    .argument('<user_id>')
    .option('--temporary', 'generate a temporary password and force a change at next login', false)
    .option(
      '--password-stdin',
      'read the new password from the first line of standard input',
      false,
    )
    .action(
      async (
        userId: string,
        options: { temporary: boolean; passwordStdin: boolean },
        command: Command,
      ) => {
        if (options.temporary && options.passwordStdin) {
          throw new PortunusError(
            'usage_error',
            '--temporary and --password-stdin exclude each other',
          );
        }
        // --temporary: the use case generates the password and requires a change at next login.
        const newPassword = options.temporary
          ? undefined
          : options.passwordStdin
            ? firstLine(await deps.readStdin())
            : await promptTwice(io);
        // Refused before the lock is taken, so a weak password never waits on a running serve.
        if (newPassword !== undefined) checkPasswordPolicy(newPassword);
        const store = openStore(deps.dataDir(command), { logger: io.logger });
        try {
          const now = Date.now();
          const reset = await resetPassword(
            { db: store.db, now: () => now },
            userId,
            newPassword === undefined ? {} : { newPassword },
            localCliAudit(store.db, now),
          );
          io.writeOut(
            `password_reset=ok user_id=${userId} sessions_revoked=${reset.sessionsRevoked}` +
              (reset.generated !== undefined ? ` temporary_password=${reset.generated}` : '') +
              '\n',
          );
        } finally {
          store.close();
        }
      },
    );
}

function registerUserAdd(program: Command, deps: IdentityCommandDeps): void {
  const { io } = deps;
  program
    .command('user-add')
    .description('create a user (HTTP)')
    .argument('<user_id>')
    .requiredOption('--display-name <name>', 'display name')
    .addOption(new Option('--role <role>', 'role').choices(['user', 'superadmin']).default('user'))
    .option(
      '--password-stdin',
      'read the initial password from the first line of standard input',
      false,
    )
    .option('--password-change-required', 'force a password change at first login', false)
    .addOption(formatOption('json'))
    .addOption(endpointOption())
    .action(
      async (
        userId: string,
        options: Options & {
          displayName: string;
          role: 'user' | 'superadmin';
          passwordStdin: boolean;
          passwordChangeRequired: boolean;
        },
      ) => {
        if (!options.passwordStdin) {
          throw new PortunusError(
            'initial_password_required',
            'pass --password-stdin and the password on stdin',
          );
        }
        const password = firstLine(await deps.readStdin());
        const created = await api(io, options).createUser({
          user_id: userId,
          display_name: options.displayName,
          role: options.role,
          initial_password: password,
          password_change_required: options.passwordChangeRequired,
        });
        printRecords(io, options.format, created, ['user_id', 'display_name', 'role']);
      },
    );
}

function registerGrantAdd(program: Command, { io }: IdentityCommandDeps): void {
  program
    .command('grant-add')
    .description('grant a user a client, a listen-port range and protocols (HTTP)')
    .requiredOption('--user-id <id>', 'user')
    .requiredOption('--client <name|id|*>', 'client display name, client id, or * for every client')
    .requiredOption('--listen-port-start <port>', 'first listen port', parsePort)
    .requiredOption('--listen-port-end <port>', 'last listen port', parsePort)
    .option('--protocols <list>', 'comma-separated: tcp, udp', 'tcp')
    .option('--note <text>', 'free-form note', '')
    .addOption(formatOption('json'))
    .addOption(endpointOption())
    .action(
      async (
        options: Options & {
          userId: string;
          client: string;
          listenPortStart: number;
          listenPortEnd: number;
          protocols: string;
          note: string;
        },
      ) => {
        const grant = await api(io, options).createGrant({
          user_id: options.userId,
          client: options.client,
          listen_port_start: options.listenPortStart,
          listen_port_end: options.listenPortEnd,
          // The server names an unknown protocol; the CLI passes what was typed.
          protocols: options.protocols
            .split(',')
            .map((p) => p.trim())
            .filter(Boolean) as Protocol[],
          note: options.note,
        });
        printRecords(io, options.format, grant, GRANT_COLUMNS);
      },
    );
}

function registerTokenCreate(program: Command, { io }: IdentityCommandDeps): void {
  program
    .command('token-create')
    .description('create an API credential; the token is printed once (HTTP)')
    .option('--label <text>', 'what the token is for', '')
    .option('--user-id <id>', 'for another user (superadmin only)')
    .addOption(formatOption('text'))
    .addOption(endpointOption())
    .action(async (options: Options & { label: string; userId?: string }) => {
      const created = await api(io, options).createCredential({
        label: options.label,
        ...(options.userId ? { user_id: options.userId } : {}),
      });
      if (options.format === 'json') printRecords(io, 'json', created, []);
      else {
        io.writeOut(
          `credential_id=${created.credential_id} user_id=${created.user_id} token=${created.token}\n`,
        );
      }
    });
}

/** The one-request commands: what each calls and which columns its text shows. */
function registerRequestCommands(program: Command, { io }: IdentityCommandDeps): void {
  requestCommand<UserView>(program, io, {
    name: 'user-list',
    description: 'list users (HTTP)',
    call: (client) => client.listUsers(),
    columns: USER_COLUMNS,
    format: 'json',
  });
  requestCommand<UserView>(program, io, {
    name: 'user-get',
    description: 'show one user (HTTP)',
    argument: '<user_id>',
    call: (client, id) => client.getUser(id ?? ''),
    columns: USER_COLUMNS,
    format: 'json',
  });
  requestCommand(program, io, {
    name: 'user-remove',
    description: 'remove a user and everything they own (HTTP)',
    argument: '<user_id>',
    call: (client, id) => client.removeUser(id ?? ''),
    columns: ['user_id', 'removed_credential_ids', 'revoked_grant_ids', 'removed_rule_ids'],
    format: 'json',
  });
  requestCommand<GrantView>(program, io, {
    name: 'grant-list',
    description: 'list grants (HTTP)',
    userFilter: true,
    call: (client, userId) => client.listGrants(userId),
    columns: GRANT_COLUMNS,
    format: 'json',
  });
  requestCommand(program, io, {
    name: 'grant-revoke',
    description: "revoke a grant; the owner's rules it alone covered are removed (HTTP)",
    argument: '<grant_id>',
    call: (client, id) => client.revokeGrant(id ?? ''),
    columns: ['grant_id', 'removed_rule_ids'],
    format: 'json',
  });
  requestCommand<CredentialView>(program, io, {
    name: 'token-list',
    description: 'list API credentials (HTTP)',
    userFilter: true,
    call: (client, userId) => client.listCredentials(userId),
    columns: CREDENTIAL_COLUMNS,
    format: 'text',
  });
  requestCommand<CredentialView>(program, io, {
    name: 'token-revoke',
    description: 'revoke an API credential (HTTP)',
    argument: '<credential_id>',
    call: (client, id) => client.revokeCredential(id ?? ''),
    columns: CREDENTIAL_COLUMNS,
    format: 'text',
  });
}

export function registerIdentityCommands(program: Command, deps: IdentityCommandDeps): void {
  registerGenToken(program, deps);
  registerOnboardingToken(program, deps);
  registerResetPassword(program, deps);
  registerUserAdd(program, deps);
  registerRequestCommands(program, deps);
  registerGrantAdd(program, deps);
  registerTokenCreate(program, deps);
}

function parsePort(text: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw new PortunusError(
      'invalid_port_range',
      `${JSON.stringify(text)} is not a port (1..65535)`,
    );
  }
  return port;
}

/** Asks twice without echo; refuses when stdin is not a terminal. */
async function promptTwice(io: CliIo): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new PortunusError(
      'usage_error',
      'no terminal to prompt on: pass --password-stdin or --temporary',
    );
  }
  const ask = async (question: string): Promise<string> => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    const muted = rl as unknown as { _writeToOutput?: (s: string) => void };
    io.writeErr(question);
    muted._writeToOutput = () => undefined;
    try {
      return await rl.question('');
    } finally {
      rl.close();
      io.writeErr('\n');
    }
  };
  const first = await ask('New password: ');
  const second = await ask('Repeat it: ');
  if (first !== second) throw new PortunusError('password_mismatch');
  return first;
}
