/**
 * UDP forwarding for one rule (reference inventory §5.2, DESIGN.md §8.8): a dual-stack socket per
 * listen port, one rule-wide flow table keyed by (listen port, source address:port), one
 * connected upstream socket per flow whose replies go back to that source, an idle reaper and a
 * rule-wide flow cap that drops new flows and never evicts live ones. A new flow asks the rule's
 * connector for its target (dispatch order, name resolution; a failed resolution drops that
 * flow's first datagrams, never the rule) and keeps it for its life; datagrams that arrive
 * meanwhile wait in order. A v2 PROXY target gets a v2 header (DGRAM, the client's address) in
 * front of every datagram. The connector and the ports can change under a running runtime (a
 * replace): live flows keep their upstream. A new flow is admitted by the rule's gate before
 * any upstream socket exists (source lists, owner envelope, rule caps; policy/admission.ts); a
 * refused first datagram is dropped and counted. Under a bandwidth cap, datagrams over budget
 * are dropped and counted, both ways. Owns every socket it opens. The clock and the reaper's
 * timer are injected so tests never wait. Depends only on node:dgram, node:net, the connect,
 * proxy-protocol and policy stages and @portunus/core; rule bookkeeping lives in rule-runtime.ts.
 */
import dgram from 'node:dgram';
import net from 'node:net';

import type { Logger } from '@portunus/core';

import type { RuleConnector, TargetState } from '../connect/connector.js';
import type { QuotaBudget } from '../policy/quota.js';
import { FORWARDER_EVENTS } from '../events.js';
import type { RuleGate } from '../policy/admission.js';
import type { Limiter } from '../policy/limiter.js';
import { proxyV2Header, unmapIpv4 } from '../proxy-protocol/header.js';

export interface Clock {
  now(): number;
}

/** The reaper's timer; tests pass one they fire by hand. */
export interface IntervalScheduler {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export type UdpSocketFactory = (options: dgram.SocketOptions) => dgram.Socket;

export interface UdpOptions {
  /** Listen address; `::` with ipv6Only false serves IPv4 and IPv6 on one socket. */
  host?: string;
  ipv6Only?: boolean;
  idleMs?: number;
  maxFlows?: number;
  /** SO_RCVBUF / SO_SNDBUF for listeners and upstream sockets; the kernel may clamp it. */
  bufferBytes?: number;
  clock?: Clock;
  scheduler?: IntervalScheduler;
  createSocket?: UdpSocketFactory;
}

export interface UdpPortStats {
  listen_port: number;
  target_port: number;
  datagrams_in: number;
  datagrams_out: number;
  bytes_in: number;
  bytes_out: number;
  active_flows: number;
  flows_dropped_overflow: number;
}

export const DEFAULT_UDP_IDLE_MS = 60_000;
export const DEFAULT_UDP_MAX_FLOWS = 1024;
export const DEFAULT_UDP_BUFFER_BYTES = 4 * 1024 * 1024;

const systemClock: Clock = { now: () => Date.now() };
const systemScheduler: IntervalScheduler = {
  setInterval: (callback, ms) => {
    const handle = setInterval(callback, ms);
    // The reaper alone must not keep a process alive.
    handle.unref();
    return handle;
  },
  clearInterval: (handle) => {
    clearInterval(handle as ReturnType<typeof setInterval>);
  },
};

interface PortState {
  readonly listenPort: number;
  /** Position in the rule's range: the target port is the target's port plus this. */
  offset: number;
  readonly socket: dgram.Socket;
  /** The bound address, for the destination of PROXY headers (wildcard when bound to all). */
  readonly localAddress: string;
  datagramsIn: number;
  datagramsOut: number;
  bytesIn: number;
  bytesOut: number;
  activeFlows: number;
  droppedOverflow: number;
  /**
   * The flow of the last datagram on this port: one-flow traffic (the common case) then skips
   * building the flow key and the map lookup for every datagram.
   */
  lastFlow: Flow | undefined;
}

interface Flow {
  readonly key: string;
  readonly port: PortState;
  readonly address: string;
  readonly srcPort: number;
  /** Undefined until the connector has picked a target and the socket is connected. */
  upstream: dgram.Socket | undefined;
  target: TargetState | undefined;
  /** The v2 PROXY header sent before each datagram, for a v2 target. */
  header: Buffer | undefined;
  lastActive: number;
  /** Datagrams that arrived before the upstream was connected; sent in order once it is. */
  pending: Buffer[] | undefined;
  /** The owner's quota budget when the flow opened: every datagram, both ways, is paid for. */
  readonly budget: QuotaBudget | undefined;
  closed: boolean;
  /** The owner limiter the flow was admitted under (released with it, charged per datagram). */
  readonly ownerLimiter: Limiter | undefined;
  /** Callbacks made once per flow, not once per datagram. */
  readonly onSent: (error: Error | null) => void;
  readonly onReplySent: (error: Error | null, bytes: number) => void;
}

function socketType(host: string): 'udp4' | 'udp6' {
  return net.isIPv6(host) ? 'udp6' : 'udp4';
}

export class UdpRuleRuntime {
  /** Where new flows go; swapped by a replace, live flows keep theirs. */
  connector: RuleConnector;
  private readonly log: Logger;
  private readonly host: string;
  private readonly ipv6Only: boolean;
  private readonly idleMs: number;
  private readonly maxFlows: number;
  private readonly bufferBytes: number;
  private readonly clock: Clock;
  private readonly scheduler: IntervalScheduler;
  private readonly createSocket: UdpSocketFactory;
  private readonly ports: PortState[] = [];
  private readonly flows = new Map<string, Flow>();
  private reaper: unknown;
  /** Set while new flows are being dropped, so the overflow is logged once per episode. */
  private overflowing = false;
  private stopped = false;

  constructor(
    connector: RuleConnector,
    log: Logger,
    options: UdpOptions,
    /** The rule's gate; the object lives as long as the rule, a replace reconfigures it. */
    private readonly gate: RuleGate,
  ) {
    this.connector = connector;
    this.log = log;
    this.host = options.host ?? '::';
    this.ipv6Only = options.ipv6Only ?? false;
    this.idleMs = options.idleMs ?? DEFAULT_UDP_IDLE_MS;
    this.maxFlows = options.maxFlows ?? DEFAULT_UDP_MAX_FLOWS;
    this.bufferBytes = options.bufferBytes ?? DEFAULT_UDP_BUFFER_BYTES;
    this.clock = options.clock ?? systemClock;
    this.scheduler = options.scheduler ?? systemScheduler;
    this.createSocket = options.createSocket ?? ((o) => dgram.createSocket(o));
  }

  /** Binds one listen port; rejects with the bind error (its `code` says why). Returns the port. */
  async bindPort(listenPort: number, offset: number): Promise<number> {
    let socket: dgram.Socket;
    try {
      socket = await this.bindSocket(this.host, listenPort);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (this.host !== '::' || (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL')) throw error;
      socket = await this.bindSocket('0.0.0.0', listenPort);
    }
    const bound = socket.address();
    const port: PortState = {
      listenPort: bound.port,
      offset,
      socket,
      localAddress: bound.address,
      datagramsIn: 0,
      datagramsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
      activeFlows: 0,
      droppedOverflow: 0,
      lastFlow: undefined,
    };
    this.ports.push(port);
    socket.on('message', (msg, rinfo) => {
      this.onClientDatagram(port, msg, rinfo);
    });
    socket.on('error', (error) => {
      this.log.warn(FORWARDER_EVENTS.udpListenerError, { listen_port: port.listenPort, error });
    });
    this.reaper ??= this.scheduler.setInterval(
      () => {
        this.sweep();
      },
      Math.max(1, Math.floor(this.idleMs / 4)),
    );
    return port.listenPort;
  }

  /** Moves a bound port to another range offset (a replace that shifted the range). */
  setOffset(listenPort: number, offset: number): void {
    for (const port of this.ports) if (port.listenPort === listenPort) port.offset = offset;
  }

  /** The listen ports bound now, in bind order. */
  boundPorts(): number[] {
    return this.ports.map((port) => port.listenPort);
  }

  /** Closes one listen port and its flows (a replace that dropped it from the range). */
  async unbindPort(listenPort: number): Promise<void> {
    const index = this.ports.findIndex((port) => port.listenPort === listenPort);
    const port = this.ports[index];
    if (!port) return;
    this.ports.splice(index, 1);
    for (const flow of [...this.flows.values()]) if (flow.port === port) this.closeFlow(flow);
    await new Promise<void>((resolve) => {
      port.socket.close(() => {
        resolve();
      });
    });
  }

  private bindSocket(host: string, port: number): Promise<dgram.Socket> {
    const type = host === '::' ? 'udp6' : socketType(host);
    const socket = this.createSocket({ type, ipv6Only: this.ipv6Only });
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        socket.close();
        reject(error);
      };
      socket.once('error', onError);
      socket.bind({ port, address: host, exclusive: true }, () => {
        socket.off('error', onError);
        this.setBuffers(socket, port);
        resolve(socket);
      });
    });
  }

  /** 4 MB buffers cut bursty loss at 30-45 k pps (perf-baselines.md §3); best effort only. */
  private setBuffers(socket: dgram.Socket, port: number): void {
    try {
      socket.setRecvBufferSize(this.bufferBytes);
      socket.setSendBufferSize(this.bufferBytes);
    } catch (error) {
      this.log.debug(FORWARDER_EVENTS.udpBufferSizeFailed, { listen_port: port, error });
    }
  }

  private onClientDatagram(port: PortState, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let flow = port.lastFlow;
    if (flow === undefined || flow.srcPort !== rinfo.port || flow.address !== rinfo.address) {
      const key = `${port.listenPort}|${rinfo.address}|${rinfo.port}`;
      flow = this.flows.get(key);
      if (!flow) {
        // A used-up quota opens no flow; the datagram is dropped unforwarded and uncounted.
        const budget = this.gate.quotaBudget?.();
        if (budget?.exhausted) return;
        flow = this.openFlow(port, key, rinfo, budget);
      }
      if (!flow) {
        port.datagramsIn++;
        port.bytesIn += msg.length;
        return;
      }
      port.lastFlow = flow;
    }
    // Paid for before it is sent (reference §5.10: UDP per datagram); refused ones are not counted.
    if (flow.budget !== undefined && !flow.budget.debit(msg.length)) return;
    port.datagramsIn++;
    port.bytesIn += msg.length;
    flow.lastActive = this.clock.now();
    const owner = flow.ownerLimiter;
    if (
      (this.gate.limiter.bandwidthIn.bucket !== null || owner?.bandwidthIn.bucket != null) &&
      !this.gate.passDatagram(owner, true, msg.length)
    ) {
      return;
    }
    if (flow.pending) {
      flow.pending.push(msg);
      return;
    }
    flow.target!.bytesIn += msg.length;
    // No callback once connected: a send callback costs a nextTick per datagram (~8 % of the
    // forwarder's CPU at 40 k pps). A refused target still shows: the first datagrams go with
    // one (below), and ICMP errors that reach the receive side evict the flow ('error').
    if (flow.header) flow.upstream!.send([flow.header, msg]);
    else flow.upstream!.send(msg);
  }

  private openFlow(
    port: PortState,
    key: string,
    rinfo: dgram.RemoteInfo,
    budget: QuotaBudget | undefined,
  ): Flow | undefined {
    if (this.stopped) return undefined;
    const gate = this.gate;
    // Rule chosen -> admit -> pick and connect an upstream: a refusal drops the datagram.
    if (!gate.admit(rinfo.address, true)) return undefined;
    if (this.flows.size >= this.maxFlows) {
      // The flow never existed: its admission is given back (a rate token stays spent).
      gate.release(gate.owner);
      // Rule-wide cap: the new flow's datagram is dropped; live flows are never evicted.
      port.droppedOverflow++;
      const fields = {
        listen_port: port.listenPort,
        source: `${rinfo.address}:${rinfo.port}`,
        max_flows: this.maxFlows,
      };
      if (!this.overflowing) this.log.warn(FORWARDER_EVENTS.udpFlowDroppedOverflow, fields);
      else this.log.debug(FORWARDER_EVENTS.udpFlowDroppedOverflow, fields);
      this.overflowing = true;
      return undefined;
    }
    const flow: Flow = {
      key,
      port,
      address: rinfo.address,
      srcPort: rinfo.port,
      upstream: undefined,
      target: undefined,
      header: undefined,
      lastActive: this.clock.now(),
      pending: [],
      budget,
      closed: false,
      ownerLimiter: gate.owner,
      onSent: (error) => {
        if (error) this.onUpstreamSendError(flow, error);
      },
      onReplySent: (error, bytes) => {
        this.onReplySent(flow, error, bytes);
      },
    };
    this.flows.set(key, flow);
    port.activeFlows++;
    const connector = this.connector;
    connector.pickUdp(port.offset).then(
      (picked) => {
        this.connectFlow(flow, connector, picked.address, picked.port, picked.target);
      },
      () => {
        // The connector logged and counted the failed resolution; this flow's datagrams are
        // dropped, and the next datagram from the source tries again.
        this.closeFlow(flow);
      },
    );
    return flow;
  }

  private connectFlow(
    flow: Flow,
    connector: RuleConnector,
    address: string,
    targetPort: number,
    target: TargetState,
  ): void {
    if (flow.closed) return;
    const port = flow.port;
    const upstream = this.createSocket({ type: socketType(address) });
    flow.upstream = upstream;
    flow.target = target;
    if (target.spec.proxyProtocol === 'v2') {
      const v4 = net.isIPv4(unmapIpv4(flow.address));
      const wildcard = port.localAddress === '::' || port.localAddress === '0.0.0.0';
      flow.header = proxyV2Header(
        {
          sourceAddress: flow.address,
          sourcePort: flow.srcPort,
          // Without IP_PKTINFO node cannot tell which local address a datagram reached.
          destinationAddress: wildcard ? (v4 ? '0.0.0.0' : '::') : port.localAddress,
          destinationPort: port.listenPort,
        },
        'udp',
      );
    }
    upstream.on('message', (reply) => {
      this.onUpstreamDatagram(flow, reply);
    });
    upstream.on('error', (error) => {
      // On a connected socket, ICMP unreachable surfaces here (ECONNREFUSED): evict the flow so
      // the next datagram rebuilds it, and count it against the target's health.
      this.log.debug(FORWARDER_EVENTS.udpFlowEvictedIcmp, {
        listen_port: port.listenPort,
        source: `${flow.address}:${flow.srcPort}`,
        code: (error as { code?: unknown }).code,
      });
      connector.reportUdpFailure(target, error);
      this.closeFlow(flow);
    });
    upstream.connect(targetPort, address, () => {
      if (flow.closed) return;
      this.setBuffers(upstream, port.listenPort);
      const queued = flow.pending ?? [];
      flow.pending = undefined;
      for (const datagram of queued) {
        target.bytesIn += datagram.length;
        upstream.send(flow.header ? [flow.header, datagram] : datagram, flow.onSent);
      }
    });
    this.log.debug(FORWARDER_EVENTS.udpFlowOpened, {
      listen_port: port.listenPort,
      source: `${flow.address}:${flow.srcPort}`,
      target: `${address}:${targetPort}`,
    });
  }

  private onUpstreamSendError(flow: Flow, error: Error): void {
    this.log.debug(FORWARDER_EVENTS.udpUpstreamConnectFailed, {
      listen_port: flow.port.listenPort,
      source: `${flow.address}:${flow.srcPort}`,
      code: (error as { code?: unknown }).code,
    });
  }

  private onUpstreamDatagram(flow: Flow, reply: Buffer): void {
    if (flow.closed) return;
    if (flow.budget !== undefined && !flow.budget.debit(reply.length)) return;
    flow.lastActive = this.clock.now();
    const owner = flow.ownerLimiter;
    if (
      (this.gate.limiter.bandwidthOut.bucket !== null || owner?.bandwidthOut.bucket != null) &&
      !this.gate.passDatagram(owner, false, reply.length)
    ) {
      return;
    }
    flow.port.socket.send(reply, flow.srcPort, flow.address, flow.onReplySent);
  }

  private onReplySent(flow: Flow, error: Error | null, bytes: number): void {
    const port = flow.port;
    if (error) {
      this.log.debug(FORWARDER_EVENTS.udpReplySendFailed, {
        listen_port: port.listenPort,
        source: `${flow.address}:${flow.srcPort}`,
        code: (error as { code?: unknown }).code,
      });
      return;
    }
    port.datagramsOut++;
    port.bytesOut += bytes;
    if (flow.target) flow.target.bytesOut += bytes;
  }

  private closeFlow(flow: Flow): void {
    if (flow.closed) return;
    flow.closed = true;
    this.flows.delete(flow.key);
    this.gate.release(flow.ownerLimiter);
    if (flow.port.lastFlow === flow) flow.port.lastFlow = undefined;
    flow.port.activeFlows--;
    this.overflowing = false;
    try {
      flow.upstream?.close();
    } catch {
      // Already closed by an error path: nothing left to release.
    }
  }

  /** Closes flows idle for at least idleMs. Runs every idleMs/4 from the injected scheduler. */
  sweep(): void {
    const cutoff = this.clock.now() - this.idleMs;
    for (const flow of this.flows.values()) {
      if (flow.lastActive > cutoff) continue;
      this.closeFlow(flow);
      this.log.debug(FORWARDER_EVENTS.udpFlowClosedIdle, {
        listen_port: flow.port.listenPort,
        source: `${flow.address}:${flow.srcPort}`,
      });
    }
  }

  /** Closes every listener and flow; no drain for datagrams. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reaper !== undefined) this.scheduler.clearInterval(this.reaper);
    this.reaper = undefined;
    for (const flow of [...this.flows.values()]) this.closeFlow(flow);
    await Promise.all(
      this.ports.map(
        (port) =>
          new Promise<void>((resolve) => {
            port.socket.close(() => {
              resolve();
            });
          }),
      ),
    );
    this.ports.length = 0;
  }

  get flowCount(): number {
    return this.flows.size;
  }

  stats(): UdpPortStats[] {
    return this.ports.map((port) => ({
      listen_port: port.listenPort,
      target_port: this.connector.targets[0]?.portAt(port.offset) ?? 0,
      datagrams_in: port.datagramsIn,
      datagrams_out: port.datagramsOut,
      bytes_in: port.bytesIn,
      bytes_out: port.bytesOut,
      active_flows: port.activeFlows,
      flows_dropped_overflow: port.droppedOverflow,
    }));
  }
}
