/**
 * The rule table of the data plane: validates a rule, maps a listen port range onto the target
 * range at the same offset (reference inventory §5.3), binds every port all-or-nothing, and holds
 * the active rules by id with their stats. Listeners are keyed by (port, protocol), not by rule:
 * a replace (a PUSH of a running id) keeps every listener whose port stays, points it at the new
 * definition's connector, binds only the new ports first and closes only the dropped ones, so
 * open connections keep their upstream and nothing stops accepting; if the new definition cannot
 * be bound, the old one keeps running untouched. The resolver is one per Forwarder, and a
 * Forwarder lives as long as its process (the client keeps it across control sessions). It logs
 * the rule lifecycle events (§7.5) through the injected core Logger. Sockets themselves are the
 * tcp/ and udp/ stages'; this module depends only on them, connect/, dns/ and @portunus/core.
 */
import { silentLogger, type Logger } from '@portunus/core';

import {
  RuleConnector,
  type RuleCounters,
  type TargetState,
  type TcpDialer,
} from './connect/connector.js';
import { DnsResolver, type ResolverOptions } from './dns/resolver.js';
import { RuleActivationError, bindFailureReason } from './errors.js';
import { FORWARDER_EVENTS } from './events.js';
import { QuotaRegistry, type QuotaBudget } from './policy/quota.js';
import {
  MAX_TARGETS,
  PORT_COUNTERS,
  sameRule,
  type PortStats,
  type Protocol,
  type RuleSpec,
  type RuleStats,
} from './rule-spec.js';
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TCP_HIGH_WATER_MARK,
  TcpListener,
  type TcpOptions,
  type TcpRoute,
} from './tcp/listener.js';
import { UdpRuleRuntime, type UdpOptions } from './udp/runtime.js';

export interface ActivationResult {
  ok: true;
  /** The bound listen ports, in range order. */
  ports: number[];
}

export interface ForwarderOptions {
  logger?: Logger;
  /** Listen address for every rule; `::` (dual-stack) unless given. */
  listenHost?: string;
  /** Largest accepted range (reference `range_rule_max_ports`). */
  maxRangePorts?: number;
  tcp?: Omit<TcpOptions, 'host'> & { connectTimeoutMs?: number; dial?: TcpDialer };
  udp?: Omit<UdpOptions, 'host'>;
  /** The process's resolver, or options for the one this Forwarder builds. */
  resolver?: DnsResolver | ResolverOptions;
  /** Timeout of each active health probe (5 s unless given). */
  probeTimeoutMs?: number;
  /** Per-owner traffic quota budgets (policy/quota.ts); one per process unless given. */
  quotas?: QuotaRegistry;
}

export const DEFAULT_MAX_RANGE_PORTS = 1024;
/** Open connections of a port a replace dropped get this long to finish. */
export const REPLACE_DRAIN_MS = 30_000;

interface ActiveRule {
  /** As running: a port-0 request is stored with the bound port. */
  spec: RuleSpec;
  connector: RuleConnector;
  readonly counters: RuleCounters;
  /** TCP listeners in range order. */
  tcp: TcpListener[];
  udp: UdpRuleRuntime | undefined;
  ports: number[];
}

interface PortPair {
  listen: number;
  offset: number;
}

function isPort(value: number, allowZero: boolean): boolean {
  return Number.isInteger(value) && value >= (allowZero ? 0 : 1) && value <= 65535;
}

/** The listen ports of a rule with their range offsets, or the failure that refuses it. */
export function expandRule(rule: RuleSpec, maxPorts = DEFAULT_MAX_RANGE_PORTS): PortPair[] {
  const fail = (reason: 'range_invalid' | 'exceeds_cap', message: string): never => {
    throw new RuleActivationError(rule.ruleId, reason, message);
  };
  const [first] = rule.targets;
  if (!first) return fail('range_invalid', 'a rule needs a target');
  for (const target of rule.targets) {
    if (!isPort(target.port, false)) fail('range_invalid', 'ports must be integers in 1..65535');
  }
  const isRange = rule.listenPortEnd !== null || first.portEnd !== null;
  if (!isRange) {
    if (!isPort(rule.listenPort, true)) fail('range_invalid', 'ports must be integers in 1..65535');
    return [{ listen: rule.listenPort, offset: 0 }];
  }
  if (rule.targets.length > 1) fail('range_invalid', 'a port range has exactly one target');
  const listenEnd = rule.listenPortEnd ?? rule.listenPort;
  const targetEnd = first.portEnd ?? first.port + (listenEnd - rule.listenPort);
  for (const port of [rule.listenPort, listenEnd, first.port, targetEnd]) {
    if (!isPort(port, false)) fail('range_invalid', 'range ports must be integers in 1..65535');
  }
  if (listenEnd < rule.listenPort || targetEnd < first.port) {
    fail('range_invalid', 'a range must run from low to high');
  }
  const size = listenEnd - rule.listenPort + 1;
  if (targetEnd - first.port + 1 !== size) {
    fail('range_invalid', 'the listen and target ranges must have the same length');
  }
  if (size > maxPorts) fail('exceeds_cap', `a range may hold at most ${maxPorts} ports`);
  return Array.from({ length: size }, (_, offset) => ({
    listen: rule.listenPort + offset,
    offset,
  }));
}

/** Refusals that need no socket: shape and protocol. Callers may be plain JS fed from the wire. */
function checkShape(rule: RuleSpec): void {
  const protocol: string = rule.protocol;
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new RuleActivationError(
      rule.ruleId,
      'unsupported_protocol',
      'protocol must be tcp or udp',
    );
  }
  if (!Array.isArray(rule.targets) || rule.targets.length === 0) {
    throw new RuleActivationError(rule.ruleId, 'invalid_target_host', 'a rule needs a target');
  }
  if (rule.targets.length > MAX_TARGETS) {
    throw new RuleActivationError(
      rule.ruleId,
      'range_invalid',
      `a rule has at most ${MAX_TARGETS} targets`,
    );
  }
  for (const target of rule.targets) {
    if (typeof target.host !== 'string' || target.host.length === 0) {
      throw new RuleActivationError(rule.ruleId, 'invalid_target_host', 'a target host is empty');
    }
  }
}

const portKey = (protocol: Protocol, port: number): string => `${protocol}/${port}`;

export class Forwarder {
  readonly resolver: DnsResolver;
  private readonly log: Logger;
  private options: ForwarderOptions;
  private readonly maxRangePorts: number;
  private readonly rules = new Map<string, ActiveRule>();
  /** Which rule holds each (protocol, port). */
  private readonly portOwners = new Map<string, string>();
  /** Ids being activated or replaced: updates of one id never overlap. */
  private readonly busy = new Set<string>();
  /** The owners' quota budgets; they outlive rules and control-stream sessions. */
  readonly quotas: QuotaRegistry;

  constructor(options: ForwarderOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.options = options;
    this.maxRangePorts = options.maxRangePorts ?? DEFAULT_MAX_RANGE_PORTS;
    this.resolver =
      options.resolver instanceof DnsResolver
        ? options.resolver
        : new DnsResolver(options.resolver ?? {});
    this.quotas = options.quotas ?? new QuotaRegistry();
    // An owner's first budget also meters the TCP connections already open for its rules.
    this.quotas.onBudgetCreated((budget) => {
      for (const active of this.rules.values()) {
        if (active.spec.ownerId !== budget.ownerId) continue;
        for (const listener of active.tcp) listener.meter(budget);
      }
    });
  }

  /** How a rule's connections find their owner's budget; none for a rule without an owner. */
  private budgetLookup(rule: RuleSpec): { budget?: () => QuotaBudget | undefined } {
    const owner = rule.ownerId;
    if (!owner) return {};
    return { budget: () => this.quotas.budgetOf(owner) };
  }

  /** UDP tunables for rules started from now on (the server's Welcome); running ones keep theirs. */
  configureUdp(udp: Pick<UdpOptions, 'idleMs' | 'maxFlows'>): void {
    this.options = { ...this.options, udp: { ...this.options.udp, ...udp } };
  }

  /**
   * Binds every port of the rule or none: on the first failing port everything bound so far is
   * closed and the promise rejects with a RuleActivationError naming that port.
   */
  async activate(rule: RuleSpec): Promise<ActivationResult> {
    return this.guard(rule, async () => {
      if (this.rules.has(rule.ruleId)) {
        throw new RuleActivationError(rule.ruleId, 'duplicate_rule_id', 'the rule id is active');
      }
      return this.activateNew(rule);
    });
  }

  /**
   * Activates `rule`, or replaces the running rule of that id: unchanged ports keep their
   * listener, new connections use the new definition, open ones keep their upstream. On failure
   * the old definition keeps running and the promise rejects.
   */
  async apply(rule: RuleSpec): Promise<ActivationResult> {
    return this.guard(rule, async () => {
      const current = this.rules.get(rule.ruleId);
      if (!current) return this.activateNew(rule);
      return this.replace(current, rule);
    });
  }

  private async guard(
    rule: RuleSpec,
    work: () => Promise<ActivationResult>,
  ): Promise<ActivationResult> {
    try {
      if (this.busy.has(rule.ruleId)) {
        throw new RuleActivationError(rule.ruleId, 'duplicate_rule_id', 'the rule id is changing');
      }
      this.busy.add(rule.ruleId);
      try {
        return await work();
      } finally {
        this.busy.delete(rule.ruleId);
      }
    } catch (error) {
      const failure =
        error instanceof RuleActivationError
          ? error
          : new RuleActivationError(rule.ruleId, 'bind_failed', String(error), undefined, {
              cause: error,
            });
      this.log.warn(FORWARDER_EVENTS.ruleFailed, {
        rule_id: rule.ruleId,
        protocol: rule.protocol,
        reason: failure.reason,
        port: failure.port,
        error: failure.cause,
      });
      throw failure;
    }
  }

  private connectorFor(rule: RuleSpec, counters: RuleCounters): RuleConnector {
    const tcp = this.options.tcp ?? {};
    return new RuleConnector(rule, {
      resolver: this.resolver,
      log: this.log,
      counters,
      connectTimeoutMs: tcp.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      ...(this.options.probeTimeoutMs !== undefined
        ? { probeTimeoutMs: this.options.probeTimeoutMs }
        : {}),
      ...(tcp.dial ? { dial: tcp.dial } : {}),
      // Both sockets of a connection get the listener's buffer size (see tcp/listener.ts).
      socketOptions: { highWaterMark: tcp.highWaterMark ?? DEFAULT_TCP_HIGH_WATER_MARK },
    });
  }

  private tcpOptions(): TcpOptions {
    const tcp = this.options.tcp ?? {};
    return {
      host: this.options.listenHost ?? '::',
      ...(tcp.ipv6Only !== undefined ? { ipv6Only: tcp.ipv6Only } : {}),
      ...(tcp.backlog !== undefined ? { backlog: tcp.backlog } : {}),
      ...(tcp.highWaterMark !== undefined ? { highWaterMark: tcp.highWaterMark } : {}),
      ...(tcp.createServer ? { createServer: tcp.createServer } : {}),
    };
  }

  /** A port held by another rule is refused before the kernel is asked. */
  private checkPortsFree(rule: RuleSpec, pairs: PortPair[]): void {
    for (const pair of pairs) {
      if (pair.listen === 0) continue;
      const owner = this.portOwners.get(portKey(rule.protocol, pair.listen));
      if (owner !== undefined && owner !== rule.ruleId) {
        throw new RuleActivationError(
          rule.ruleId,
          'port_in_use',
          `${rule.protocol} port ${pair.listen} is held by rule ${owner}`,
          pair.listen,
        );
      }
    }
  }

  private bindError(rule: RuleSpec, port: number, error: unknown): RuleActivationError {
    const reason = bindFailureReason(error);
    return new RuleActivationError(
      rule.ruleId,
      reason,
      `cannot bind ${rule.protocol} port ${port}: ${reason}`,
      port,
      { cause: error },
    );
  }

  /** Binds TCP listeners for `pairs` (sequentially: the first failing port is named). */
  private async bindTcp(rule: RuleSpec, pairs: PortPair[], connector: RuleConnector) {
    const bound: TcpListener[] = [];
    try {
      for (const pair of pairs) {
        const route: TcpRoute = { connector, offset: pair.offset, ...this.budgetLookup(rule) };
        const listener = new TcpListener(pair.listen, route, this.log, this.tcpOptions());
        try {
          await listener.start();
        } catch (error) {
          throw this.bindError(rule, pair.listen, error);
        }
        bound.push(listener);
      }
    } catch (error) {
      await Promise.all(bound.map((l) => l.stop(0)));
      throw error;
    }
    return bound;
  }

  private async bindUdp(rule: RuleSpec, runtime: UdpRuleRuntime, pairs: PortPair[]) {
    const bound: number[] = [];
    try {
      for (const pair of pairs) {
        try {
          bound.push(await runtime.bindPort(pair.listen, pair.offset));
        } catch (error) {
          throw this.bindError(rule, pair.listen, error);
        }
      }
    } catch (error) {
      await Promise.all(bound.map((port) => runtime.unbindPort(port)));
      throw error;
    }
    return bound;
  }

  private newUdpRuntime(connector: RuleConnector, rule: RuleSpec): UdpRuleRuntime {
    const runtime = new UdpRuleRuntime(connector, this.log, {
      ...this.options.udp,
      host: this.options.listenHost ?? '::',
    });
    runtime.budget = this.budgetLookup(rule).budget;
    return runtime;
  }

  private async activateNew(rule: RuleSpec): Promise<ActivationResult> {
    checkShape(rule);
    const pairs = expandRule(rule, this.maxRangePorts);
    this.checkPortsFree(rule, pairs);
    const counters: RuleCounters = { dnsFailures: 0, failovers: 0 };
    const connector = this.connectorFor(rule, counters);
    const active: ActiveRule = {
      spec: rule,
      connector,
      counters,
      tcp: [],
      udp: undefined,
      ports: [],
    };
    try {
      if (rule.protocol === 'udp') {
        active.udp = this.newUdpRuntime(connector, rule);
        try {
          active.ports = await this.bindUdp(rule, active.udp, pairs);
        } catch (error) {
          await active.udp.stop();
          throw error;
        }
      } else {
        active.tcp = await this.bindTcp(rule, pairs, connector);
        active.ports = active.tcp.map((l) => l.listenPort);
      }
    } catch (error) {
      connector.close();
      throw error;
    }
    // A port-0 rule runs on the port the kernel chose; that is the definition from now on.
    if (rule.listenPort === 0) active.spec = { ...rule, listenPort: active.ports[0] ?? 0 };
    this.rules.set(rule.ruleId, active);
    for (const port of active.ports) this.portOwners.set(portKey(rule.protocol, port), rule.ruleId);
    this.log.info(FORWARDER_EVENTS.ruleActivated, {
      rule_id: rule.ruleId,
      protocol: rule.protocol,
      listen_port: active.ports[0],
      listen_port_end: active.ports.length > 1 ? active.ports[active.ports.length - 1] : undefined,
      targets: rule.targets.map((t) => `${t.host}:${t.port}`),
    });
    if (active.udp) {
      this.log.debug(FORWARDER_EVENTS.udpRuntimeStarted, {
        rule_id: rule.ruleId,
        ports: active.ports,
      });
    }
    return { ok: true, ports: active.ports };
  }

  private async replace(current: ActiveRule, next: RuleSpec): Promise<ActivationResult> {
    checkShape(next);
    // Port 0 asks for any free port; on a replace the port already held is that port.
    const single = next.listenPortEnd === null && next.targets[0]?.portEnd === null;
    if (next.listenPort === 0 && single && current.ports.length === 1) {
      next = { ...next, listenPort: current.ports[0]! };
    }
    if (sameRule(current.spec, next)) return { ok: true, ports: current.ports };
    const pairs = expandRule(next, this.maxRangePorts);
    this.checkPortsFree(next, pairs);
    if (next.protocol !== current.spec.protocol) return this.swapProtocol(current, next);
    const connector = this.connectorFor(next, current.counters);
    const held = new Set(current.ports);
    const fresh = pairs.filter((pair) => !held.has(pair.listen));
    const keep = new Set(pairs.map((pair) => pair.listen));
    let ports: number[];
    try {
      if (next.protocol === 'tcp') {
        const bound = await this.bindTcp(next, fresh, connector);
        const byPort = new Map(current.tcp.map((l) => [l.listenPort, l]));
        for (const l of bound) byPort.set(l.listenPort, l);
        const listeners = pairs.map((pair) => byPort.get(pair.listen)!);
        // Every kept listener now sends new connections to the new definition.
        pairs.forEach((pair, i) => {
          listeners[i]!.route = { connector, offset: pair.offset, ...this.budgetLookup(next) };
        });
        for (const old of current.tcp) {
          if (!keep.has(old.listenPort)) void old.stop(REPLACE_DRAIN_MS);
        }
        current.tcp = listeners;
        ports = listeners.map((l) => l.listenPort);
      } else {
        const runtime = current.udp!;
        await this.bindUdp(next, runtime, fresh);
        runtime.connector = connector;
        runtime.budget = this.budgetLookup(next).budget;
        for (const pair of pairs) runtime.setOffset(pair.listen, pair.offset);
        for (const port of runtime.boundPorts()) {
          if (!keep.has(port)) await runtime.unbindPort(port);
        }
        ports = pairs.map((pair) => pair.listen);
      }
    } catch (error) {
      connector.close();
      throw error;
    }
    current.connector.close();
    for (const port of current.ports) this.portOwners.delete(portKey(next.protocol, port));
    for (const port of ports) this.portOwners.set(portKey(next.protocol, port), next.ruleId);
    current.connector = connector;
    current.spec = next;
    current.ports = ports;
    this.log.info(FORWARDER_EVENTS.ruleReactivated, {
      rule_id: next.ruleId,
      protocol: next.protocol,
      listen_port: ports[0],
      targets: next.targets.map((t) => `${t.host}:${t.port}`),
    });
    return { ok: true, ports };
  }

  /** tcp ↔ udp under one id: bind the new protocol fully, then drop the old listeners. */
  private async swapProtocol(current: ActiveRule, next: RuleSpec): Promise<ActivationResult> {
    const id = next.ruleId;
    this.rules.delete(id);
    let result: ActivationResult;
    try {
      result = await this.activateNew(next);
    } catch (error) {
      this.rules.set(id, current);
      throw error;
    }
    const fresh = this.rules.get(id)!;
    fresh.counters.dnsFailures = current.counters.dnsFailures;
    fresh.counters.failovers = current.counters.failovers;
    for (const port of current.ports) this.portOwners.delete(portKey(current.spec.protocol, port));
    current.connector.close();
    void Promise.all([...current.tcp.map((t) => t.stop(0)), current.udp?.stop()]);
    return result;
  }

  /**
   * Removes a rule: its listeners stop accepting at once; in-flight TCP connections drain (all
   * of them, or until `drainMs` passes, then they are destroyed). UDP flows close at once.
   * Resolves false for an unknown id.
   */
  async remove(ruleId: string, options: { drainMs?: number } = {}): Promise<boolean> {
    const rule = this.rules.get(ruleId);
    if (!rule) return false;
    this.rules.delete(ruleId);
    for (const port of rule.ports) this.portOwners.delete(portKey(rule.spec.protocol, port));
    rule.connector.close();
    const stopping = Promise.all([
      ...rule.tcp.map((t) => t.stop(options.drainMs)),
      rule.udp?.stop(),
    ]);
    this.log.info(FORWARDER_EVENTS.ruleRemoved, {
      rule_id: ruleId,
      protocol: rule.spec.protocol,
      in_flight: rule.tcp.reduce((sum, t) => sum + t.stats().active_connections, 0),
    });
    await stopping;
    return true;
  }

  /** Removes every rule; the drain deadline applies to each. */
  async close(options: { drainMs?: number } = {}): Promise<void> {
    await Promise.all([...this.rules.keys()].map((id) => this.remove(id, options)));
  }

  has(ruleId: string): boolean {
    return this.rules.has(ruleId);
  }

  ruleIds(): string[] {
    return [...this.rules.keys()];
  }

  /** The definition a rule runs now. */
  spec(ruleId: string): RuleSpec | undefined {
    return this.rules.get(ruleId)?.spec;
  }

  /** Stats of one rule, or undefined for an unknown id. */
  ruleStats(ruleId: string): RuleStats | undefined {
    const rule = this.rules.get(ruleId);
    return rule ? collect(rule) : undefined;
  }

  /** Stats of every active rule, each with its per-port and per-target detail. */
  stats(): RuleStats[] {
    return [...this.rules.values()].map(collect);
  }
}

function collect(rule: ActiveRule): RuleStats {
  const ports: PortStats[] = [];
  const live = new Map<TargetState, { bytesIn: number; bytesOut: number }>();
  for (const t of rule.tcp) {
    const s = t.stats();
    t.addLiveTargetBytes(live);
    ports.push({
      listen_port: s.listen_port,
      target_port: s.target_port,
      bytes_in: s.bytes_in,
      bytes_out: s.bytes_out,
      active_connections: s.active_connections,
      conn_errors: s.conn_errors,
      connect_failures: s.connect_failures,
      datagrams_in: 0,
      datagrams_out: 0,
      active_flows: 0,
      flows_dropped_overflow: 0,
    });
  }
  for (const s of rule.udp?.stats() ?? []) {
    ports.push({ ...s, active_connections: 0, conn_errors: 0, connect_failures: 0 });
  }
  const totals = Object.fromEntries(
    PORT_COUNTERS.map((field) => [field, ports.reduce((sum, port) => sum + port[field], 0)]),
  ) as Record<(typeof PORT_COUNTERS)[number], number>;
  return {
    rule_id: rule.spec.ruleId,
    protocol: rule.spec.protocol,
    ...totals,
    dns_failures: rule.counters.dnsFailures,
    target_failovers_total: rule.counters.failovers,
    ports,
    targets: rule.connector.stats(live),
  };
}
