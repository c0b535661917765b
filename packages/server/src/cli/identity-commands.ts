/**
 * CLI commands for identities (reference §1.2): `gen-token`; offline `onboarding-token` and
 * `reset-password` (they take the data dir's lock, so they refuse while serve runs); and the
 * HTTP-backed `user-*`, `grant-*` and `token-*` commands that call a running server. Output is
 * JSON by default for user/grant commands (`--format text` for columns), as in the reference.
 */
import { createInterface } from 'node:readline/promises';

import { Command, Option } from 'commander';

import { PortunusError } from '@portunus/core';
import {
  appendAudit,
  getUserOrThrow,
  immediate,
  openStore,
  revokeUserWebSessions,
  setPassword,
} from '@portunus/store';

import { issueSetupToken } from '../identity/bootstrap.js';
import { checkPasswordPolicy, hashPassword } from '../identity/passwords.js';
import { generateSecret } from '../identity/secrets.js';
import { DEFAULT_HTTP_ENDPOINT, operatorClient, type OperatorClient } from './operator-client.js';
import type { CliIo } from './program.js';

export interface IdentityCommandDeps {
  io: CliIo;
  dataDir: (command: Command) => string;
  /** Reads standard input to the end (for --password-stdin). */
  readStdin: () => Promise<string>;
}

type Format = 'json' | 'text';

function formatOption(defaultFormat: Format): Option {
  return new Option('--format <format>', 'output format')
    .choices(['json', 'text'])
    .default(defaultFormat);
}

function endpointOption(): Option {
  return new Option(
    '--http-endpoint <host:port>',
    'operator HTTP endpoint of the running server',
  ).default(DEFAULT_HTTP_ENDPOINT);
}

function printRecords(io: CliIo, format: Format, value: unknown, columns: readonly string[]): void {
  if (format === 'json') {
    io.writeOut(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  const rows = (Array.isArray(value) ? value : [value]) as Record<string, unknown>[];
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'string') return v;
    if (Array.isArray(v)) return v.map(cell).join(',');
    return JSON.stringify(v);
  };
  const table = [
    columns.map((c) => c.toUpperCase()),
    ...rows.map((row) => columns.map((c) => cell(row[c]))),
  ];
  const widths = columns.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  for (const r of table)
    io.writeOut(
      `${r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0] ?? '';
}

export function registerIdentityCommands(program: Command, deps: IdentityCommandDeps): void {
  const { io } = deps;
  const client = (options: { httpEndpoint: string }): OperatorClient =>
    operatorClient(options.httpEndpoint, io.env);

  /**
   * A command that sends one request and prints the answer: an optional positional id (URL
   * encoded into the path) and an optional --user-id filter.
   */
  const requestCommand = (spec: {
    name: string;
    description: string;
    argument?: string;
    userFilter?: boolean;
    method: 'GET' | 'DELETE';
    path: (id: string) => string;
    columns: readonly string[];
    format: Format;
  }): void => {
    const command = program.command(spec.name).description(spec.description);
    if (spec.argument !== undefined) command.argument(spec.argument);
    if (spec.userFilter === true) command.option('--user-id <id>', 'only this user');
    command
      .addOption(formatOption(spec.format))
      .addOption(endpointOption())
      .action(async (...args: unknown[]) => {
        const id = spec.argument !== undefined ? (args.shift() as string) : '';
        const options = args[0] as { userId?: string; format: Format; httpEndpoint: string };
        const query = options.userId ? `?user_id=${encodeURIComponent(options.userId)}` : '';
        const answer = await client(options).request(
          spec.method,
          `${spec.path(encodeURIComponent(id))}${query}`,
        );
        printRecords(io, options.format, answer, spec.columns);
      });
  };

  program
    .command('gen-token')
    .description('print a new random 43-character token (e.g. for operator_token)')
    .action(() => {
      io.writeOut(`${generateSecret()}\n`);
    });

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
        let password: string;
        if (options.temporary) password = generateSecret();
        else if (options.passwordStdin) password = firstLine(await deps.readStdin());
        else password = await promptTwice(io);
        checkPasswordPolicy(password);
        const passwordHash = await hashPassword(password);
        const store = openStore(deps.dataDir(command), { logger: io.logger });
        try {
          const now = Date.now();
          const revoked = immediate(store.db, () => {
            getUserOrThrow(store.db, userId);
            setPassword(store.db, userId, passwordHash, options.temporary, now);
            const count = revokeUserWebSessions(store.db, userId, now);
            appendAudit(store.db, [
              {
                ts: now,
                actor: '_local_cli',
                outcome: 'allow',
                action: 'operator.password_reset',
                resourceKind: 'user',
                resourceValue: userId,
                details: {
                  sessions_revoked: count,
                  temporary_password_generated: options.temporary,
                  password_change_required: options.temporary,
                  source: 'cli',
                  // An offline command has no peer: it ran on this host, as _local_cli.
                  remote_addr: null,
                },
              },
            ]);
            return count;
          });
          io.writeOut(
            `password_reset=ok user_id=${userId} sessions_revoked=${revoked}` +
              (options.temporary ? ` temporary_password=${password}` : '') +
              '\n',
          );
        } finally {
          store.close();
        }
      },
    );

  const userColumns = ['user_id', 'display_name', 'role', 'disabled', 'grant_count', 'created_at'];

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
        options: {
          displayName: string;
          role: string;
          passwordStdin: boolean;
          passwordChangeRequired: boolean;
          format: Format;
          httpEndpoint: string;
        },
      ) => {
        if (!options.passwordStdin) {
          throw new PortunusError(
            'initial_password_required',
            'pass --password-stdin and the password on stdin',
          );
        }
        const password = firstLine(await deps.readStdin());
        const created = await client(options).request('POST', '/v1/users', {
          user_id: userId,
          display_name: options.displayName,
          role: options.role,
          initial_password: password,
          password_change_required: options.passwordChangeRequired,
        });
        printRecords(io, options.format, created, ['user_id', 'display_name', 'role']);
      },
    );

  requestCommand({
    name: 'user-list',
    description: 'list users (HTTP)',
    method: 'GET',
    path: () => '/v1/users',
    columns: userColumns,
    format: 'json',
  });

  requestCommand({
    name: 'user-get',
    description: 'show one user (HTTP)',
    argument: '<user_id>',
    method: 'GET',
    path: (id) => `/v1/users/${id}`,
    columns: userColumns,
    format: 'json',
  });

  requestCommand({
    name: 'user-remove',
    description: 'remove a user and everything they own (HTTP)',
    argument: '<user_id>',
    method: 'DELETE',
    path: (id) => `/v1/users/${id}`,
    columns: ['user_id', 'removed_credential_ids', 'revoked_grant_ids', 'removed_rule_ids'],
    format: 'json',
  });

  const grantColumns = [
    'grant_id',
    'user_id',
    'client',
    'listen_port_start',
    'listen_port_end',
    'protocols',
    'note',
  ];

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
      async (options: {
        userId: string;
        client: string;
        listenPortStart: number;
        listenPortEnd: number;
        protocols: string;
        note: string;
        format: Format;
        httpEndpoint: string;
      }) => {
        const grant = await client(options).request('POST', '/v1/grants', {
          user_id: options.userId,
          client: options.client,
          listen_port_start: options.listenPortStart,
          listen_port_end: options.listenPortEnd,
          protocols: options.protocols
            .split(',')
            .map((p) => p.trim())
            .filter(Boolean),
          note: options.note,
        });
        printRecords(io, options.format, grant, grantColumns);
      },
    );

  requestCommand({
    name: 'grant-list',
    description: 'list grants (HTTP)',
    userFilter: true,
    method: 'GET',
    path: () => '/v1/grants',
    columns: grantColumns,
    format: 'json',
  });

  requestCommand({
    name: 'grant-revoke',
    description: "revoke a grant; the owner's rules it alone covered are removed (HTTP)",
    argument: '<grant_id>',
    method: 'DELETE',
    path: (id) => `/v1/grants/${id}`,
    columns: ['grant_id', 'removed_rule_ids'],
    format: 'json',
  });

  const credentialColumns = [
    'credential_id',
    'user_id',
    'label',
    'status',
    'issued_at',
    'last_used_at',
    'revoked_at',
  ];

  program
    .command('token-create')
    .description('create an API credential; the token is printed once (HTTP)')
    .option('--label <text>', 'what the token is for', '')
    .option('--user-id <id>', 'for another user (superadmin only)')
    .addOption(formatOption('text'))
    .addOption(endpointOption())
    .action(
      async (options: { label: string; userId?: string; format: Format; httpEndpoint: string }) => {
        const created = await client(options).request<Record<string, unknown>>(
          'POST',
          '/v1/credentials',
          {
            label: options.label,
            ...(options.userId ? { user_id: options.userId } : {}),
          },
        );
        if (options.format === 'json') printRecords(io, 'json', created, []);
        else
          io.writeOut(
            `credential_id=${String(created['credential_id'])} user_id=${String(created['user_id'])} token=${String(created['token'])}\n`,
          );
      },
    );

  requestCommand({
    name: 'token-list',
    description: 'list API credentials (HTTP)',
    userFilter: true,
    method: 'GET',
    path: () => '/v1/credentials',
    columns: credentialColumns,
    format: 'text',
  });

  requestCommand({
    name: 'token-revoke',
    description: 'revoke an API credential (HTTP)',
    argument: '<credential_id>',
    method: 'DELETE',
    path: (id) => `/v1/credentials/${id}`,
    columns: credentialColumns,
    format: 'text',
  });
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
