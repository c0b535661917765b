/**
 * The rule table of the data plane: validates a rule, maps a listen port range onto the target
 * range at the same offset (reference inventory §5.3), binds every port all-or-nothing, and holds
 * the active rules by id with their stats. Listeners are keyed by (port, protocol), not by rule:
 * a replace (a PUSH of a running id) keeps every listener whose port stays, points it at the new
 * definition's connector, binds only the new ports first and closes only the dropped ones, so
 * open connections keep their upstream and nothing stops accepting; if the new definition cannot
 * be bound, the old one keeps running untouched. The resolver is one per Forwarder, and a
 * Forwarder lives as long as its process (the client keeps it across control sessions). It logs
 * the rule lifecycle events (§7.5) through the injected core Logger. Single-port TCP rules with
 * an `sni_pattern`, and at most one fallback without, share one listener per port (an SNI group,
 * reference §5.7): the port is bound when the first member arrives and closed with the last, and
 * adding, replacing or removing a member touches only that member's route and connections. Who
 * may join a port is @portunus/api's `sniPortConflict`, the same decision the server makes
 * (docs/sni-routing.md).
 *
 * Each rule id has one RuleGate (policy/admission.ts) for its whole life in the Forwarder: a
 * replace reconfigures it in place (caps keep their tokens, source lists change for new
 * connections, open ones stay) and moves open TCP connections onto or off the metered copy. The
 * owner envelopes are one OwnerRegistry per Forwarder, so they live as long as the process;
 * `setOwnerRateLimit` / `removeOwnerRateLimit` are the client's SET / REMOVE (reference §4.2).
 * Sockets themselves are the tcp/, udp/ and sni/ stages'; this module depends only on them,
 * connect/, dns/, policy/, @portunus/api and @portunus/core.
 */
import { MAX_SOURCE_CIDRS, parseCidr, sniPortConflict, type PortMember } from '@portunus/api';
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
import { RuleGate } from './policy/admission.js';
import { OwnerRegistry, systemPolicyClock, type PolicyClock } from './policy/limiter.js';
import { QuotaRegistry, type QuotaBudget } from './policy/quota.js';
import {
  MAX_TARGETS,
  PORT_COUNTERS,
  sameRule,
  type OwnerRateLimitStats,
  type PortStats,
  type Protocol,
  type RateLimitSpec,
  type RuleSpec,
  type RuleStats,
} from './rule-spec.js';
import {
  SniDispatch,
  type SniListenerStats,
  type SniMember,
  type SniOptions,
  type SniRouteCounts,
} from './sni/dispatch.js';
import {
  ConnectionTally,
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
  /** ClientHello peek limits of shared SNI ports (3 s, 64 KiB, 1,024 in flight unless given). */
  sni?: SniOptions;
  /** Clock and timers of the token buckets; tests drive them by hand. */
  policyClock?: PolicyClock;
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
  /** Its place in a shared SNI port, when it is a member of one. */
  sni: SniMember | undefined;
  /** Connections routed to it by SNI; cumulative like the other counters. */
  readonly routed: SniRouteCounts;
  /** Admission and caps; kept across replaces of the id. */
  readonly gate: RuleGate;
}

/** One shared SNI port: its listener, its dispatch and the member rules by id. */
interface SniGroup {
  readonly listener: TcpListener;
  readonly dispatch: SniDispatch;
  readonly members: Map<string, SniMember>;
  /** Resolves once the port is bound; a member arriving meanwhile waits for it. */
  readonly ready: Promise<void>;
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
  for (const [name, list] of [
    ['allowed_sources', rule.allowedSources],
    ['denied_sources', rule.deniedSources],
  ] as const) {
    if (list === undefined) continue;
    const fail = (message: string): never => {
      throw new RuleActivationError(rule.ruleId, 'source_list_invalid', `${name}: ${message}`);
    };
    // Callers may be plain JS fed from a file or the wire: check the shape, not only the type.
    const entries: unknown = list;
    if (!Array.isArray(entries)) return fail('must be a list of CIDRs');
    if (entries.length > MAX_SOURCE_CIDRS) fail(`at most ${MAX_SOURCE_CIDRS} entries`);
    for (const text of entries as unknown[]) {
      if (typeof text !== 'string') return fail('entries must be strings');
      const parsed = parseCidr(text);
      if ('error' in parsed) fail(`${JSON.stringify(text)}: ${parsed.error}`);
    }
  }
}

/** A pattern routes a shared TCP port: a UDP rule or a range cannot carry one (reference §5.7). */
function checkSniShape(rule: RuleSpec, pairs: PortPair[]): void {
  if (rule.sniPattern !== null && (rule.protocol !== 'tcp' || pairs.length !== 1)) {
    throw new RuleActivationError(
      rule.ruleId,
      'validation.sni_on_unsupported_rule',
      'sni_pattern needs a single-port tcp rule',
    );
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
  /** Shared SNI ports by listen port. */
  private readonly sniGroups = new Map<number, SniGroup>();
  private readonly policyClock: PolicyClock;
  /** The owner envelopes of this process (reference §4.3: they survive reconnects). */
  private readonly owners: OwnerRegistry;
  /** The owners' quota budgets; like the envelopes they outlive rules and sessions. */
  readonly quotas: QuotaRegistry;

  constructor(options: ForwarderOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.options = options;
    this.maxRangePorts = options.maxRangePorts ?? DEFAULT_MAX_RANGE_PORTS;
    this.policyClock = options.policyClock ?? systemPolicyClock;
    this.owners = new OwnerRegistry(this.policyClock);
    this.resolver =
      options.resolver instanceof DnsResolver
        ? options.resolver
        : new DnsResolver(options.resolver ?? {});
    this.quotas = options.quotas ?? new QuotaRegistry();
    // An owner's first budget also meters the connections already open for its rules.
    this.quotas.onBudgetCreated((budget) => {
      for (const ruleId of this.owners.rulesOf(budget.ownerId)) {
        const rule = this.rules.get(ruleId);
        for (const listener of rule?.tcp ?? []) {
          listener.route?.tally.meterQuota(budget);
          // A budget is a gate: natively accepted connections could not pay it.
          listener.reviewAccept();
        }
        rule?.sni?.route.tally.meterQuota(budget);
      }
    });
  }

  /** How a rule's connections and flows find their owner's budget (none without an owner). */
  private quotaLookup(rule: RuleSpec): (() => QuotaBudget | undefined) | undefined {
    const owner = rule.ownerId;
    if (owner === null) return undefined;
    return () => this.quotas.budgetOf(owner);
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

  /**
   * A port held by another rule is refused before the kernel is asked. TCP ports follow the
   * server's SNI sharing rules (one decision, @portunus/api); `current` is the running definition
   * of a replaced rule.
   */
  private checkPortsFree(rule: RuleSpec, pairs: PortPair[], current?: RuleSpec): void {
    if (rule.protocol === 'tcp') {
      const others: PortMember[] = [];
      for (const other of this.rules.values()) {
        if (other.spec.protocol !== 'tcp' || other.spec.ruleId === rule.ruleId) continue;
        others.push(portMember(other.spec));
      }
      const conflict = sniPortConflict(
        others,
        portMember(rule),
        current?.protocol === 'tcp' ? portMember(current) : undefined,
      );
      if (conflict) {
        throw new RuleActivationError(
          rule.ruleId,
          conflict.code,
          `tcp port ${conflict.port}: ${conflict.code} (rule ${conflict.ruleId})`,
          conflict.port,
        );
      }
      return;
    }
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
  private async bindTcp(
    rule: RuleSpec,
    pairs: PortPair[],
    connector: RuleConnector,
    gate: RuleGate,
  ) {
    const bound: TcpListener[] = [];
    try {
      for (const pair of pairs) {
        const route: TcpRoute = {
          connector,
          offset: pair.offset,
          tally: new ConnectionTally(),
          gate,
        };
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

  private newUdpRuntime(connector: RuleConnector, gate: RuleGate): UdpRuleRuntime {
    return new UdpRuleRuntime(
      connector,
      this.log,
      { ...this.options.udp, host: this.options.listenHost ?? '::' },
      gate,
    );
  }

  /** A single-port TCP rule with a pattern, or without one on a port an SNI group holds. */
  private joinsSni(rule: RuleSpec, pairs: PortPair[]): boolean {
    if (rule.protocol !== 'tcp' || pairs.length !== 1) return false;
    return rule.sniPattern !== null || this.sniGroups.has(pairs[0]!.listen);
  }

  /** The SNI group of the port, bound on first use; rejects with the bind failure. */
  private async sniGroup(rule: RuleSpec, port: number): Promise<{ group: SniGroup; port: number }> {
    const existing = this.sniGroups.get(port);
    if (existing) {
      await existing.ready;
      return { group: existing, port };
    }
    const dispatch = new SniDispatch(port, this.log, this.options.sni);
    const listener = new TcpListener(port, dispatch, this.log, this.tcpOptions());
    const ready = listener.start();
    const group: SniGroup = { listener, dispatch, members: new Map(), ready };
    // Port 0 asks for a fresh port: nobody else can be waiting for it.
    if (port !== 0) this.sniGroups.set(port, group);
    try {
      await ready;
    } catch (error) {
      if (this.sniGroups.get(port) === group) this.sniGroups.delete(port);
      throw this.bindError(rule, port, error);
    }
    this.sniGroups.set(listener.listenPort, group);
    return { group, port: listener.listenPort };
  }

  /** Adds a rule to its port's SNI group (binding the port for the first member). */
  private async joinSniGroup(
    rule: RuleSpec,
    connector: RuleConnector,
    routed: SniRouteCounts,
    gate: RuleGate,
  ): Promise<{ member: SniMember; port: number }> {
    const { group, port } = await this.sniGroup(rule, rule.listenPort);
    // Checked again after the wait: another member may have taken the pattern meanwhile.
    for (const other of group.members.values()) {
      if (other.pattern === rule.sniPattern) {
        throw new RuleActivationError(
          rule.ruleId,
          rule.sniPattern === null
            ? 'conflict.sni_fallback_duplicate'
            : 'conflict.sni_route_duplicate',
          `tcp port ${port}: rule ${other.ruleId} already routes ${rule.sniPattern ?? 'the fallback'}`,
          port,
        );
      }
    }
    const member: SniMember = {
      ruleId: rule.ruleId,
      pattern: rule.sniPattern,
      route: { connector, offset: 0, tally: new ConnectionTally(), gate },
      routed,
    };
    group.members.set(rule.ruleId, member);
    group.dispatch.table.set(rule.sniPattern, member);
    this.log.info(FORWARDER_EVENTS.sniGroupMemberAdded, {
      listen_port: port,
      rule_id: rule.ruleId,
      sni_pattern: rule.sniPattern ?? undefined,
      fallback: rule.sniPattern === null,
      members: group.members.size,
    });
    return { member, port };
  }

  /**
   * Takes a member out of its group: new connections stop reaching it at once, its open ones
   * drain (up to `drainMs`), and the port closes with its last member.
   */
  private async leaveSniGroup(member: SniMember, port: number, drainMs?: number): Promise<void> {
    const group = this.sniGroups.get(port);
    if (group?.members.get(member.ruleId) === member) {
      group.members.delete(member.ruleId);
      group.dispatch.table.delete(member.pattern);
      this.log.info(FORWARDER_EVENTS.sniGroupMemberRemoved, {
        listen_port: port,
        rule_id: member.ruleId,
        sni_pattern: member.pattern ?? undefined,
        members: group.members.size,
        in_flight: member.route.tally.active,
      });
      if (group.members.size === 0) await this.closeSniGroup(port, group);
    }
    await member.route.tally.drain(drainMs, (destroyed) => {
      this.log.info(FORWARDER_EVENTS.connDrainDeadline, {
        listen_port: port,
        rule_id: member.ruleId,
        destroyed,
      });
    });
  }

  private async closeSniGroup(port: number, group: SniGroup): Promise<void> {
    if (this.sniGroups.get(port) === group) this.sniGroups.delete(port);
    await group.listener.stop();
  }

  /** Points the gate at the definition's caps, sources and owner (attaching the new owner). */
  private configureGate(gate: RuleGate, previous: RuleSpec | undefined, next: RuleSpec): void {
    const owner = next.ownerId !== null ? this.owners.attach(next.ownerId, next.ruleId) : undefined;
    gate.configure(next, owner);
    gate.quotaBudget = this.quotaLookup(next);
    if (previous?.ownerId != null && previous.ownerId !== next.ownerId) {
      this.owners.detach(previous.ownerId, previous.ruleId);
    }
  }

  private async activateNew(rule: RuleSpec, kept?: ActiveRule): Promise<ActivationResult> {
    checkShape(rule);
    const pairs = expandRule(rule, this.maxRangePorts);
    checkSniShape(rule, pairs);
    this.checkPortsFree(rule, pairs);
    const counters: RuleCounters = { dnsFailures: 0, failovers: 0 };
    const connector = this.connectorFor(rule, counters);
    // A protocol swap keeps the id's gate (its counts and buckets); otherwise a fresh one, which
    // admits nothing before it is configured below.
    const gate = kept?.gate ?? new RuleGate(rule.ruleId, this.log, this.policyClock);
    if (!kept) gate.configure(rule, this.ownerLimiterFor(rule));
    gate.quotaBudget = this.quotaLookup(rule);
    const active: ActiveRule = {
      spec: rule,
      connector,
      counters,
      tcp: [],
      udp: undefined,
      ports: [],
      sni: undefined,
      routed: { exact: 0, wildcard: 0, fallback: 0 },
      gate,
    };
    try {
      if (this.joinsSni(rule, pairs)) {
        const joined = await this.joinSniGroup(rule, connector, active.routed, gate);
        active.sni = joined.member;
        active.ports = [joined.port];
      } else if (rule.protocol === 'udp') {
        active.udp = this.newUdpRuntime(connector, gate);
        try {
          active.ports = await this.bindUdp(rule, active.udp, pairs);
        } catch (error) {
          await active.udp.stop();
          throw error;
        }
      } else {
        active.tcp = await this.bindTcp(rule, pairs, connector, gate);
        active.ports = active.tcp.map((l) => l.listenPort);
      }
    } catch (error) {
      connector.close();
      if (!kept && rule.ownerId !== null) this.owners.detach(rule.ownerId, rule.ruleId);
      throw error;
    }
    if (kept) this.configureGate(gate, kept.spec, rule);
    // A port-0 rule runs on the port the kernel chose; that is the definition from now on.
    if (rule.listenPort === 0) active.spec = { ...rule, listenPort: active.ports[0] ?? 0 };
    this.rules.set(rule.ruleId, active);
    if (!active.sni) {
      for (const port of active.ports) {
        this.portOwners.set(portKey(rule.protocol, port), rule.ruleId);
      }
    }
    this.log.info(FORWARDER_EVENTS.ruleActivated, {
      rule_id: rule.ruleId,
      protocol: rule.protocol,
      sni_pattern: rule.sniPattern ?? undefined,
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

  /** The limiter of a new rule's owner, attaching the rule to it (undefined: no owner). */
  private ownerLimiterFor(rule: RuleSpec) {
    return rule.ownerId !== null ? this.owners.attach(rule.ownerId, rule.ruleId) : undefined;
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
    checkSniShape(next, pairs);
    this.checkPortsFree(next, pairs, current.spec);
    if (next.protocol !== current.spec.protocol) return this.swapProtocol(current, next);
    const nextSni = this.joinsSni(next, pairs);
    if (current.sni && nextSni && current.ports[0] === pairs[0]!.listen) {
      return this.replaceSniMember(current, next);
    }
    // Into, out of, or between SNI ports: bind the new place fully, then leave the old one.
    if (current.sni || nextSni) return this.swapProtocol(current, next);
    const connector = this.connectorFor(next, current.counters);
    const held = new Set(current.ports);
    const fresh = pairs.filter((pair) => !held.has(pair.listen));
    const keep = new Set(pairs.map((pair) => pair.listen));
    let ports: number[];
    try {
      if (next.protocol === 'tcp') {
        const bound = await this.bindTcp(next, fresh, connector, current.gate);
        const byPort = new Map(current.tcp.map((l) => [l.listenPort, l]));
        for (const l of bound) byPort.set(l.listenPort, l);
        const listeners = pairs.map((pair) => byPort.get(pair.listen)!);
        // Every kept listener now sends new connections to the new definition.
        pairs.forEach((pair, i) => {
          const tally = listeners[i]!.route?.tally ?? new ConnectionTally();
          listeners[i]!.route = { connector, offset: pair.offset, tally, gate: current.gate };
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
    // Caps and sources change in place: open connections see the new caps at once.
    this.configureGate(current.gate, current.spec, next);
    for (const listener of current.tcp) listener.refreshMetering();
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

  /**
   * A member rule stays on its SNI port with a new definition: new connections use the new
   * connector (and pattern), its open ones keep their upstream, the other members are untouched.
   */
  private replaceSniMember(current: ActiveRule, next: RuleSpec): ActivationResult {
    const member = current.sni!;
    const port = current.ports[0]!;
    const group = this.sniGroups.get(port)!;
    if (member.pattern !== next.sniPattern) {
      for (const other of group.members.values()) {
        if (other !== member && other.pattern === next.sniPattern) {
          throw new RuleActivationError(
            next.ruleId,
            next.sniPattern === null
              ? 'conflict.sni_fallback_duplicate'
              : 'conflict.sni_route_duplicate',
            `tcp port ${port}: rule ${other.ruleId} already routes ${next.sniPattern ?? 'the fallback'}`,
            port,
          );
        }
      }
      group.dispatch.table.delete(member.pattern);
      member.pattern = next.sniPattern;
      group.dispatch.table.set(member.pattern, member);
    }
    const connector = this.connectorFor(next, current.counters);
    member.route = { connector, offset: 0, tally: member.route.tally, gate: current.gate };
    current.connector.close();
    current.connector = connector;
    // Caps and sources change in place: open connections see the new caps at once.
    this.configureGate(current.gate, current.spec, next);
    member.route.tally.refreshMetering();
    current.spec = { ...next, listenPort: port };
    this.log.info(FORWARDER_EVENTS.ruleReactivated, {
      rule_id: next.ruleId,
      protocol: next.protocol,
      listen_port: port,
      sni_pattern: next.sniPattern ?? undefined,
      targets: next.targets.map((t) => `${t.host}:${t.port}`),
    });
    return { ok: true, ports: [port] };
  }

  /**
   * A rule that changes its kind of place (tcp ↔ udp, into or out of an SNI port): bind the new
   * one fully under the same id, then drop the old listeners or leave the old SNI port.
   */
  private async swapProtocol(current: ActiveRule, next: RuleSpec): Promise<ActivationResult> {
    const id = next.ruleId;
    this.rules.delete(id);
    let result: ActivationResult;
    try {
      result = await this.activateNew(next, current);
    } catch (error) {
      this.rules.set(id, current);
      throw error;
    }
    const fresh = this.rules.get(id)!;
    fresh.counters.dnsFailures = current.counters.dnsFailures;
    fresh.counters.failovers = current.counters.failovers;
    Object.assign(fresh.routed, current.routed);
    current.connector.close();
    if (current.sni) {
      void this.leaveSniGroup(current.sni, current.ports[0]!, REPLACE_DRAIN_MS);
      return result;
    }
    for (const port of current.ports) {
      // The new definition may hold the same (protocol, port) entry now.
      const key = portKey(current.spec.protocol, port);
      if (this.portOwners.get(key) === id && !fresh.ports.includes(port)) {
        this.portOwners.delete(key);
      }
    }
    const drainMs = current.spec.protocol === next.protocol ? REPLACE_DRAIN_MS : 0;
    void Promise.all([...current.tcp.map((t) => t.stop(drainMs)), current.udp?.stop()]);
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
    if (!rule.sni) {
      for (const port of rule.ports) this.portOwners.delete(portKey(rule.spec.protocol, port));
    }
    if (rule.spec.ownerId !== null) this.owners.detach(rule.spec.ownerId, ruleId);
    rule.connector.close();
    const inFlight =
      (rule.sni?.route.tally.active ?? 0) +
      rule.tcp.reduce((sum, t) => sum + t.stats().active_connections, 0);
    const stopping = Promise.all([
      ...rule.tcp.map((t) => t.stop(options.drainMs)),
      rule.udp?.stop(),
      rule.sni ? this.leaveSniGroup(rule.sni, rule.ports[0]!, options.drainMs) : undefined,
    ]);
    this.log.info(FORWARDER_EVENTS.ruleRemoved, {
      rule_id: ruleId,
      protocol: rule.spec.protocol,
      in_flight: inFlight,
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

  /** The listener counters of every shared SNI port, by port. */
  sniListenerStats(): SniListenerStats[] {
    const seen = new Set<SniGroup>();
    const out: SniListenerStats[] = [];
    for (const group of this.sniGroups.values()) {
      if (seen.has(group)) continue;
      seen.add(group);
      out.push(group.dispatch.stats());
    }
    return out.sort((a, b) => a.listen_port - b.listen_port);
  }

  /**
   * SET of an owner envelope (reference §4.2 OwnerRateLimitUpdate): binds before the caps of
   * every rule of that owner, now and later; a change keeps the buckets' tokens and moves the
   * owner's open connections to the new rate at once.
   */
  setOwnerRateLimit(ownerId: string, caps: RateLimitSpec | null): void {
    this.owners.set(ownerId, caps);
    this.refreshOwner(ownerId);
  }

  /** REMOVE of an owner envelope; false when none was set. Live connections stay. */
  removeOwnerRateLimit(ownerId: string): boolean {
    const removed = this.owners.remove(ownerId);
    if (removed) this.refreshOwner(ownerId);
    return removed;
  }

  /** The caps of an owner's envelope, or undefined when none is set. */
  ownerRateLimit(ownerId: string): RateLimitSpec | null | undefined {
    return this.owners.hasEnvelope(ownerId) ? (this.owners.get(ownerId)?.caps ?? null) : undefined;
  }

  /** Owner ids with an envelope or a running rule. */
  ownerIds(): string[] {
    return this.owners.ownerIds();
  }

  /** One entry per envelope set now. */
  ownerStats(): OwnerRateLimitStats[] {
    return this.owners.stats();
  }

  private refreshOwner(ownerId: string): void {
    for (const ruleId of this.owners.rulesOf(ownerId)) {
      const rule = this.rules.get(ruleId);
      for (const listener of rule?.tcp ?? []) listener.refreshMetering();
      rule?.sni?.route.tally.refreshMetering();
    }
  }
}

function portMember(spec: RuleSpec): PortMember {
  return {
    ruleId: spec.ruleId,
    listenPort: spec.listenPort,
    listenPortEnd: spec.listenPortEnd,
    sniPattern: spec.sniPattern,
  };
}

function collect(rule: ActiveRule): RuleStats {
  const ports: PortStats[] = [];
  const live = new Map<TargetState, { bytesIn: number; bytesOut: number }>();
  const tcp = rule.tcp.map((t) => {
    t.addLiveTargetBytes(live);
    return t.stats();
  });
  if (rule.sni) {
    const tally = rule.sni.route.tally;
    tally.addLiveTargetBytes(live);
    const port = rule.ports[0] ?? 0;
    tcp.push(tally.stats(port, rule.connector.targets[0]?.portAt(0) ?? 0));
  }
  for (const s of tcp) {
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
    source_denied: rule.gate.sourceDenied,
    rate_limit: rule.gate.stats(),
    target_failovers_total: rule.counters.failovers,
    sni_route_exact_total: rule.routed.exact,
    sni_route_wildcard_total: rule.routed.wildcard,
    sni_route_fallback_total: rule.routed.fallback,
    ports,
    targets: rule.connector.stats(live),
  };
}
