/**
 * The live fleet: one session per connected client (keyed by client_id; a newer stream for the
 * same id ends the older one), rule pushes with a request id and an ack budget, REMOVE on
 * deletion, owner rate-limit envelopes (SET/REMOVE, and SET for each envelope right after the rule
 * replay), and what the clients' RuleStatus and StatsReport messages change (reference §4.3).
 * Rule state is written to the store here, so a late ack still lands. Pushes are never queued: no
 * session, no push. It owns no sockets (service.ts does) and no HTTP.
 */
import type { Database } from 'better-sqlite3';

import { EVENTS, PortunusError, type ErrorCode, type Logger } from '@portunus/core';
import {
  FEATURE_MIN_VERSION,
  versionAtLeast,
  type Hello,
  type PerTargetStats,
  type RuleStatus,
  type ServerMessage,
  type StatsReport,
  type TrafficQuotaUpdate,
} from '@portunus/proto';
import { Gauge } from 'prom-client';

import {
  countActiveSniRules,
  getRule,
  listOwnerRateLimits,
  setRuleState,
  type RateLimit,
  type Rule,
} from '@portunus/store';

import { ulid } from '../identity/secrets.js';
import type { ServerMetrics } from '../metrics.js';
import type { Fleet, LiveConnection, PushOutcome } from '../operator/context.js';
import type { TrafficRecorder } from '../traffic/accounting.js';
import {
  RuleStatsTable,
  type RuleLabels,
  type RuleStatsListener,
  type RuleStatsSnapshot,
  type TargetStatsSnapshot,
} from './rule-stats.js';
import { SniListenerTable } from './sni-stats.js';
import {
  capabilitiesOf,
  capabilityGate,
  ownerRateLimitGate,
  toWireRule,
  wireRateLimit,
  type ClientCapabilities,
  type GatedRule,
} from './wire.js';

/** How a session's stream is ended: terminal (the client stops retrying) or not. */
export type EndReason =
  | { kind: 'revoked' | 'rotated'; terminal: true }
  | { kind: 'superseded' | 'shutdown'; terminal: false };

/** The stream side of a session, as service.ts provides it. */
export interface SessionStream {
  send(message: ServerMessage): void;
  end(reason: EndReason): void;
}

interface Session {
  readonly clientId: string;
  readonly clientName: string;
  readonly remoteAddr: string;
  readonly connectedAt: number;
  readonly caps: ClientCapabilities;
  readonly stream: SessionStream;
  readonly waiters: Map<string, (outcome: PushOutcome) => void>;
  /**
   * Request ids of pushes that replace a stored rule's definition (an edit, a restore): a
   * FAILED answer to one leaves the stored rule as it was, since the client keeps running it.
   */
  readonly replacing: Map<string, Rule>;
}

export interface ControlFleetOptions {
  db: Database;
  logger: Logger;
  metrics: ServerMetrics;
  now: () => number;
  /** Turns each report round into stored traffic history (one transaction per round). */
  traffic?: TrafficRecorder;
  /** The quota state replayed to a client after its Welcome (traffic/quotas.ts). */
  quotas?: { replayFor(clientId: string): TrafficQuotaUpdate[] };
  /** Sessions coming and going and per-target health as reported (traffic/alerts.ts). */
  observer?: FleetObserver;
}

/** What the alerting side learns from the fleet; called after the fleet's own bookkeeping. */
export interface FleetObserver {
  clientOnline(client: { clientId: string; clientName: string }): void;
  clientOffline(client: { clientId: string; clientName: string }): void;
  targetHealth(
    rule: { ruleId: number; clientId: string; clientName: string; ownerUserId: string },
    targets: readonly PerTargetStats[],
  ): void;
}

export class ControlFleet implements Fleet {
  readonly stats = new RuleStatsTable();
  readonly sniListeners = new SniListenerTable();
  private readonly sessions = new Map<string, Session>();
  private readonly ruleLabels = new Map<number, RuleLabels & { clientId: string }>();

  constructor(private readonly options: ControlFleetOptions) {
    this.stats.register(options.metrics.registry);
    this.sniListeners.register(options.metrics.registry);
    const db = options.db;
    new Gauge({
      name: 'portunus_tls_sni_routes_active',
      help: 'Active rules with an sni_pattern, counted in the store at each scrape.',
      registers: [options.metrics.registry],
      collect(this: Gauge) {
        this.set(countActiveSniRules(db));
      },
    });
  }

  isConnected(clientId: string): boolean {
    return this.sessions.has(clientId);
  }

  connection(clientId: string): LiveConnection | undefined {
    const session = this.sessions.get(clientId);
    return session && { remoteAddr: session.remoteAddr, connectedAt: session.connectedAt };
  }

  connectedCount(): number {
    return this.sessions.size;
  }

  gate(rule: GatedRule): ErrorCode | undefined {
    const session = this.sessions.get(rule.clientId);
    return session && capabilityGate(rule, session.caps);
  }

  ruleStats(ruleId: number): RuleStatsSnapshot | undefined {
    return this.stats.get(ruleId);
  }

  liveTargetHealth(): ReadonlyMap<number, readonly TargetStatsSnapshot[]> {
    return this.stats.liveTargetHealth();
  }

  subscribeRuleStats(ruleId: number, listener: RuleStatsListener): () => void {
    return this.stats.subscribe(ruleId, listener);
  }

  disconnect(clientId: string, reason: 'revoked' | 'rotated'): void {
    const session = this.sessions.get(clientId);
    if (!session) return;
    this.unregister(session);
    session.stream.end({ kind: reason, terminal: true });
  }

  /**
   * A client finished its Hello: it becomes the live session for its id (ending an older one),
   * and every Active rule of it is sent again — or marked Failed when a gate now refuses it.
   */
  open(
    client: { clientId: string; clientName: string; remoteAddr: string },
    hello: Hello | undefined,
    stream: SessionStream,
  ): Session {
    const previous = this.sessions.get(client.clientId);
    if (previous) {
      this.unregister(previous);
      previous.stream.end({ kind: 'superseded', terminal: false });
    }
    const session: Session = {
      ...client,
      connectedAt: this.options.now(),
      caps: capabilitiesOf(hello),
      stream,
      waiters: new Map(),
      replacing: new Map(),
    };
    this.sessions.set(client.clientId, session);
    this.options.metrics.clientsConnected.set(this.sessions.size);
    this.options.observer?.clientOnline(client);
    return session;
  }

  /** Reference §4.4: quotas need a live client of at least FEATURE_MIN_VERSION.quota. */
  quotaGate(clientId: string): 'quota_unsupported_by_client' | undefined {
    const session = this.sessions.get(clientId);
    if (!session || !versionAtLeast(session.caps.clientVersion, FEATURE_MIN_VERSION.quota)) {
      return 'quota_unsupported_by_client';
    }
    return undefined;
  }

  /** Sends a quota update to a live, able client; false when it was not sent. */
  sendQuota(clientId: string, update: TrafficQuotaUpdate): boolean {
    if (this.quotaGate(clientId)) return false;
    const session = this.sessions.get(clientId);
    if (!session) return false;
    try {
      session.stream.send({ traffic_quota_update: update });
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Reference §4.3 step 3: right after the Welcome, before any rule, the state of each quota on
   * the client — skipped for a client too old to enforce it (§4.4 "replay skipped").
   */
  replayQuotas(session: Session): number {
    if (this.quotaGate(session.clientId)) return 0;
    const updates = this.options.quotas?.replayFor(session.clientId) ?? [];
    for (const update of updates) session.stream.send({ traffic_quota_update: update });
    return updates.length;
  }

  /** Sends every Active rule of the session's client again (after Welcome). */
  replay(session: Session, rules: readonly Rule[]): { replayed: number; gated: number } {
    const plan = this.planReplay(session, rules);
    this.sendReplay(session, plan.rules);
    return { replayed: plan.rules.length, gated: plan.gated };
  }

  /**
   * The Active rules that will be replayed; those a gate now refuses are marked Failed here. The
   * Welcome names the result, so the client can stop whatever else it still runs.
   */
  planReplay(session: Session, rules: readonly Rule[]): { rules: Rule[]; gated: number } {
    const send: Rule[] = [];
    let gated = 0;
    for (const rule of rules) {
      if (rule.state.kind !== 'active') continue;
      const gate = capabilityGate(rule, session.caps);
      if (gate) {
        setRuleState(this.options.db, rule.ruleId, { kind: 'failed', reason: gate }, this.now());
        gated += 1;
        continue;
      }
      send.push(rule);
    }
    // Patterned rules first: a fresh edge makes an SNI port from its first patterned member, so
    // a fallback replayed before them would open the port as a plain one (docs/sni-routing.md).
    // The sort is stable: otherwise the stored order stays.
    send.sort((a, b) => Number(a.sniPattern === null) - Number(b.sniPattern === null));
    return { rules: send, gated };
  }

  /**
   * Sends the planned rules, then SET for every owner envelope of the client (reference §4.3 step
   * 3: after the rules; skipped for a client too old for envelopes, §4.4).
   */
  sendReplay(session: Session, rules: readonly Rule[]): void {
    for (const rule of rules) {
      this.remember(rule);
      // Replayed rules stay Active while the client re-binds: an ack that never comes (the
      // client died again) must not strand them as Pending, which is never replayed.
      session.stream.send({
        rule_update: { request_id: `replay-${ulid()}`, action: 'PUSH', rule: toWireRule(rule) },
      });
    }
    if (ownerRateLimitGate(session.caps)) return;
    for (const envelope of listOwnerRateLimits(this.options.db, session.clientId)) {
      this.sendEnvelope(session, envelope.ownerUserId, envelope.rateLimit);
    }
  }

  ownerRateLimitGate(clientId: string): ErrorCode | undefined {
    const session = this.sessions.get(clientId);
    return session ? ownerRateLimitGate(session.caps) : 'rate_limit_unsupported_by_client';
  }

  /**
   * Sends OwnerRateLimitUpdate SET (`rateLimit`) or REMOVE (null) to the live session of the
   * client, if it takes envelopes; false when nothing was sent. A removed envelope's aggregate
   * rows stop at once.
   */
  sendOwnerRateLimit(clientId: string, ownerUserId: string, rateLimit: RateLimit | null): boolean {
    if (rateLimit === null) this.stats.retireOwner(clientId, ownerUserId);
    const session = this.sessions.get(clientId);
    if (!session || ownerRateLimitGate(session.caps)) return false;
    try {
      this.sendEnvelope(session, ownerUserId, rateLimit);
      return true;
    } catch {
      return false;
    }
  }

  private sendEnvelope(session: Session, ownerUserId: string, rateLimit: RateLimit | null): void {
    session.stream.send({
      owner_rate_limit_update: {
        client_name: session.clientName,
        client_id: session.clientId,
        owner_id: ownerUserId,
        action: rateLimit === null ? 'REMOVE' : 'SET',
        rate_limit: wireRateLimit(rateLimit),
      },
    });
  }

  close(session: Session): void {
    if (this.sessions.get(session.clientId) === session) this.unregister(session);
  }

  /**
   * Pushes a stored Pending rule and waits up to `ackTimeoutMs` for its RuleStatus. The store is
   * updated by `status()` whenever the answer comes; this only reports what happened in time.
   */
  async push(
    rule: Rule,
    ackTimeoutMs: number,
    options: { replace?: boolean } = {},
  ): Promise<PushOutcome> {
    const session = this.sessions.get(rule.clientId);
    if (!session) return { kind: 'not_connected' };
    const requestId = ulid();
    if (options.replace) session.replacing.set(requestId, rule);
    else this.remember(rule);
    const outcome = new Promise<PushOutcome>((resolve) => {
      const timer = setTimeout(() => {
        session.waiters.delete(requestId);
        resolve({ kind: 'timeout' });
      }, ackTimeoutMs);
      session.waiters.set(requestId, (result) => {
        clearTimeout(timer);
        session.waiters.delete(requestId);
        resolve(result);
      });
    });
    try {
      session.stream.send({
        rule_update: { request_id: requestId, action: 'PUSH', rule: toWireRule(rule) },
      });
    } catch {
      session.waiters.get(requestId)?.({ kind: 'not_connected' });
    }
    return outcome;
  }

  /**
   * Sends REMOVE for rules the store no longer has; their gauges stop at once. Every rule a live
   * client runs was pushed or replayed by this process, so the fleet knows its client.
   */
  remove(ruleIds: readonly number[]): void {
    for (const ruleId of ruleIds) {
      this.stats.retire(ruleId);
      const clientId = this.ruleLabels.get(ruleId)?.clientId;
      this.ruleLabels.delete(ruleId);
      const session = clientId === undefined ? undefined : this.sessions.get(clientId);
      if (!session) continue;
      session.stream.send({
        rule_update: {
          request_id: ulid(),
          action: 'REMOVE',
          rule: {
            rule_id: String(ruleId),
            listen_port: 0,
            target_host: '',
            target_port: 0,
            protocol: 'PROTOCOL_UNSPECIFIED',
            listen_port_end: 0,
            target_port_end: 0,
            targets: [],
            health_check_interval_secs: 0,
          },
        },
      });
    }
  }

  /** A RuleStatus from the client: the store learns the state, a waiting push its answer. */
  status(session: Session, status: RuleStatus): void {
    const ruleId = Number(status.rule_id);
    const owned = this.ruleOf(ruleId);
    const log = {
      client_id: session.clientId,
      rule_id: status.rule_id,
      request_id: status.request_id,
    };
    if (owned && owned.clientId !== session.clientId) {
      this.options.logger.warn(EVENTS.ruleStatusWrongClient, log);
      return;
    }
    let outcome: PushOutcome | undefined;
    if (status.outcome === 'ACTIVATED') outcome = { kind: 'activated' };
    if (status.outcome === 'FAILED') {
      outcome = { kind: 'failed', reason: status.reason === '' ? 'unspecified' : status.reason };
    }
    const replaced = session.replacing.get(status.request_id);
    if (replaced && outcome) {
      session.replacing.delete(status.request_id);
      if (outcome.kind === 'activated') this.remember(replaced);
    }
    // A refused replacement leaves the stored rule alone: the client keeps running the old one.
    const refusedReplacement = replaced !== undefined && outcome?.kind === 'failed';
    if (outcome && owned && !refusedReplacement) {
      const state =
        outcome.kind === 'failed'
          ? { kind: 'failed' as const, reason: outcome.reason }
          : { kind: 'active' as const };
      try {
        setRuleState(this.options.db, ruleId, state, this.now());
      } catch (error) {
        // Deleted meanwhile: nothing to record.
        if (!(error instanceof PortunusError && error.code === 'rule_not_found')) throw error;
      }
    }
    const waiter = session.waiters.get(status.request_id);
    if (waiter && outcome) waiter(outcome);
    else if (!status.request_id.startsWith('replay-') && status.outcome !== 'REMOVED') {
      this.options.logger.info(EVENTS.ruleStatusUnmatched, { ...log, outcome: status.outcome });
    }
  }

  report(session: Session, report: StatsReport): void {
    const now = this.now();
    const readings: { ruleId: number; bytesIn: number; bytesOut: number }[] = [];
    for (const stats of report.stats) {
      const ruleId = Number(stats.rule_id);
      const labels = this.ruleOf(ruleId);
      if (labels?.clientId !== session.clientId) continue;
      this.stats.record(ruleId, labels, stats, now);
      if (stats.per_target.length > 0) {
        this.options.observer?.targetHealth(
          {
            ruleId,
            clientId: labels.clientId,
            clientName: labels.clientName,
            ownerUserId: labels.ownerUserId,
          },
          stats.per_target,
        );
      }
      readings.push({ ruleId, bytesIn: stats.bytes_in, bytesOut: stats.bytes_out });
    }
    this.sniListeners.record(session.clientId, session.clientName, report.sni_listener_stats ?? []);
    this.stats.recordOwners(
      session.clientId,
      session.clientName,
      report.owner_rate_limit_stats ?? [],
    );
    this.options.traffic?.recordRound(session.clientId, readings);
  }

  /** Ends every session (server shutdown); clients reconnect to the next server. */
  shutdown(): void {
    for (const session of [...this.sessions.values()]) {
      this.unregister(session);
      session.stream.end({ kind: 'shutdown', terminal: false });
    }
  }

  private unregister(session: Session): void {
    this.sessions.delete(session.clientId);
    this.options.metrics.clientsConnected.set(this.sessions.size);
    for (const waiter of [...session.waiters.values()]) waiter({ kind: 'lost' });
    this.options.observer?.clientOffline(session);
  }

  private remember(rule: Rule): void {
    this.ruleLabels.set(rule.ruleId, {
      clientId: rule.clientId,
      clientName: rule.clientName,
      ownerUserId: rule.ownerUserId,
      protocol: rule.protocol,
      multiTarget: rule.targets.length > 1,
      sni: rule.sniPattern !== null,
      capped: rule.rateLimit !== null,
      restricted: rule.allowedSources.length > 0 || rule.deniedSources.length > 0,
    });
  }

  /** Labels of a rule, from the push that sent it or, after a restart, from the store. */
  private ruleOf(ruleId: number): (RuleLabels & { clientId: string }) | undefined {
    const known = this.ruleLabels.get(ruleId);
    if (known) return known;
    if (!Number.isSafeInteger(ruleId)) return undefined;
    const rule = getRule(this.options.db, ruleId);
    if (!rule) return undefined;
    this.remember(rule);
    return this.ruleLabels.get(ruleId);
  }

  private now(): number {
    return this.options.now();
  }
}
