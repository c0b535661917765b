/**
 * CLI commands for the fleet (reference §1.2, §1.3): the offline `enroll-client`, `revoke` and
 * `rename-client`, which take the data dir's lock through openStore (so they exit 75 while serve
 * runs) and write an audit row as `_local_cli`; and the HTTP-backed `list-clients`, `push-rule`,
 * `edit-rule` (the same arguments and flags, one body builder), `list-rules`, `remove-rule` and
 * `rule-stats`, which call a running server and exit with the
 * catalogued code of the error it answers. `enroll-client` loads the TLS identity exactly as
 * serve does, so the URI's pin is the certificate serve presents. This module must not depend on
 * the control stream or on the operator app at load time: the TLS, proto and settings modules
 * (x509, grpc-js) are imported only by the command that needs them.
 */
import type { Database } from 'better-sqlite3';
import { Command, Option } from 'commander';

import {
  RATE_LIMIT_FIELDS,
  checkSourceList,
  normaliseSniPattern,
  rateLimitFlag,
  type RateLimitField,
  type SourceListName,
} from '@portunus/api';
import { PortunusError, formatRfc3339 } from '@portunus/core';
import {
  ENROLLMENT_TTL_DEFAULT_SECS,
  checkClientAddress,
  checkClientName,
  checkEnrollmentTtl,
  openStore,
} from '@portunus/store';

import type { TargetStatsSnapshot } from '../control/rule-stats.js';
import { advertisedSeed, loadServerConfig } from '../config.js';
import { DEFAULT_HTTP_ENDPOINT, operatorClient, type OperatorClient } from './operator-client.js';
import type { CliIo } from './program.js';

export interface FleetCommandDeps {
  io: CliIo;
  dataDir: (command: Command) => string;
}

export type Format = 'json' | 'text';
type Json = Record<string, unknown>;

interface GlobalOptions {
  advertisedEndpoint?: string;
}

export interface HttpOptions {
  httpEndpoint: string;
}

export function formatOption(): Option {
  return new Option('--format <format>', 'output format').choices(['text', 'json']).default('text');
}

export function endpointOption(): Option {
  return new Option(
    '--http-endpoint <host:port>',
    'operator HTTP endpoint of the running server',
  ).default(DEFAULT_HTTP_ENDPOINT);
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function printTable(io: CliIo, header: readonly string[], rows: readonly string[][]): void {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  for (const row of table) {
    io.writeOut(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
}

export function printJson(io: CliIo, value: unknown): void {
  io.writeOut(`${JSON.stringify(value, null, 2)}\n`);
}

export function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** `--ttl-secs`: digits only, then the store's 1..86400 rule (invalid_enrollment_ttl, exit 2). */
function parseTtl(value: string): number {
  return checkEnrollmentTtl(/^\d{1,6}$/.test(value) ? Number(value) : Number.NaN);
}

/** `18080` or `30000-30050` (reference §1.3). */
export function parseListen(value: string): { listenPort: number; listenPortEnd?: number } {
  const match = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(value);
  const start = Number(match?.[1]);
  const end = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || start < 1 || start > 65535 || (end !== undefined && (end < start || end > 65535))) {
    throw new PortunusError(
      'invalid_port_range',
      `listen ${JSON.stringify(value)} must be a port (18080) or a range (30000-30050) within 1..65535`,
    );
  }
  return end === undefined ? { listenPort: start } : { listenPort: start, listenPortEnd: end };
}

/**
 * The host of `host:port`; an IPv6 literal may be bracketed. A target without `:port` (a
 * newcomer's `push-rule edge-1 18080 10.0.0.5`) is told the port is missing, not that the host is.
 */
function splitHostPort(value: string, what: string): { host: string; port: string } {
  const colon = value.lastIndexOf(':');
  if (value !== '' && (colon === -1 || colon === value.length - 1 || /^\[[^\]]*\]$/.test(value))) {
    throw new PortunusError(
      'target_invalid_port',
      `${what} ${JSON.stringify(value)} has no port: give host:port, e.g. ${value.replace(/:$/, '')}:80`,
    );
  }
  const host = colon > 0 ? value.slice(0, colon).replace(/^\[(.*)\]$/, '$1') : '';
  if (host === '') {
    throw new PortunusError('invalid_target_host', `${what} ${JSON.stringify(value)} has no host`);
  }
  return { host, port: value.slice(colon + 1) };
}

function targetPort(text: string, value: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : 0;
  if (port < 1 || port > 65535) {
    throw new PortunusError(
      'target_invalid_port',
      `target ${JSON.stringify(value)}: the port must be 1..65535`,
    );
  }
  return port;
}

/** The legacy positional target: `host:port` or `host:lo-hi`. */
export function parseLegacyTarget(value: string): Json {
  const { host, port } = splitHostPort(value, 'target');
  const [lo = '', hi] = port.split('-', 2);
  const body: Json = { target_host: host, target_port: targetPort(lo, value) };
  if (hi !== undefined) body['target_port_end'] = targetPort(hi, value);
  return body;
}

/** A repeatable `--target host:port[@priority]`. */
export function parseTargetSpec(value: string): Json {
  const at = value.lastIndexOf('@');
  const address = at === -1 ? value : value.slice(0, at);
  const { host, port } = splitHostPort(address, '--target');
  const target: Json = { host, port: targetPort(port, value) };
  if (at !== -1) {
    const priorityText = value.slice(at + 1);
    const priority = /^\d{1,2}$/.test(priorityText) ? Number(priorityText) : Number.NaN;
    if (Number.isNaN(priority)) {
      throw new PortunusError(
        'usage_error',
        `--target ${JSON.stringify(value)}: the priority after @ must be 0..99`,
      );
    }
    target['priority'] = priority;
  }
  return target;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `pending`, `active`, `removed` or `failed:<reason>` (reference §1.2 list-rules). */
function stateText(state: unknown): string {
  const value = state as { kind?: unknown; reason?: unknown } | undefined;
  const kind = typeof value?.kind === 'string' ? value.kind : text(state);
  return kind === 'failed' ? `failed:${text(value?.reason)}` : kind;
}

function portRange(start: unknown, end: unknown): string {
  return end === undefined || end === null || end === start
    ? text(start)
    : `${text(start)}-${text(end)}`;
}

function ruleTargetText(rule: Json): string {
  const targets = Array.isArray(rule['targets']) ? (rule['targets'] as Json[]) : [];
  if (targets.length > 1) {
    return targets.map((target) => `${text(target['host'])}:${text(target['port'])}`).join(',');
  }
  return `${text(rule['target_host'])}:${portRange(rule['target_port'], rule['target_port_end'])}`;
}

function timeText(value: unknown): string {
  return typeof value === 'number' ? formatRfc3339(value) : text(value);
}

/**
 * The seven cap flags (reference §1.3), from @portunus/api's field list: commander names each
 * option after the flag, `--bandwidth-in-bps` → `bandwidthInBps`, which is the field's store name.
 */
export type CapFlags = Partial<Record<RateLimitField, string>>;

export function addCapOptions(command: Command, what: string): Command {
  for (const spec of RATE_LIMIT_FIELDS)
    command.option(`${rateLimitFlag(spec)} <n>`, `${what}${spec.name}`);
  return command;
}

/** The caps the flags set, in the API's spelling; only whole-number syntax is checked here. */
export function capsFromFlags(options: CapFlags): Json {
  const caps: Json = {};
  for (const spec of RATE_LIMIT_FIELDS) {
    const value = options[spec.field];
    if (value !== undefined) caps[spec.name] = positiveInteger(value, rateLimitFlag(spec));
  }
  return caps;
}

export type RuleFlags = HttpOptions & {
  protocol: string;
  ackTimeout: string;
  target: string[];
  targetsJson?: string;
  preferIpv6: boolean;
  healthCheckIntervalSecs?: string;
  sni?: string;
  allowSource: string[];
  denySource: string[];
} & CapFlags;

/** `--allow-source` / `--deny-source`, checked by the server's own check before anything is sent. */
function sourceFlags(name: SourceListName, values: readonly string[]): string[] {
  const checked = checkSourceList(name, values);
  if ('problem' in checked) {
    const flag = name === 'allowed_sources' ? '--allow-source' : '--deny-source';
    throw new PortunusError(checked.problem.code, `${flag}: ${checked.problem.message}`);
  }
  return checked.list;
}

/** The arguments and flags push-rule and edit-rule share (reference §1.3). */
function addRuleBodyOptions(command: Command): Command {
  command
    .argument('<listen>', 'listen port (18080) or range (30000-30050)')
    .argument('[target]', 'single target host:port or host:lo-hi')
    .addOption(
      new Option('--protocol <protocol>', 'tcp or udp').choices(['tcp', 'udp']).default('tcp'),
    )
    .option('--ack-timeout <secs>', 'seconds to wait for the client to activate the rule', '2')
    .option(
      '--target <host:port[@priority]>',
      'a target of a multi-target rule (repeatable)',
      collect,
      [],
    )
    .option(
      '--targets-json <json>',
      'targets as a JSON array of {host, port, priority?, proxy_protocol?}',
    )
    .option('--prefer-ipv6', 'prefer IPv6 when a target name resolves to both', false)
    .option('--health-check-interval-secs <secs>', 'active TCP probe interval, 1..3600')
    .option(
      '--sni <pattern>',
      'TLS SNI pattern (name or *.name) routing this rule on a shared tcp port',
    )
    .option(
      '--allow-source <cidr>',
      'admit only sources in this IPv4/IPv6 CIDR (repeatable, at most 64)',
      collect,
      [],
    )
    .option(
      '--deny-source <cidr>',
      'refuse sources in this IPv4/IPv6 CIDR (repeatable, at most 64)',
      collect,
      [],
    );
  addCapOptions(command, 'rate_limit.');
  return command.addOption(endpointOption());
}

function positiveInteger(value: string, flag: string): number {
  const number = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(number)) {
    throw new PortunusError(
      'usage_error',
      `${flag} must be a whole number, got ${JSON.stringify(value)}`,
    );
  }
  return number;
}

function targetsJson(value: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new PortunusError('usage_error', '--targets-json is not valid JSON');
  }
  if (!Array.isArray(parsed)) {
    throw new PortunusError('usage_error', '--targets-json must be a JSON array of targets');
  }
  return parsed;
}

/** The `POST /v1/rules` (and `PUT /v1/rules/{id}`) body a command line asks for. */
export function ruleBody(
  clientRef: string,
  listen: string,
  target: string | undefined,
  options: RuleFlags,
): Json {
  const shapes = [
    target !== undefined,
    options.target.length > 0,
    options.targetsJson !== undefined,
  ].filter(Boolean).length;
  if (shapes > 1) {
    throw new PortunusError(
      'rule_shape_conflict',
      'give one of the positional target, --target or --targets-json',
    );
  }
  if (shapes === 0) {
    throw new PortunusError('rule_shape_missing', 'give a target: host:port or --target');
  }
  const ackTimeout = /^\d{1,2}$/.test(options.ackTimeout) ? Number(options.ackTimeout) : Number.NaN;
  if (!(ackTimeout >= 1 && ackTimeout <= 60)) {
    throw new PortunusError('usage_error', '--ack-timeout must be 1..60 seconds');
  }
  const { listenPort, listenPortEnd } = parseListen(listen);
  const rateLimit = capsFromFlags(options);
  const allowed = sourceFlags('allowed_sources', options.allowSource);
  const denied = sourceFlags('denied_sources', options.denySource);
  const interval = options.healthCheckIntervalSecs;
  const sni =
    options.sni === undefined ? undefined : sniFlag(options.sni, options.protocol, listenPortEnd);
  return {
    client: clientRef,
    listen_port: listenPort,
    ...(listenPortEnd !== undefined ? { listen_port_end: listenPortEnd } : {}),
    ...(target !== undefined
      ? parseLegacyTarget(target)
      : options.targetsJson !== undefined
        ? { targets: targetsJson(options.targetsJson) }
        : { targets: options.target.map(parseTargetSpec) }),
    protocol: options.protocol,
    ack_timeout_secs: ackTimeout,
    ...(options.preferIpv6 ? { prefer_ipv6: true } : {}),
    ...(interval !== undefined
      ? { health_check_interval_secs: positiveInteger(interval, '--health-check-interval-secs') }
      : {}),
    ...(sni !== undefined ? { sni_pattern: sni } : {}),
    ...(Object.keys(rateLimit).length > 0 ? { rate_limit: rateLimit } : {}),
    ...(allowed.length > 0 ? { allowed_sources: allowed } : {}),
    ...(denied.length > 0 ? { denied_sources: denied } : {}),
  };
}

/** `--sni` is checked here first (reference §1.3): tcp single-port only, the api grammar. */
function sniFlag(raw: string, protocol: string, listenPortEnd: number | undefined): string {
  if (protocol !== 'tcp' || listenPortEnd !== undefined) {
    throw new PortunusError(
      'validation.sni_on_unsupported_rule',
      '--sni needs a tcp rule on a single listen port',
    );
  }
  const normal = normaliseSniPattern(raw);
  if (typeof normal !== 'string') {
    throw new PortunusError(
      'validation.sni_pattern_malformed',
      `--sni ${JSON.stringify(raw)}: ${normal.error}`,
    );
  }
  return normal;
}

/** The SNI/PROXY column: the pattern (or -), then the targets' PROXY versions (or -). */
function sniProxyText(rule: Json): string {
  const targets = Array.isArray(rule['targets']) ? (rule['targets'] as Json[]) : [];
  const versions = [
    ...new Set(
      targets
        .map((target) => target['proxy_protocol'])
        .filter((value): value is string => typeof value === 'string'),
    ),
  ];
  const sni = typeof rule['sni_pattern'] === 'string' ? rule['sni_pattern'] : '-';
  return `${sni}/${versions.length > 0 ? versions.join(',') : '-'}`;
}

/** A rule's caps for the CAPS column: `owner-cap get` labels, `-` when uncapped. */
export function capsText(caps: unknown): string {
  if (caps === null || typeof caps !== 'object') return '-';
  const values = caps as Record<string, unknown>;
  const parts = RATE_LIMIT_FIELDS.flatMap((spec) => {
    const value = values[spec.name];
    return value === undefined || value === null ? [] : [`${spec.label}=${text(value)}`];
  });
  return parts.length > 0 ? parts.join(',') : '-';
}

/** Both source lists for the SOURCES column; long lists show their first entries and a count. */
function sourcesText(rule: Json): string {
  const shown = (label: string, list: unknown): string[] => {
    const entries = Array.isArray(list) ? list.map((entry) => text(entry)) : [];
    if (entries.length === 0) return [];
    const head = entries.slice(0, 2).join(',');
    return [`${label}:${head}${entries.length > 2 ? `(+${entries.length - 2})` : ''}`];
  };
  const parts = [
    ...shown('allow', rule['allowed_sources']),
    ...shown('deny', rule['denied_sources']),
  ];
  return parts.length > 0 ? parts.join(' ') : '-';
}

/** The server answers within the ack budget; 30 s is the reference's rule-command floor. */
function ruleTimeoutMs(body: Json): number {
  return Math.max(30_000, (Number(body['ack_timeout_secs']) + 10) * 1000);
}

export function registerFleetCommands(program: Command, deps: FleetCommandDeps): void {
  const { io } = deps;
  // The service deps of an offline command: its store, its logger, one clock reading.
  const offline = (db: Database, now: number) => ({ db, logger: io.logger, now: () => now });
  const client = (options: HttpOptions): OperatorClient =>
    operatorClient(options.httpEndpoint, io.env);

  program
    .command('enroll-client')
    .description('issue a one-time enrollment URI for a new client (offline; takes the lock)')
    .argument('<name>', 'display name of the client')
    .option('--address <host>', 'public entry address of the client (bare IP or host, no port)')
    .option(
      '--ttl-secs <n>',
      'lifetime of the code in seconds, 1..86400',
      String(ENROLLMENT_TTL_DEFAULT_SECS),
    )
    .action(
      async (name: string, options: { address?: string; ttlSecs: string }, command: Command) => {
        // Every input is checked before the lock is taken or anything is written.
        const input = {
          name: checkClientName(name),
          address: options.address === undefined ? null : checkClientAddress(options.address),
          ttlSecs: parseTtl(options.ttlSecs),
        };
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
              ...offline(store.db, now),
              control: {
                fingerprintSha256: identity.fingerprintSha256,
                coversHost: (host) => certCoversHost(identity, host),
                port: config.controlListen.port,
                ...(seed ? { seed: seed.text } : {}),
              },
            },
            input,
            { audit: clients.localCliAudit(store.db, now) },
          );
          // The reference's three lines first, so scripts reading them by position keep working.
          io.writeOut(
            `client_name=${issued.client_name}\n` +
              `expires_at=${issued.expires_at}\n` +
              `${issued.command}\n` +
              `client_id=${issued.client_id}\n`,
          );
        } finally {
          store.close();
        }
      },
    );

  program
    .command('revoke')
    .description('revoke every client with this display name (offline; idempotent)')
    .argument('<client_name>')
    .action(async (name: string, _options: object, command: Command) => {
      const clients = await import('../services/clients.js');
      const store = openStore(deps.dataDir(command), { logger: io.logger });
      try {
        const now = Date.now();
        clients.revokeClientsNamed(
          offline(store.db, now),
          name,
          clients.localCliAudit(store.db, now),
        );
      } finally {
        store.close();
      }
    });

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
          offline(store.db, now),
          options.clientId,
          clientName,
          clients.localCliAudit(store.db, now),
        );
        io.writeOut(`client_id=${after.clientId}\nclient_name=${after.clientName}\n`);
      } finally {
        store.close();
      }
    });

  program
    .command('list-clients')
    .description('list clients and their connection state (HTTP)')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (options: HttpOptions & { format: Format }) => {
      const clients = await client(options).request<Json[]>('GET', '/v1/clients');
      if (options.format === 'json') {
        printJson(io, clients);
        return;
      }
      printTable(
        io,
        ['CLIENT_ID', 'NAME', 'STATE', 'REMOTE_ADDR', 'CONNECTED_AT'],
        clients.map((entry) => [
          text(entry['client_id']),
          text(entry['client_name']),
          entry['connected'] === true ? 'connected' : 'disconnected',
          text(entry['remote_addr'] ?? entry['client_address']),
          text(entry['connected_at']),
        ]),
      );
    });

  const push = program
    .command('push-rule')
    .description('push a forwarding rule to a connected client and print its id (HTTP)')
    .argument('<client>', 'client display name (or client id)');
  addRuleBodyOptions(push).action(
    async (clientRef: string, listen: string, target: string | undefined, options: RuleFlags) => {
      const body = ruleBody(clientRef, listen, target, options);
      const pushed = await client(options).request<Json>(
        'POST',
        '/v1/rules',
        body,
        ruleTimeoutMs(body),
      );
      io.writeOut(`${text(pushed['rule_id'] ?? pushed['id'])}\n`);
    },
  );

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
      const edited = await client(options).request<Json>(
        'PUT',
        `/v1/rules/${encodeURIComponent(ruleId)}`,
        body,
        ruleTimeoutMs(body),
      );
      io.writeOut(`rule_id=${text(edited['rule_id'])} status=${text(edited['status'])}\n`);
    },
  );

  program
    .command('list-rules')
    .description('list forwarding rules (HTTP)')
    .option('--client <name>', 'only the rules of clients with this display name')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (options: HttpOptions & { client?: string; format: Format }) => {
      const query =
        options.client === undefined ? '' : `?client=${encodeURIComponent(options.client)}`;
      const rules = await client(options).request<Json[]>('GET', `/v1/rules${query}`);
      if (options.format === 'json') {
        printJson(io, rules);
        return;
      }
      printTable(
        io,
        ['ID', 'CLIENT', 'PORT', 'TARGET', 'SNI/PROXY', 'CAPS', 'SOURCES', 'STATE'],
        rules.map((rule) => [
          text(rule['id']),
          text(rule['client_name']),
          portRange(rule['listen_port'], rule['listen_port_end']),
          ruleTargetText(rule),
          sniProxyText(rule),
          capsText(rule['rate_limit']),
          sourcesText(rule),
          stateText(rule['state']),
        ]),
      );
    });

  program
    .command('remove-rule')
    .description('remove a forwarding rule; the client drains its listener (HTTP)')
    .argument('<rule_id>')
    .addOption(endpointOption())
    .action(async (ruleId: string, options: HttpOptions) => {
      await client(options).request('DELETE', `/v1/rules/${encodeURIComponent(ruleId)}`);
    });

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
        const params = [
          ...(options.perPort ? ['per_port=true'] : []),
          ...(options.perTarget ? ['per_target=true'] : []),
        ];
        const query = params.length > 0 ? `?${params.join('&')}` : '';
        const stats = await client(options).request<Json>(
          'GET',
          `/v1/rules/${encodeURIComponent(ruleId)}/stats${query}`,
        );
        if (options.format === 'json') {
          printJson(io, stats);
          return;
        }
        const fields: [string, unknown][] = [
          ['rule_id', stats['rule_id']],
          ['client', stats['client_name']],
          ['protocol', stats['protocol']],
          ['bytes_in', stats['bytes_in']],
          ['bytes_out', stats['bytes_out']],
          ['active', stats['active_connections']],
          ['dns_failures', stats['dns_failures']],
          ['target_failovers_total', stats['target_failovers_total']],
        ];
        if (stats['protocol'] === 'udp') {
          for (const name of [
            'active_flows',
            'datagrams_in',
            'datagrams_out',
            'flows_dropped_overflow',
          ]) {
            fields.push([name, stats[name]]);
          }
        }
        fields.push(['updated_at', timeText(stats['updated_at'])]);
        io.writeOut(`${fields.map(([name, value]) => `${name}=${text(value)}`).join(' ')}\n`);
        if (options.perPort) {
          const ports = Array.isArray(stats['per_port']) ? (stats['per_port'] as Json[]) : [];
          printTable(
            io,
            ['LISTEN_PORT', 'BYTES_IN', 'BYTES_OUT', 'ACTIVE', 'DATAGRAMS_IN', 'DATAGRAMS_OUT'],
            ports.map((port) => [
              text(port['listen_port']),
              text(port['bytes_in']),
              text(port['bytes_out']),
              text(port['active_connections']),
              text(port['datagrams_in']),
              text(port['datagrams_out']),
            ]),
          );
        }
        if (options.perTarget) {
          const targets = (stats['per_target'] ?? []) as TargetStatsSnapshot[];
          printTable(
            io,
            [
              'INDEX',
              'TARGET',
              'PRIORITY',
              'HEALTH',
              'FAILURES',
              'BYTES_IN',
              'BYTES_OUT',
              'CONNECTIONS',
            ],
            targets.map((target) => [
              text(target.index),
              text(`${target.host}:${target.port}`),
              text(target.priority),
              target.health === 0 ? 'healthy' : 'failed',
              text(target.consecutive_failures),
              text(target.bytes_in),
              text(target.bytes_out),
              text(target.connections_accepted),
            ]),
          );
        }
      },
    );
}
