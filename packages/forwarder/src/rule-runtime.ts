/**
 * The rule table of the data plane: validates a rule, maps a listen port range onto the target
 * range at the same offset (reference inventory §5.3), binds every port all-or-nothing, and holds
 * the active rules by id with their per-rule and per-port stats. It logs the rule lifecycle
 * events (§7.5) through the injected core Logger. Sockets themselves are tcp.ts's and udp.ts's;
 * this module must not depend on anything but them and @portunus/core (DESIGN.md §2).
 */
import { silentLogger, type Logger } from '@portunus/core';

import { RuleActivationError, bindFailureReason } from './errors.js';
import { FORWARDER_EVENTS } from './events.js';
import { TcpPortForwarder, type TcpOptions } from './tcp.js';
import { UdpRuleRuntime, type UdpOptions } from './udp.js';

export type Protocol = 'tcp' | 'udp';

export interface RuleSpec {
  ruleId: string;
  protocol: Protocol;
  /** 0 asks the kernel for a free port (single-port rules only). */
  listenPort: number;
  listenPortEnd?: number;
  targetHost: string;
  targetPort: number;
  targetPortEnd?: number;
}

export interface ActivationResult {
  ok: true;
  /** The bound listen ports, in range order. */
  ports: number[];
}

export interface PortStats {
  listen_port: number;
  target_port: number;
  bytes_in: number;
  bytes_out: number;
  active_connections: number;
  /** TCP connections torn down by an error on either side (refused dial, timeout, reset). */
  conn_errors: number;
  datagrams_in: number;
  datagrams_out: number;
  active_flows: number;
  flows_dropped_overflow: number;
}

export interface RuleStats extends Omit<PortStats, 'listen_port' | 'target_port'> {
  rule_id: string;
  protocol: Protocol;
  ports: PortStats[];
}

export interface ForwarderOptions {
  logger?: Logger;
  /** Listen address for every rule; `::` (dual-stack) unless given. */
  listenHost?: string;
  /** Largest accepted range (reference `range_rule_max_ports`). */
  maxRangePorts?: number;
  tcp?: Omit<TcpOptions, 'host'>;
  udp?: Omit<UdpOptions, 'host'>;
}

export const DEFAULT_MAX_RANGE_PORTS = 1024;

interface ActiveRule {
  readonly spec: RuleSpec;
  readonly tcp: TcpPortForwarder[];
  readonly udp: UdpRuleRuntime | undefined;
}

interface PortPair {
  listen: number;
  target: number;
}

function isPort(value: number, allowZero: boolean): boolean {
  return Number.isInteger(value) && value >= (allowZero ? 0 : 1) && value <= 65535;
}

/** The (listen, target) pairs of a rule, or the failure that refuses it before any bind. */
export function expandRule(rule: RuleSpec, maxPorts = DEFAULT_MAX_RANGE_PORTS): PortPair[] {
  const fail = (reason: 'range_invalid' | 'exceeds_cap', message: string): never => {
    throw new RuleActivationError(rule.ruleId, reason, message);
  };
  const isRange = rule.listenPortEnd !== undefined || rule.targetPortEnd !== undefined;
  if (!isRange) {
    if (!isPort(rule.listenPort, true) || !isPort(rule.targetPort, false)) {
      fail('range_invalid', 'ports must be integers in 1..65535');
    }
    return [{ listen: rule.listenPort, target: rule.targetPort }];
  }
  const listenEnd = rule.listenPortEnd ?? rule.listenPort;
  const targetEnd = rule.targetPortEnd ?? rule.targetPort + (listenEnd - rule.listenPort);
  for (const port of [rule.listenPort, listenEnd, rule.targetPort, targetEnd]) {
    if (!isPort(port, false)) fail('range_invalid', 'range ports must be integers in 1..65535');
  }
  if (listenEnd < rule.listenPort || targetEnd < rule.targetPort) {
    fail('range_invalid', 'a range must run from low to high');
  }
  const size = listenEnd - rule.listenPort + 1;
  if (targetEnd - rule.targetPort + 1 !== size) {
    fail('range_invalid', 'the listen and target ranges must have the same length');
  }
  if (size > maxPorts) fail('exceeds_cap', `a range may hold at most ${maxPorts} ports`);
  return Array.from({ length: size }, (_, offset) => ({
    listen: rule.listenPort + offset,
    target: rule.targetPort + offset,
  }));
}

export class Forwarder {
  private readonly log: Logger;
  private readonly options: ForwarderOptions;
  private readonly maxRangePorts: number;
  private readonly rules = new Map<string, ActiveRule>();
  /** Ids being activated, so a concurrent duplicate is refused before it binds anything. */
  private readonly activating = new Set<string>();

  constructor(options: ForwarderOptions = {}) {
    this.log = options.logger ?? silentLogger;
    this.options = options;
    this.maxRangePorts = options.maxRangePorts ?? DEFAULT_MAX_RANGE_PORTS;
  }

  /**
   * Binds every port of the rule or none: on the first failing port everything bound so far is
   * closed and the promise rejects with a RuleActivationError naming that port.
   */
  async activate(rule: RuleSpec): Promise<ActivationResult> {
    try {
      return await this.activateInner(rule);
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

  private async activateInner(rule: RuleSpec): Promise<ActivationResult> {
    if (this.rules.has(rule.ruleId) || this.activating.has(rule.ruleId)) {
      throw new RuleActivationError(rule.ruleId, 'duplicate_rule_id', 'the rule id is active');
    }
    // Callers may be plain JS fed from the wire, so the type is not trusted here.
    const protocol: string = rule.protocol;
    if (protocol !== 'tcp' && protocol !== 'udp') {
      throw new RuleActivationError(
        rule.ruleId,
        'unsupported_protocol',
        'protocol must be tcp or udp',
      );
    }
    if (typeof rule.targetHost !== 'string' || rule.targetHost.length === 0) {
      throw new RuleActivationError(rule.ruleId, 'invalid_target_host', 'the target host is empty');
    }
    const pairs = expandRule(rule, this.maxRangePorts);
    this.activating.add(rule.ruleId);
    const host = this.options.listenHost ?? '::';
    const tcp: TcpPortForwarder[] = [];
    const udp =
      rule.protocol === 'udp'
        ? new UdpRuleRuntime(rule.targetHost, this.log, { ...this.options.udp, host })
        : undefined;
    const ports: number[] = [];
    try {
      // Sequential binds: the first failing port is the one named, as in the reference.
      for (const pair of pairs) {
        try {
          if (udp) {
            ports.push(await udp.bindPort(pair.listen, pair.target));
          } else {
            const forwarder = new TcpPortForwarder(
              pair.listen,
              rule.targetHost,
              pair.target,
              this.log,
              { ...this.options.tcp, host },
            );
            await forwarder.start();
            tcp.push(forwarder);
            ports.push(forwarder.listenPort);
          }
        } catch (error) {
          const reason = bindFailureReason(error);
          throw new RuleActivationError(
            rule.ruleId,
            reason,
            `cannot bind ${rule.protocol} port ${pair.listen}: ${reason}`,
            pair.listen,
            { cause: error },
          );
        }
      }
    } catch (error) {
      await Promise.all([...tcp.map((t) => t.stop(0)), udp?.stop()]);
      throw error;
    } finally {
      this.activating.delete(rule.ruleId);
    }
    this.rules.set(rule.ruleId, { spec: rule, tcp, udp });
    this.log.info(FORWARDER_EVENTS.ruleActivated, {
      rule_id: rule.ruleId,
      protocol: rule.protocol,
      listen_port: ports[0],
      listen_port_end: ports.length > 1 ? ports[ports.length - 1] : undefined,
      target: `${rule.targetHost}:${rule.targetPort}`,
    });
    if (udp) this.log.debug(FORWARDER_EVENTS.udpRuntimeStarted, { rule_id: rule.ruleId, ports });
    return { ok: true, ports };
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

  /** Stats of one rule, or undefined for an unknown id. */
  ruleStats(ruleId: string): RuleStats | undefined {
    const rule = this.rules.get(ruleId);
    return rule ? collect(rule) : undefined;
  }

  /** Stats of every active rule, each with its per-port detail. */
  stats(): RuleStats[] {
    return [...this.rules.values()].map(collect);
  }
}

function collect(rule: ActiveRule): RuleStats {
  const ports: PortStats[] = [];
  for (const t of rule.tcp) {
    const s = t.stats();
    ports.push({
      listen_port: s.listen_port,
      target_port: s.target_port,
      bytes_in: s.bytes_in,
      bytes_out: s.bytes_out,
      active_connections: s.active_connections,
      conn_errors: s.conn_errors,
      datagrams_in: 0,
      datagrams_out: 0,
      active_flows: 0,
      flows_dropped_overflow: 0,
    });
  }
  for (const s of rule.udp?.stats() ?? [])
    ports.push({ ...s, active_connections: 0, conn_errors: 0 });
  const sum = (field: keyof Omit<PortStats, 'listen_port' | 'target_port'>): number =>
    ports.reduce((total, port) => total + port[field], 0);
  return {
    rule_id: rule.spec.ruleId,
    protocol: rule.spec.protocol,
    bytes_in: sum('bytes_in'),
    bytes_out: sum('bytes_out'),
    active_connections: sum('active_connections'),
    conn_errors: sum('conn_errors'),
    datagrams_in: sum('datagrams_in'),
    datagrams_out: sum('datagrams_out'),
    active_flows: sum('active_flows'),
    flows_dropped_overflow: sum('flows_dropped_overflow'),
    ports,
  };
}
