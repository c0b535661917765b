/**
 * CLI commands for the fleet (reference §1.2, §1.3), one registrar per command: the offline
 * `enroll-client`, `revoke` and `rename-client`, which take the data dir's lock through openStore
 * (so they exit 75 while serve runs) and call the same use cases as the client routes
 * (services/clients.ts) with a `_local_cli` audit row; and the HTTP-backed `list-clients`,
 * `push-rule`, `edit-rule` (one body builder, rule-flags.ts), `list-rules`, `remove-rule` and
 * `rule-stats`, which call a running server through the typed operator API and exit with the
 * catalogued code of the error it answers. `enroll-client` loads the TLS identity exactly as
 * serve does, so the URI's pin is the certificate serve presents. This module must not depend on
 * the control stream or on the operator app at load time: the TLS and client-service modules
 * (x509, grpc-js) are imported only by the command that needs them.
 */
import type { Database } from 'better-sqlite3';
import type { Command } from 'commander';

import type { IssuedEnrollment } from '@portunus/api';

import {
  ENROLLMENT_TTL_DEFAULT_SECS,
  checkClientAddress,
  checkClientName,
  checkEnrollmentTtl,
  openStore,
} from '@portunus/store';

import { advertisedSeed, loadServerConfig } from '../config.js';
import { localCliAudit } from '../services/audit-sink.js';
import { operatorApi, type OperatorApi } from './operator-client.js';
import {
  endpointOption,
  formatOption,
  printJson,
  printTable,
  text,
  type Format,
  type HttpOptions,
} from './output.js';
import type { CliIo } from './program.js';
import { addRuleBodyOptions, ruleBody, ruleTimeoutMs, type RuleFlags } from './rule-flags.js';
import {
  PORT_STATS_COLUMNS,
  RULE_COLUMNS,
  TARGET_STATS_COLUMNS,
  portStatsRows,
  ruleRow,
  statsLine,
  targetStatsRows,
} from './rule-format.js';

export interface FleetCommandDeps {
  io: CliIo;
  dataDir: (command: Command) => string;
}

interface GlobalOptions {
  advertisedEndpoint?: string;
}

/** `--ttl-secs`: digits only, then the store's 1..86400 rule (invalid_enrollment_ttl, exit 2). */
function parseTtl(value: string): number {
  return checkEnrollmentTtl(/^\d{1,6}$/.test(value) ? Number(value) : Number.NaN);
}

/** The service deps of an offline command: its store, its logger, one clock reading. */
function offline(io: CliIo, db: Database, now: number) {
  return { db, logger: io.logger, now: () => now };
}

/** The reference's three lines first, so scripts reading them by position keep working. */
function printIssued(io: CliIo, issued: IssuedEnrollment): void {
  io.writeOut(
    `client_name=${issued.client_name}\n` +
      `expires_at=${issued.expires_at}\n` +
      `${issued.command}\n` +
      `client_id=${issued.client_id}\n`,
  );
}

function api(io: CliIo, options: HttpOptions): OperatorApi {
  return operatorApi(options.httpEndpoint, io.env);
}

function registerEnrollClient(program: Command, deps: FleetCommandDeps): void {
  const { io } = deps;
  program
    .command('enroll-client')
    .description(
      'issue a one-time enrollment URI for a new client (offline, taking the lock; or HTTP with --http-endpoint)',
    )
    .argument('<name>', 'display name of the client')
    .option('--address <host>', 'public entry address of the client (bare IP or host, no port)')
    .option(
      '--ttl-secs <n>',
      'lifetime of the code in seconds, 1..86400',
      String(ENROLLMENT_TTL_DEFAULT_SECS),
    )
    .option(
      '--http-endpoint <host:port>',
      'ask this running server instead (the same use case, as the signed-in superadmin)',
    )
    .action(
      async (
        name: string,
        options: { address?: string; ttlSecs: string; httpEndpoint?: string },
        command: Command,
      ) => {
        // Every input is checked before the lock is taken or anything is written.
        const input = {
          name: checkClientName(name),
          address: options.address === undefined ? null : checkClientAddress(options.address),
          ttlSecs: parseTtl(options.ttlSecs),
        };
        if (options.httpEndpoint !== undefined) {
          const issued = await operatorApi(options.httpEndpoint, io.env).enrollClient({
            name: input.name,
            address: input.address,
            ttl_secs: input.ttlSecs,
          });
          printIssued(io, issued);
          return;
        }
        const dataDir = deps.dataDir(command);
        const config = loadServerConfig(dataDir);
        const { advertisedEndpoint } = command.optsWithGlobals<GlobalOptions>();
        const seed = advertisedSeed(advertisedEndpoint ?? io.env['PORTUNUS_ADVERTISED_ENDPOINT']);
        const store = openStore(dataDir, { logger: io.logger });
        try {
          const [{ certCoversHost, loadOrCreateServerIdentity }, clients] = await Promise.all([
            import('../tls/certificate.js'),
            import('../services/clients.js'),
          ]);
          const identity = await loadOrCreateServerIdentity({
            dataDir,
            ...(config.tlsCertPath ? { certPath: config.tlsCertPath } : {}),
            ...(config.tlsKeyPath ? { keyPath: config.tlsKeyPath } : {}),
            ...(seed ? { advertisedHost: seed.host } : {}),
            logger: io.logger,
          });
          const now = Date.now();
          // No Host header offline: override, then seed, then 127.0.0.1:<control port>.
          const issued = clients.enrollClient(
            {
              ...offline(io, store.db, now),
              control: {
                fingerprintSha256: identity.fingerprintSha256,
                coversHost: (host) => certCoversHost(identity, host),
                port: config.controlListen.port,
                ...(seed ? { seed: seed.text } : {}),
              },
            },
            input,
            { audit: localCliAudit(store.db, now) },
          );
          printIssued(io, issued);
        } finally {
          store.close();
        }
      },
    );
}

function registerRevoke(program: Command, deps: FleetCommandDeps): void {
  const { io } = deps;
  program
    .command('revoke')
    .description('revoke every client with this display name (offline; idempotent)')
    .argument('<client_name>')
    .action(async (name: string, _options: object, command: Command) => {
      const clients = await import('../services/clients.js');
      const store = openStore(deps.dataDir(command), { logger: io.logger });
      try {
        const now = Date.now();
        clients.revokeClientsNamed(offline(io, store.db, now), name, localCliAudit(store.db, now));
      } finally {
        store.close();
      }
    });
}

function registerRenameClient(program: Command, deps: FleetCommandDeps): void {
  const { io } = deps;
  program
    .command('rename-client')
    .description("change a client's display name (offline)")
    .requiredOption('--client-id <id>', 'the client id (ULID)')
    .requiredOption('--name <name>', 'the new display name')
    .action(async (options: { clientId: string; name: string }, command: Command) => {
      const clientName = checkClientName(options.name);
      const clients = await import('../services/clients.js');
      const store = openStore(deps.dataDir(command), { logger: io.logger });
      try {
        const now = Date.now();
        const after = clients.renameClientById(
          offline(io, store.db, now),
          options.clientId,
          clientName,
          localCliAudit(store.db, now),
        );
        io.writeOut(`client_id=${after.clientId}\nclient_name=${after.clientName}\n`);
      } finally {
        store.close();
      }
    });
}

function registerListClients(program: Command, { io }: FleetCommandDeps): void {
  program
    .command('list-clients')
    .description('list clients and their connection state (HTTP)')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (options: HttpOptions & { format: Format }) => {
      const clients = await api(io, options).listClients();
      if (options.format === 'json') {
        printJson(io, clients);
        return;
      }
      printTable(
        io,
        ['CLIENT_ID', 'NAME', 'STATE', 'REMOTE_ADDR', 'CONNECTED_AT'],
        clients.map((client) => [
          client.client_id,
          client.client_name,
          client.connected ? 'connected' : 'disconnected',
          text(client.remote_addr ?? client.client_address),
          text(client.connected_at),
        ]),
      );
    });
}

function registerPushRule(program: Command, { io }: FleetCommandDeps): void {
  const push = program
    .command('push-rule')
    .description('push a forwarding rule to a connected client and print its id (HTTP)')
    .argument('<client>', 'client display name (or client id)');
  addRuleBodyOptions(push).action(
    async (clientRef: string, listen: string, target: string | undefined, options: RuleFlags) => {
      const body = ruleBody(clientRef, listen, target, options);
      const pushed = await api(io, options).pushRule(body, ruleTimeoutMs(body));
      io.writeOut(`${pushed.rule_id}\n`);
    },
  );
}

function registerEditRule(program: Command, { io }: FleetCommandDeps): void {
  const edit = program
    .command('edit-rule')
    .description(
      "replace every field of a rule live, keeping its id: push-rule's arguments and flags (HTTP)",
    )
    .argument('<rule_id>')
    .argument('<client>', 'the client the rule runs on (display name or client id)');
  addRuleBodyOptions(edit).action(
    async (
      ruleId: string,
      clientRef: string,
      listen: string,
      target: string | undefined,
      options: RuleFlags,
    ) => {
      const body = ruleBody(clientRef, listen, target, options);
      const edited = await api(io, options).editRule(ruleId, body, ruleTimeoutMs(body));
      io.writeOut(`rule_id=${edited.rule_id} status=${edited.status}\n`);
    },
  );
}

function registerListRules(program: Command, { io }: FleetCommandDeps): void {
  program
    .command('list-rules')
    .description('list forwarding rules (HTTP)')
    .option('--client <name>', 'only the rules of clients with this display name')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (options: HttpOptions & { client?: string; format: Format }) => {
      const rules = await api(io, options).listRules(options.client);
      if (options.format === 'json') printJson(io, rules);
      else printTable(io, RULE_COLUMNS, rules.map(ruleRow));
    });
}

function registerRemoveRule(program: Command, { io }: FleetCommandDeps): void {
  program
    .command('remove-rule')
    .description('remove a forwarding rule; the client drains its listener (HTTP)')
    .argument('<rule_id>')
    .addOption(endpointOption())
    .action(async (ruleId: string, options: HttpOptions) => {
      await api(io, options).removeRule(ruleId);
    });
}

function registerRuleStats(program: Command, { io }: FleetCommandDeps): void {
  program
    .command('rule-stats')
    .description("show a rule's latest traffic counters (HTTP)")
    .argument('<rule_id>')
    .option('--per-port', 'also show one row per listen port of a range rule', false)
    .option('--per-target', 'also show one row per target: health and counters', false)
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(
      async (
        ruleId: string,
        options: HttpOptions & { perPort: boolean; perTarget: boolean; format: Format },
      ) => {
        const stats = await api(io, options).ruleStats(ruleId, options);
        if (options.format === 'json') {
          printJson(io, stats);
          return;
        }
        io.writeOut(`${statsLine(stats)}\n`);
        if (options.perPort) printTable(io, PORT_STATS_COLUMNS, portStatsRows(stats));
        if (options.perTarget) printTable(io, TARGET_STATS_COLUMNS, targetStatsRows(stats));
      },
    );
}

export function registerFleetCommands(program: Command, deps: FleetCommandDeps): void {
  for (const register of [
    registerEnrollClient,
    registerRevoke,
    registerRenameClient,
    registerListClients,
    registerPushRule,
    registerEditRule,
    registerListRules,
    registerRemoveRule,
    registerRuleStats,
  ]) {
    register(program, deps);
  }
}
