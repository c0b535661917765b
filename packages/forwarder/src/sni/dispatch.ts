/**
 * The ClientHello dispatch of one shared SNI port (reference §5.7): per accepted connection it
 * reads the first bytes without losing any (the socket arrives paused; the bytes are kept and
 * replayed upstream), bounded by a deadline (3 s, a total, so a trickling client cannot extend
 * it), a byte cap (64 KiB) and a cap on peeks in flight (1,024: beyond it a connection is
 * dropped at once), so a silent or slow client never holds the port for others. Then it picks
 * the member route — exact → wildcard → fallback, dropping and counting a miss when there is
 * none — and hands the connection with its bytes to the listener's one forwarding path. It owns
 * the port's routing table, the listener counters (miss, parse failures, the peek-duration
 * histogram) and the `tls.*` events. TLS is never terminated. Depends on node:net, the hello
 * parser, the route table, @portunus/api (histogram bounds) and @portunus/core; not on the
 * listener's copy or on rule bookkeeping.
 */
import type net from 'node:net';

import { SNI_PEEK_BUCKETS_SECONDS } from '@portunus/api';
import type { Logger } from '@portunus/core';

import { FORWARDER_EVENTS } from '../events.js';
import type { TcpRoute } from '../tcp/listener.js';
import { parseClientHello } from './client-hello.js';
import { SniRouteTable, type SniRouteKind } from './route-table.js';

export const DEFAULT_PEEK_TIMEOUT_MS = 3_000;
export const MAX_PEEK_BYTES = 64 * 1024;
export const MAX_PEEKS_IN_FLIGHT = 1024;

export interface SniOptions {
  /** The whole peek's deadline (3 s). */
  peekTimeoutMs?: number;
  /** Bytes read before giving up on a hello (64 KiB). */
  maxPeekBytes?: number;
  /** Peeks in flight per listener (1,024). */
  maxPeeksInFlight?: number;
}

/** Connections routed to a member rule, by how its pattern matched. */
export interface SniRouteCounts {
  exact: number;
  wildcard: number;
  fallback: number;
}

/** A member rule of the port: where its connections go and what it counts. */
export interface SniMember {
  readonly ruleId: string;
  pattern: string | null;
  route: TcpRoute;
  readonly routed: SniRouteCounts;
}

/** The listener counters of one shared SNI port (the wire's SniListenerStats). */
export interface SniListenerStats {
  listen_port: number;
  /** A name no pattern matched on a port without fallback, or no SNI and no fallback. */
  sni_route_miss_total: number;
  /** Not a ClientHello, a malformed one, a timeout, or the byte cap. */
  client_hello_parse_failures_total: number;
  /** Connections dropped because the in-flight peek cap was reached. */
  peek_capacity_drops_total: number;
  /** One count per bound of SNI_PEEK_BUCKETS_SECONDS, then +Inf (not cumulative). */
  client_hello_peek_bucket_counts: number[];
  client_hello_peek_sum_micros: number;
  client_hello_peek_count: number;
  peeks_in_flight: number;
}

type Forward = (client: net.Socket, route: TcpRoute, head: Buffer) => void;

interface Peek {
  readonly owner: SniDispatch;
  readonly client: net.Socket;
  readonly forward: Forward;
  readonly started: bigint;
  timer: NodeJS.Timeout | undefined;
  chunks: Buffer[];
  bytes: number;
}

const PEEK = Symbol('portunus.sni.peek');
type PeekingSocket = net.Socket & { [PEEK]?: Peek };

// Shared handlers (the socket is `this`): no closure per peeking connection.
function onPeekData(this: net.Socket, chunk: Buffer): void {
  const peek = (this as PeekingSocket)[PEEK];
  if (peek) peek.owner.onData(peek, chunk);
}
function onPeekEnd(this: net.Socket): void {
  const peek = (this as PeekingSocket)[PEEK];
  if (peek) peek.owner.fail(peek, 'truncated');
}
function onPeekGone(this: net.Socket): void {
  const peek = (this as PeekingSocket)[PEEK];
  if (peek) peek.owner.abandon(peek);
}
function onPeekTimeout(peek: Peek): void {
  peek.owner.fail(peek, 'timeout');
}
function swallow(): void {
  // A dropped connection's late errors (ECONNRESET) have nothing left to tear down.
}

export class SniDispatch {
  readonly table = new SniRouteTable<SniMember>();
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;
  private readonly maxInFlight: number;
  private readonly peeks = new Set<Peek>();
  private port: number;
  private missTotal = 0;
  private parseFailures = 0;
  private capacityDrops = 0;
  private readonly buckets = new Array<number>(SNI_PEEK_BUCKETS_SECONDS.length + 1).fill(0);
  private sumMicros = 0;
  private count = 0;

  constructor(listenPort: number, log: Logger, options: SniOptions = {}) {
    this.port = listenPort;
    this.log = log;
    this.timeoutMs = options.peekTimeoutMs ?? DEFAULT_PEEK_TIMEOUT_MS;
    this.maxBytes = options.maxPeekBytes ?? MAX_PEEK_BYTES;
    this.maxInFlight = options.maxPeeksInFlight ?? MAX_PEEKS_IN_FLIGHT;
  }

  /** The listener bound its port (the kernel's choice for port 0). */
  bound(port: number): void {
    this.port = port;
    this.log.info(FORWARDER_EVENTS.sniListenerBound, { listen_port: port });
    this.log.info(FORWARDER_EVENTS.sniListenerStarted, { listen_port: port });
  }

  /** The listener stopped accepting: connections still peeking are dropped. */
  stopped(): void {
    for (const peek of this.peeks) this.drop(peek);
    this.log.info(FORWARDER_EVENTS.sniListenerStopped, { listen_port: this.port });
    this.log.info(FORWARDER_EVENTS.sniListenerUnbound, { listen_port: this.port });
  }

  /** An accepted, paused connection: peek its hello, unless too many peeks are in flight. */
  admit(client: net.Socket, forward: Forward): void {
    if (this.peeks.size >= this.maxInFlight) {
      this.capacityDrops++;
      this.log.warn(FORWARDER_EVENTS.sniPeekCapacity, {
        listen_port: this.port,
        in_flight: this.peeks.size,
        source: `${client.remoteAddress ?? ''}:${client.remotePort ?? ''}`,
      });
      client.on('error', swallow);
      client.destroy();
      return;
    }
    const peek: Peek = {
      owner: this,
      client,
      forward,
      started: process.hrtime.bigint(),
      timer: undefined,
      chunks: [],
      bytes: 0,
    };
    peek.timer = setTimeout(onPeekTimeout, this.timeoutMs, peek);
    this.peeks.add(peek);
    (client as PeekingSocket)[PEEK] = peek;
    client.on('error', onPeekGone);
    client.on('close', onPeekGone);
    client.on('end', onPeekEnd);
    client.on('data', onPeekData);
    client.resume();
  }

  /** @internal */
  onData(peek: Peek, chunk: Buffer): void {
    peek.chunks.push(chunk);
    peek.bytes += chunk.length;
    const bytes = peek.chunks.length === 1 ? chunk : Buffer.concat(peek.chunks, peek.bytes);
    if (peek.chunks.length > 1) peek.chunks = [bytes];
    // Nothing past the cap is looked at: a hello that needs more than it is a failure.
    const result = parseClientHello(
      bytes.length > this.maxBytes ? bytes.subarray(0, this.maxBytes) : bytes,
    );
    switch (result.kind) {
      case 'need_more':
        if (peek.bytes >= this.maxBytes) this.fail(peek, 'size_cap');
        return;
      case 'invalid':
        this.fail(peek, result.reason);
        return;
      case 'no_sni': {
        this.finish(peek);
        const chosen = this.table.fallback();
        if (chosen) {
          this.log.debug(FORWARDER_EVENTS.noSni, {
            listen_port: this.port,
            rule_id: chosen.route.ruleId,
          });
          this.route(peek, chosen.route, 'fallback', bytes);
        } else {
          this.miss(peek, FORWARDER_EVENTS.noSni, undefined);
        }
        return;
      }
      case 'sni': {
        this.finish(peek);
        const chosen = this.table.lookup(result.name);
        if (!chosen) {
          this.miss(peek, FORWARDER_EVENTS.sniNoMatch, result.name);
          return;
        }
        this.log.debug(FORWARDER_EVENTS.sniRouted, {
          listen_port: this.port,
          sni: result.name,
          rule_id: chosen.route.ruleId,
          match: chosen.kind,
        });
        this.route(peek, chosen.route, chosen.kind, bytes);
      }
    }
  }

  private route(peek: Peek, member: SniMember, kind: SniRouteKind, head: Buffer): void {
    member.routed[kind]++;
    peek.forward(peek.client, member.route, head);
  }

  private miss(peek: Peek, event: string, name: string | undefined): void {
    this.missTotal++;
    this.log.info(event, {
      listen_port: this.port,
      ...(name !== undefined ? { sni: name } : {}),
      action: 'dropped',
    });
    this.discard(peek.client);
  }

  /** A verdict that drops the connection as a parse failure (timeouts and the cap included). */
  fail(peek: Peek, reason: string): void {
    if (!this.peeks.has(peek)) return;
    this.finish(peek);
    this.parseFailures++;
    const fields = { listen_port: this.port, reason, bytes: peek.bytes };
    if (reason === 'timeout') this.log.info(FORWARDER_EVENTS.clientHelloTimeout, fields);
    else this.log.info(FORWARDER_EVENTS.parseFailed, fields);
    this.discard(peek.client);
  }

  /** The client went away (reset or closed) while peeking: nothing to route or count. */
  abandon(peek: Peek): void {
    if (!this.peeks.delete(peek)) return;
    clearTimeout(peek.timer);
    this.detach(peek.client);
    this.discard(peek.client);
  }

  private drop(peek: Peek): void {
    this.peeks.delete(peek);
    clearTimeout(peek.timer);
    this.detach(peek.client);
    this.discard(peek.client);
  }

  /** Ends the peek with a verdict: timer, listeners, in-flight slot, histogram. */
  private finish(peek: Peek): void {
    this.peeks.delete(peek);
    clearTimeout(peek.timer);
    // Paused before the listeners go: later bytes wait in the socket for the copy.
    peek.client.pause();
    this.detach(peek.client);
    const micros = Number((process.hrtime.bigint() - peek.started) / 1000n);
    const seconds = micros / 1e6;
    let index = SNI_PEEK_BUCKETS_SECONDS.findIndex((bound) => seconds <= bound);
    if (index < 0) index = SNI_PEEK_BUCKETS_SECONDS.length;
    this.buckets[index]!++;
    this.sumMicros += micros;
    this.count++;
  }

  private detach(client: net.Socket): void {
    client.off('data', onPeekData);
    client.off('end', onPeekEnd);
    client.off('error', onPeekGone);
    client.off('close', onPeekGone);
    (client as PeekingSocket)[PEEK] = undefined;
  }

  private discard(client: net.Socket): void {
    client.on('error', swallow);
    client.destroy();
  }

  get inFlight(): number {
    return this.peeks.size;
  }

  stats(): SniListenerStats {
    return {
      listen_port: this.port,
      sni_route_miss_total: this.missTotal,
      client_hello_parse_failures_total: this.parseFailures,
      peek_capacity_drops_total: this.capacityDrops,
      client_hello_peek_bucket_counts: [...this.buckets],
      client_hello_peek_sum_micros: this.sumMicros,
      client_hello_peek_count: this.count,
      peeks_in_flight: this.peeks.size,
    };
  }
}
