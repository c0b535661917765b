/**
 * The standalone's configuration (reference §12): `portunus.toml` parsed with smol-toml and
 * turned into frozen RuleSpecs for the forwarder, or into every problem at once, each named by
 * its key path (`rule[2].targets[0].port`). Unknown keys are refused. Host, port, PROXY and range
 * checks are the forwarder's own (`rule-checks.ts`, `expandRule`) — the same code the server's
 * rule validation runs — so a rule the standalone accepts is one the server would accept. Source
 * lists (`allowed_sources`, `denied_sources`) go through @portunus/api's normaliseCidr, the
 * parser the server and the data plane use; rate limits stay client/server-mode only (reference
 * §5.8). Pure: the file is read by the caller; depends on core, api, forwarder, smol-toml and
 * BLAKE3 only.
 */
import { blake3 } from '@noble/hashes/blake3.js';
import { parse as parseToml } from 'smol-toml';

import { MAX_SOURCE_CIDRS, normaliseCidr } from '@portunus/api';
import { PortunusError, type LogLevel } from '@portunus/core';
import {
  MAX_TARGETS,
  expandRule,
  isRuleActivationError,
  isValidPort,
  parseProxyProtocol,
  proxyProtocolFitsProtocol,
  targetHostProblem,
  targetKey,
  type Protocol,
  type RuleSpec,
  type TargetSpec,
} from '@portunus/forwarder';

export type LogFormat = 'json' | 'pretty';

export interface GlobalConfig {
  label: string | null;
  logLevel: LogLevel;
  logFormat: LogFormat;
  shutdownDrainSecs: number;
}

export interface StatsConfig {
  enabled: boolean;
  socketPath: string;
  refreshMs: number;
}

/** One `[[rule]]`: its name, the spec the forwarder runs, and its UDP tunables. */
export interface StandaloneRule {
  name: string;
  spec: RuleSpec;
  udpMaxFlows: number;
  udpFlowIdleSecs: number;
}

export interface StandaloneConfig {
  global: GlobalConfig;
  stats: StatsConfig;
  rules: readonly StandaloneRule[];
}

export interface ConfigProblem {
  /** Key path in the file, e.g. `rule[1].listen_ports`; `(file)` for a syntax error. */
  path: string;
  message: string;
}

export const DEFAULT_SOCKET_PATH = '/run/portunus/standalone.sock';
export const DEFAULTS = {
  logLevel: 'warn',
  logFormat: 'json',
  shutdownDrainSecs: 30,
  protocol: 'tcp',
  udpMaxFlows: 1024,
  udpFlowIdleSecs: 60,
  preferIpv6: false,
  statsEnabled: true,
  refreshMs: 1000,
} as const;
export const REFRESH_MS_MIN = 250;
export const REFRESH_MS_MAX = 5000;

const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const TOP_KEYS = ['global', 'defaults', 'rule', 'stats'];
const GLOBAL_KEYS = ['label', 'log_level', 'log_format', 'shutdown_drain_secs'];
const DEFAULT_KEYS = ['protocol', 'udp_max_flows', 'udp_flow_idle_secs', 'prefer_ipv6'];
const RULE_KEYS = [
  'name',
  'protocol',
  'listen_port',
  'listen_ports',
  'target',
  'targets',
  'prefer_ipv6',
  'udp_max_flows',
  'udp_flow_idle_secs',
  'allowed_sources',
  'denied_sources',
];
const TARGET_KEYS = ['host', 'port', 'priority', 'proxy_protocol'];
/** Rule keys of client/server mode the standalone refuses with the reason (reference §12). */
const CLIENT_SERVER_ONLY: Readonly<Record<string, string>> = {
  sni_pattern:
    'SNI routing is client/server mode only (portunus-client); the standalone does not route by SNI',
  sni: 'SNI routing is client/server mode only (portunus-client); the standalone does not route by SNI',
};
const STATS_KEYS = ['enabled', 'socket_path', 'refresh_ms'];

/**
 * The rule id the forwarder and the stats socket use: the first 64 bits of BLAKE3(name), in
 * decimal (reference §12), so an id survives restarts and reloads as long as the name does.
 */
export function ruleIdForName(name: string): string {
  const digest = blake3(new TextEncoder().encode(name));
  let id = 0n;
  for (const byte of digest.subarray(0, 8)) id = (id << 8n) | BigInt(byte);
  return id.toString();
}

type Table = Record<string, unknown>;

const isTable = (value: unknown): value is Table =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);

/** Parses and validates `text`; throws `standalone_config_invalid` listing every problem. */
export function parseConfig(text: string, source: string): StandaloneConfig {
  const problems: ConfigProblem[] = [];
  let doc: Table;
  try {
    doc = parseToml(text);
  } catch (error) {
    problems.push({ path: '(file)', message: (error as Error).message.split('\n')[0] ?? 'bad' });
    throw invalid(source, problems);
  }
  const config = validate(doc, problems);
  if (problems.length > 0) throw invalid(source, problems);
  return config;
}

function invalid(source: string, problems: ConfigProblem[]): PortunusError {
  const lines = problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
  return new PortunusError(
    'standalone_config_invalid',
    `${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${lines}`,
    { path: source, problems },
  );
}

/** Collects problems with key paths; each reader returns a usable fallback so checks go on. */
class Reader {
  constructor(readonly problems: ConfigProblem[]) {}

  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  table(
    value: unknown,
    path: string,
    keys: readonly string[],
    refused: Readonly<Record<string, string>> = {},
  ): Table {
    if (value === undefined) return {};
    if (!isTable(value)) {
      this.add(path, 'must be a table');
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) this.add(join(path, key), refused[key] ?? 'unknown key');
    }
    return value;
  }

  string(table: Table, key: string, path: string): string | undefined {
    const value = table[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') {
      this.add(join(path, key), 'must be a string');
      return undefined;
    }
    return value;
  }

  boolean(table: Table, key: string, path: string, fallback: boolean): boolean {
    const value = table[key];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.add(join(path, key), 'must be true or false');
      return fallback;
    }
    return value;
  }

  integer(table: Table, key: string, path: string, min: number, max: number): number | undefined {
    const value = table[key];
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      this.add(join(path, key), `must be an integer in ${min}..${max}`);
      return undefined;
    }
    return value;
  }

  /** A list of CIDRs in their normal spelling; [] when absent. */
  cidrs(table: Table, key: string, path: string): string[] {
    const value = table[key];
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.add(join(path, key), 'must be a list of CIDR strings');
      return [];
    }
    if (value.length > MAX_SOURCE_CIDRS) {
      this.add(join(path, key), `holds at most ${MAX_SOURCE_CIDRS} entries`);
      return [];
    }
    const out: string[] = [];
    value.forEach((item: unknown, index) => {
      const normal = typeof item === 'string' ? normaliseCidr(item) : { error: 'not a string' };
      if (typeof normal === 'string') out.push(normal);
      else this.add(`${join(path, key)}[${index}]`, normal.error);
    });
    return out;
  }

  oneOf<T extends string>(
    table: Table,
    key: string,
    path: string,
    allowed: readonly T[],
  ): T | undefined {
    const raw = this.string(table, key, path);
    if (raw === undefined) return undefined;
    const value = raw.toLowerCase() as T;
    if (!allowed.includes(value)) {
      this.add(join(path, key), `must be one of ${allowed.join(', ')}; got ${JSON.stringify(raw)}`);
      return undefined;
    }
    return value;
  }
}

const join = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);

interface RuleDefaults {
  protocol: Protocol;
  udpMaxFlows: number;
  udpFlowIdleSecs: number;
  preferIpv6: boolean;
}

function validate(doc: Table, problems: ConfigProblem[]): StandaloneConfig {
  const r = new Reader(problems);
  r.table(doc, '', TOP_KEYS);
  const g = r.table(doc['global'], 'global', GLOBAL_KEYS);
  const label = r.string(g, 'label', 'global') ?? null;
  const global: GlobalConfig = {
    label,
    logLevel: r.oneOf(g, 'log_level', 'global', LOG_LEVELS) ?? DEFAULTS.logLevel,
    logFormat: r.oneOf(g, 'log_format', 'global', ['json', 'pretty']) ?? DEFAULTS.logFormat,
    shutdownDrainSecs:
      r.integer(g, 'shutdown_drain_secs', 'global', 0, 3600) ?? DEFAULTS.shutdownDrainSecs,
  };
  const d = r.table(doc['defaults'], 'defaults', DEFAULT_KEYS);
  const defaults: RuleDefaults = {
    protocol: r.oneOf(d, 'protocol', 'defaults', ['tcp', 'udp']) ?? DEFAULTS.protocol,
    udpMaxFlows: r.integer(d, 'udp_max_flows', 'defaults', 1, 1_000_000) ?? DEFAULTS.udpMaxFlows,
    udpFlowIdleSecs:
      r.integer(d, 'udp_flow_idle_secs', 'defaults', 1, 86_400) ?? DEFAULTS.udpFlowIdleSecs,
    preferIpv6: r.boolean(d, 'prefer_ipv6', 'defaults', DEFAULTS.preferIpv6),
  };
  const s = r.table(doc['stats'], 'stats', STATS_KEYS);
  const socketPath = r.string(s, 'socket_path', 'stats');
  if (socketPath !== undefined && socketPath.trim() === '') r.add('stats.socket_path', 'is empty');
  const stats: StatsConfig = {
    enabled: r.boolean(s, 'enabled', 'stats', DEFAULTS.statsEnabled),
    socketPath: socketPath || DEFAULT_SOCKET_PATH,
    refreshMs:
      r.integer(s, 'refresh_ms', 'stats', REFRESH_MS_MIN, REFRESH_MS_MAX) ?? DEFAULTS.refreshMs,
  };

  const rawRules = doc['rule'] ?? [];
  const rules: StandaloneRule[] = [];
  if (!Array.isArray(rawRules)) {
    r.add('rule', 'must be an array of tables ([[rule]])');
  } else {
    const names = new Map<string, number>();
    const ids = new Map<string, string>();
    const indexed: { rule: StandaloneRule; index: number }[] = [];
    rawRules.forEach((raw: unknown, index) => {
      // Names are checked for uniqueness even when the rule has other problems.
      const rawName = isTable(raw) ? raw['name'] : undefined;
      if (typeof rawName === 'string') {
        const earlier = names.get(rawName);
        if (earlier !== undefined) {
          r.add(`rule[${index}].name`, `${JSON.stringify(rawName)} is already rule[${earlier}]`);
          return;
        }
        names.set(rawName, index);
      }
      const rule = readRule(r, raw, `rule[${index}]`, defaults);
      if (!rule) return;
      const clash = ids.get(rule.spec.ruleId);
      if (clash !== undefined) {
        r.add(`rule[${index}].name`, `its id collides with rule ${JSON.stringify(clash)}`);
        return;
      }
      ids.set(rule.spec.ruleId, rule.name);
      rules.push(rule);
      indexed.push({ rule, index });
    });
    checkPortOverlap(r, indexed);
  }
  return deepFreeze({ global, stats, rules });
}

function readRule(
  r: Reader,
  raw: unknown,
  path: string,
  defaults: RuleDefaults,
): StandaloneRule | undefined {
  if (!isTable(raw)) {
    r.add(path, 'must be a table');
    return undefined;
  }
  const before = countProblems(r);
  const t = r.table(raw, path, RULE_KEYS, CLIENT_SERVER_ONLY);
  const name = r.string(t, 'name', path);
  if (name === undefined && t['name'] === undefined) r.add(join(path, 'name'), 'is required');
  if (name !== undefined && name.trim() === '') r.add(join(path, 'name'), 'is empty');
  const protocol = r.oneOf(t, 'protocol', path, ['tcp', 'udp']) ?? defaults.protocol;

  // Listen: exactly one of listen_port / listen_ports.
  let listenPort = 0;
  let listenPortEnd: number | null = null;
  const hasPort = t['listen_port'] !== undefined;
  const hasPorts = t['listen_ports'] !== undefined;
  if (hasPort === hasPorts) {
    r.add(path, 'give exactly one of listen_port or listen_ports');
  } else if (hasPort) {
    // 0 asks the kernel for a free port (logged in rule.activated): useful for tests and demos.
    const port = r.integer(t, 'listen_port', path, 0, 65535);
    if (port !== undefined) listenPort = port;
  } else {
    const range = r.string(t, 'listen_ports', path);
    const parsed = range === undefined ? undefined : parseRange(range);
    if (range !== undefined && !parsed) {
      r.add(join(path, 'listen_ports'), `must be "lo-hi" with ports 1..65535, low ≤ high`);
    } else if (parsed) {
      listenPort = parsed.low;
      listenPortEnd = parsed.high === parsed.low ? null : parsed.high;
    }
  }

  // Targets: exactly one of target / targets.
  const targets: TargetSpec[] = [];
  const hasTarget = t['target'] !== undefined;
  const hasTargets = t['targets'] !== undefined;
  if (hasTarget === hasTargets) {
    r.add(path, 'give exactly one of target or targets');
  } else if (hasTarget) {
    const text = r.string(t, 'target', path);
    if (text !== undefined) {
      const target = parseTargetString(text);
      if (typeof target === 'string') r.add(join(path, 'target'), target);
      else targets.push(target);
    }
  } else {
    readTargets(r, t['targets'], join(path, 'targets'), protocol, targets);
  }
  const preferIpv6 = r.boolean(t, 'prefer_ipv6', path, defaults.preferIpv6);
  const udpMaxFlows = r.integer(t, 'udp_max_flows', path, 1, 1_000_000) ?? defaults.udpMaxFlows;
  const udpFlowIdleSecs =
    r.integer(t, 'udp_flow_idle_secs', path, 1, 86_400) ?? defaults.udpFlowIdleSecs;
  const allowedSources = r.cidrs(t, 'allowed_sources', path);
  const deniedSources = r.cidrs(t, 'denied_sources', path);
  if (countProblems(r) > before || name === undefined) return undefined;

  const spec: RuleSpec = {
    ruleId: ruleIdForName(name),
    protocol,
    listenPort,
    listenPortEnd,
    targets,
    preferIpv6,
    healthCheckIntervalSecs: null,
    ownerId: null,
    sniPattern: null,
    rateLimit: null,
    allowedSources,
    deniedSources,
  };
  const multiRange = targets.length > 1 && listenPortEnd !== null;
  if (multiRange) {
    r.add(path, 'a listen range takes exactly one target (multi-target + range is refused)');
    return undefined;
  }
  if (listenPort === 0 && (listenPortEnd !== null || targets[0]?.portEnd !== null)) {
    r.add(join(path, 'listen_port'), '0 (any free port) is only valid for a single port');
    return undefined;
  }
  // The forwarder's own range check: widths must match, low ≤ high, at most 1024 ports.
  try {
    expandRule(spec);
  } catch (error) {
    if (!isRuleActivationError(error)) throw error;
    r.add(path, error.message);
    return undefined;
  }
  return { name, spec, udpMaxFlows, udpFlowIdleSecs };
}

function countProblems(r: Reader): number {
  return r.problems.length;
}

function readTargets(
  r: Reader,
  raw: unknown,
  path: string,
  protocol: Protocol,
  out: TargetSpec[],
): void {
  if (!Array.isArray(raw)) {
    r.add(path, 'must be an array of {host, port, priority, proxy_protocol}');
    return;
  }
  if (raw.length === 0) r.add(path, 'needs at least one target');
  if (raw.length > MAX_TARGETS) r.add(path, `at most ${MAX_TARGETS} targets, got ${raw.length}`);
  const seen = new Map<string, number>();
  raw.forEach((item: unknown, index) => {
    const at = `${path}[${index}]`;
    if (!isTable(item)) {
      r.add(at, 'must be an inline table {host, port, …}');
      return;
    }
    const t = r.table(item, at, TARGET_KEYS);
    const host = r.string(t, 'host', at);
    if (t['host'] === undefined) r.add(join(at, 'host'), 'is required');
    const hostProblem = host === undefined ? undefined : targetHostProblem(host);
    if (hostProblem) r.add(join(at, 'host'), `${hostProblem.code}: ${hostProblem.message}`);
    const port = t['port'];
    if (!isValidPort(port)) r.add(join(at, 'port'), 'must be an integer in 1..65535');
    const priority = r.integer(t, 'priority', at, 0, 65535) ?? index;
    const proxyRaw = r.string(t, 'proxy_protocol', at);
    const proxy = parseProxyProtocol(proxyRaw);
    if (proxy === 'invalid') {
      r.add(join(at, 'proxy_protocol'), `must be v1 or v2, got ${JSON.stringify(proxyRaw)}`);
    } else if (!proxyProtocolFitsProtocol(protocol, proxy)) {
      r.add(join(at, 'proxy_protocol'), 'v1 is only valid on tcp rules; udp targets take v2');
    }
    if (host === undefined || hostProblem || !isValidPort(port) || proxy === 'invalid') return;
    const key = targetKey(host, port);
    const first = seen.get(key);
    if (first !== undefined) {
      r.add(at, `duplicates ${path}[${first}] (${key})`);
      return;
    }
    seen.set(key, index);
    out.push({ host, port, portEnd: null, priority, proxyProtocol: proxy });
  });
}

/** `"lo-hi"` → ports, or undefined. */
function parseRange(text: string): { low: number; high: number } | undefined {
  const match = /^\s*(\d{1,5})\s*-\s*(\d{1,5})\s*$/.exec(text);
  if (!match) return undefined;
  const low = Number(match[1]);
  const high = Number(match[2]);
  if (!isValidPort(low) || !isValidPort(high) || high < low) return undefined;
  return { low, high };
}

/** `host:port`, `host:lo-hi`, `[v6]:port`; returns the target or why it is not one. */
export function parseTargetString(text: string): TargetSpec | string {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):([\d\s-]+)$/.exec(text.trim());
  if (!match)
    return `must be "host:port" or "host:lo-hi" (IPv6 in brackets), got ${JSON.stringify(text)}`;
  const host = match[1] ?? match[2] ?? '';
  const problem = targetHostProblem(host);
  if (problem) return `${problem.code}: ${problem.message}`;
  const portText = match[3] ?? '';
  if (portText.includes('-')) {
    const range = parseRange(portText);
    if (!range) return `port range ${JSON.stringify(portText)} must be lo-hi in 1..65535`;
    return {
      host,
      port: range.low,
      portEnd: range.high === range.low ? null : range.high,
      priority: 0,
      proxyProtocol: null,
    };
  }
  const port = Number(portText);
  if (!isValidPort(port)) return `port ${JSON.stringify(portText)} is not 1..65535`;
  return { host, port, portEnd: null, priority: 0, proxyProtocol: null };
}

/** Two rules may not share a (protocol, port): the second would fail to bind at start. */
function checkPortOverlap(
  r: Reader,
  rules: readonly { rule: StandaloneRule; index: number }[],
): void {
  const owners = new Map<string, string>();
  for (const { rule, index } of rules) {
    const { spec } = rule;
    if (spec.listenPort === 0) continue;
    const end = spec.listenPortEnd ?? spec.listenPort;
    for (let port = spec.listenPort; port <= end; port += 1) {
      const key = `${spec.protocol}/${port}`;
      const owner = owners.get(key);
      if (owner !== undefined) {
        r.add(
          `rule[${index}]`,
          `${spec.protocol} port ${port} is also listened on by rule ${JSON.stringify(owner)}`,
        );
        break;
      }
      owners.set(key, rule.name);
    }
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
