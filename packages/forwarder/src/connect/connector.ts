/**
 * The connect stage of a rule (reference inventory §5.4, §5.5): for each new TCP connection or
 * UDP flow it picks targets in dispatch order — healthy ones by priority, then failed ones (so
 * when all have failed the top one is still tried first) — resolves the target's name through
 * the process-wide resolver, and dials each address with a per-attempt timeout, moving on to the
 * next address and then the next target when one fails. A failed connect is therefore retried
 * here and never reaches the copy stage, which only ever sees mid-stream errors. It keeps each
 * target's health (passive, plus an optional TCP probe every `health_check_interval_secs`) and
 * per-target counters, which restart with a new rule definition; rule-wide counters (DNS
 * failures, failovers) are handed in and survive a replace. Depends on node:net, the resolver
 * and @portunus/core; knows nothing of listeners or copying.
 */
import net from 'node:net';

import { PortunusError, type Logger } from '@portunus/core';

import type { DnsResolver } from '../dns/resolver.js';
import { FORWARDER_EVENTS } from '../events.js';
import {
  targetsByPriority,
  type RuleSpec,
  type TargetSpec,
  type TargetStats,
} from '../rule-spec.js';
import { TargetHealth } from './health.js';

/** Dials the upstream; injectable so tests can observe or fail dials. */
export type TcpDialer = (options: net.TcpNetConnectOpts) => net.Socket;

export interface Clock {
  now(): number;
}

/** Counters of a rule that outlive its definition (kept across replaces). */
export interface RuleCounters {
  dnsFailures: number;
  failovers: number;
}

export interface ConnectorOptions {
  resolver: DnsResolver;
  log: Logger;
  counters: RuleCounters;
  connectTimeoutMs: number;
  probeTimeoutMs?: number;
  clock?: Clock;
  dial?: TcpDialer;
  /** Socket options for dialled upstreams (highWaterMark, noDelay, allowHalfOpen). */
  socketOptions?: Partial<net.TcpNetConnectOpts> & { highWaterMark?: number };
}

export const DEFAULT_PROBE_TIMEOUT_MS = 5_000;

const systemClock: Clock = { now: () => Date.now() };
const defaultDialer: TcpDialer = (options) => net.connect(options);

/** One target of the current definition with its health and counters. */
export class TargetState {
  readonly health = new TargetHealth();
  /** Bytes of finished connections/flows; live ones are added by the listeners. */
  bytesIn = 0;
  bytesOut = 0;
  connectionsAccepted = 0;

  constructor(
    readonly spec: TargetSpec,
    readonly index: number,
  ) {}

  /** The target port for the listen port at `offset` in a range rule. */
  portAt(offset: number): number {
    return this.spec.port + offset;
  }
}

export interface TcpConnected {
  socket: net.Socket;
  target: TargetState;
}

export interface UdpPicked {
  address: string;
  port: number;
  target: TargetState;
}

/** Why a connection was dropped: every target failed, some of them by name resolution. */
export function allTargetsFailed(ruleId: string, dnsOnly: boolean, cause: unknown): PortunusError {
  return new PortunusError(
    dnsOnly ? 'dns_failed' : 'all_targets_failed',
    dnsOnly ? 'no target name could be resolved' : 'no target of the rule could be connected',
    { rule_id: ruleId },
    { cause },
  );
}

export class RuleConnector {
  readonly ruleId: string;
  readonly targets: TargetState[];
  private readonly ordered: TargetState[];
  private readonly preferIpv6: boolean;
  private readonly options: ConnectorOptions;
  private readonly clock: Clock;
  private readonly dial: TcpDialer;
  private probeTimer: ReturnType<typeof setInterval> | undefined;
  private probeNext = 0;
  private probing = false;
  private closed = false;

  constructor(spec: RuleSpec, options: ConnectorOptions) {
    this.ruleId = spec.ruleId;
    this.targets = spec.targets.map((target, index) => new TargetState(target, index));
    const byTarget = new Map(this.targets.map((state) => [state.spec, state]));
    this.ordered = targetsByPriority(spec.targets).map((t) => byTarget.get(t)!);
    this.preferIpv6 = spec.preferIpv6;
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.dial = options.dial ?? defaultDialer;
    const interval = spec.healthCheckIntervalSecs ?? 0;
    if (interval > 0 && spec.protocol === 'tcp') this.startProbes(interval * 1000);
  }

  /** Healthy targets by priority, then failed ones by priority. */
  candidates(): TargetState[] {
    const healthy = this.ordered.filter((t) => t.health.state === 'healthy');
    if (healthy.length === this.ordered.length) return this.ordered;
    return [...healthy, ...this.ordered.filter((t) => t.health.state !== 'healthy')];
  }

  /**
   * Connects to the first target that answers. Resolves with the connected socket (its connect
   * listeners removed) or rejects with `all_targets_failed` / `dns_failed`.
   */
  async connectTcp(offset: number): Promise<TcpConnected> {
    let lastError: unknown;
    let dnsOnly = true;
    for (const target of this.candidates()) {
      if (this.closed) break;
      // An IP literal skips the resolver's await: the common case costs one dial promise.
      const host = target.spec.host;
      const addresses = net.isIP(host) !== 0 ? [host] : await this.resolveTarget(target, 'tcp');
      if (!addresses) continue;
      dnsOnly = false;
      const port = target.portAt(offset);
      for (const address of addresses) {
        try {
          const socket = await this.dialOnce(address, port, this.options.connectTimeoutMs);
          this.recordSuccess(target);
          target.connectionsAccepted++;
          return { socket, target };
        } catch (error) {
          lastError = error;
        }
      }
      this.recordFailure(target, lastError);
    }
    throw allTargetsFailed(this.ruleId, dnsOnly, lastError);
  }

  /**
   * The address a new UDP flow sends to: the first target, in dispatch order, whose name
   * resolves. UDP has no connect to fail, so health only changes through ICMP errors and
   * probes; the flow keeps this target for its whole life.
   */
  async pickUdp(offset: number): Promise<UdpPicked> {
    for (const target of this.candidates()) {
      const addresses = await this.resolveTarget(target, 'udp');
      const address = addresses?.[0];
      if (address === undefined) continue;
      target.connectionsAccepted++;
      return { address, port: target.portAt(offset), target };
    }
    throw allTargetsFailed(this.ruleId, true, undefined);
  }

  /**
   * The connect deadline when dials may be made by the splice addon (native accept), or undefined
   * when an injected dialer must see every dial.
   */
  get nativeDialTimeoutMs(): number | undefined {
    return this.options.dial === undefined ? this.options.connectTimeoutMs : undefined;
  }

  /** A dial the splice addon made itself failed (native accept): counts as a failed connect. */
  reportTcpFailure(target: TargetState, code: string): void {
    this.recordFailure(target, { code });
  }

  /** A UDP flow's target answered with ICMP unreachable: counts as a failed connect. */
  reportUdpFailure(target: TargetState, error: unknown): void {
    this.recordFailure(target, error);
  }

  private async resolveTarget(
    target: TargetState,
    transport: 'tcp' | 'udp',
  ): Promise<string[] | undefined> {
    const host = target.spec.host;
    if (net.isIP(host) !== 0) return [host];
    try {
      return await this.options.resolver.resolve(host, this.preferIpv6);
    } catch (error) {
      this.options.counters.dnsFailures++;
      this.options.log.warn(
        transport === 'tcp' ? FORWARDER_EVENTS.dnsFailed : FORWARDER_EVENTS.udpDnsFailed,
        {
          rule_id: this.ruleId,
          target: `${host}:${target.spec.port}`,
          reason: (error as Partial<PortunusError>).fields?.['reason'],
        },
      );
      this.recordFailure(target, error);
      return undefined;
    }
  }

  /** One dial with a deadline; the socket comes back with no listeners of ours left on it. */
  private dialOnce(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const socket = this.dial({
        allowHalfOpen: true,
        noDelay: true,
        ...this.options.socketOptions,
        host,
        port,
      });
      const cleanup = (): void => {
        clearTimeout(timer);
        socket.off('connect', onConnect);
        socket.off('error', onError);
      };
      const onConnect = (): void => {
        cleanup();
        resolve(socket);
      };
      const onError = (error: Error): void => {
        cleanup();
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(() => {
        onError(Object.assign(new Error('upstream connect timed out'), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      socket.once('connect', onConnect);
      socket.on('error', onError);
    });
  }

  private recordSuccess(target: TargetState): void {
    if (target.health.recordSuccess(this.clock.now())) this.transition(target);
  }

  private recordFailure(target: TargetState, error: unknown): void {
    this.options.log.debug(FORWARDER_EVENTS.targetDialFailed, {
      rule_id: this.ruleId,
      target: `${target.spec.host}:${target.spec.port}`,
      code: (error as { code?: unknown } | undefined)?.code,
    });
    if (target.health.recordFailure(this.clock.now())) this.transition(target);
  }

  private transition(target: TargetState): void {
    this.options.counters.failovers++;
    this.options.log.info(FORWARDER_EVENTS.targetHealthChanged, {
      rule_id: this.ruleId,
      target: `${target.spec.host}:${target.spec.port}`,
      index: target.index,
      health: target.health.state,
    });
  }

  private startProbes(intervalMs: number): void {
    this.probeTimer = setInterval(() => {
      void this.probe();
    }, intervalMs);
    // Probes alone must not keep a process alive.
    this.probeTimer.unref();
  }

  /** One TCP-connect probe of the next target in turn; never more than one in flight. */
  private async probe(): Promise<void> {
    if (this.probing || this.closed) return;
    const target = this.targets[this.probeNext % this.targets.length];
    this.probeNext++;
    if (!target) return;
    this.probing = true;
    try {
      const addresses = await this.resolveTarget(target, 'tcp');
      const address = addresses?.[0];
      if (address === undefined) return;
      try {
        const socket = await this.dialOnce(
          address,
          target.spec.port,
          this.options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
        );
        socket.destroy();
        if (this.isClosed()) return;
        this.options.log.debug(FORWARDER_EVENTS.targetProbeOk, {
          rule_id: this.ruleId,
          index: target.index,
        });
        this.recordSuccess(target);
      } catch (error) {
        if (this.isClosed()) return;
        this.options.log.debug(FORWARDER_EVENTS.targetProbeFailed, {
          rule_id: this.ruleId,
          index: target.index,
          code: (error as { code?: unknown }).code,
        });
        this.recordFailure(target, error);
      }
    } finally {
      this.probing = false;
    }
  }

  /** A method, so checks after an await are not narrowed away. */
  private isClosed(): boolean {
    return this.closed;
  }

  /** Stops the probes; connections already made keep their sockets. */
  close(): void {
    this.closed = true;
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }

  /** Per-target stats; `live` adds the bytes of connections still open. */
  stats(live: Map<TargetState, { bytesIn: number; bytesOut: number }>): TargetStats[] {
    return this.targets.map((target) => {
      const open = live.get(target);
      return {
        index: target.index,
        host: target.spec.host,
        port: target.spec.port,
        priority: target.spec.priority,
        health: target.health.state,
        consecutive_failures: target.health.consecutiveFailures,
        last_failure_at_unix_ms: target.health.lastFailureAt,
        last_success_at_unix_ms: target.health.lastSuccessAt,
        bytes_in: target.bytesIn + (open?.bytesIn ?? 0),
        bytes_out: target.bytesOut + (open?.bytesOut ?? 0),
        connections_accepted: target.connectionsAccepted,
      };
    });
  }
}
