/**
 * The command line of a rule (reference §1.3), shared by `push-rule` and `edit-rule`: the
 * positional listen port or range and legacy target, repeatable `--target`, `--targets-json`,
 * PROXY/health/SNI flags, the seven cap flags (from @portunus/api's field list, also used by
 * `owner-cap set`) and the source lists, turned into the RulePushRequest the server checks
 * again. Checks here are only those a command line can answer better than the server (a missing
 * port, a malformed flag), with the server's catalogued codes. Parsing only: no HTTP, no store.
 */
import { Option, type Command } from 'commander';

import {
  RATE_LIMIT_FIELDS,
  checkSourceList,
  normaliseSniPattern,
  rateLimitFlag,
  type RateLimit,
  type RateLimitField,
  type RulePushRequest,
  type RuleTargetInput,
  type SourceListName,
} from '@portunus/api';
import { PortunusError } from '@portunus/core';

import { endpointOption, type HttpOptions } from './output.js';

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
export function parseLegacyTarget(
  value: string,
): Pick<RulePushRequest, 'target_host' | 'target_port' | 'target_port_end'> {
  const { host, port } = splitHostPort(value, 'target');
  const [lo = '', hi] = port.split('-', 2);
  const target = { target_host: host, target_port: targetPort(lo, value) };
  return hi === undefined ? target : { ...target, target_port_end: targetPort(hi, value) };
}

/** A repeatable `--target host:port[@priority]`. */
export function parseTargetSpec(value: string): RuleTargetInput {
  const at = value.lastIndexOf('@');
  const address = at === -1 ? value : value.slice(0, at);
  const { host, port } = splitHostPort(address, '--target');
  const target: RuleTargetInput = { host, port: targetPort(port, value) };
  if (at !== -1) {
    const priorityText = value.slice(at + 1);
    const priority = /^\d{1,2}$/.test(priorityText) ? Number(priorityText) : Number.NaN;
    if (Number.isNaN(priority)) {
      throw new PortunusError(
        'usage_error',
        `--target ${JSON.stringify(value)}: the priority after @ must be 0..99`,
      );
    }
    target.priority = priority;
  }
  return target;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
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
export function capsFromFlags(options: CapFlags): RateLimit {
  const caps: RateLimit = {};
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
export function addRuleBodyOptions(command: Command): Command {
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

/** The server checks each target; here only that it is a JSON array. */
function targetsJson(value: string): RuleTargetInput[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new PortunusError('usage_error', '--targets-json is not valid JSON');
  }
  if (!Array.isArray(parsed)) {
    throw new PortunusError('usage_error', '--targets-json must be a JSON array of targets');
  }
  return parsed as RuleTargetInput[];
}

/** The `POST /v1/rules` (and `PUT /v1/rules/{id}`) body a command line asks for. */
export function ruleBody(
  clientRef: string,
  listen: string,
  target: string | undefined,
  options: RuleFlags,
): RulePushRequest {
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
    protocol: options.protocol === 'udp' ? 'udp' : 'tcp',
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

/** The server answers within the ack budget; 30 s is the reference's rule-command floor. */
export function ruleTimeoutMs(body: RulePushRequest): number {
  return Math.max(30_000, ((body.ack_timeout_secs ?? 2) + 10) * 1000);
}
