/**
 * One control-stream session (reference §4.3): pin-checked connect, `Control.Channel` with the
 * bearer, Hello, then the server's Welcome and rule updates answered with RuleStatus, and a
 * periodic StatsReport. The data plane is not the session's: the daemon hands in the Forwarder
 * it keeps for the whole process, so a stream blip drops no traffic and resets no counters or
 * health. On Welcome the session applies the server's UDP tunables to rules started from then
 * on and, when the Welcome carries a complete replay manifest, stops every running rule the
 * server will not replay; replayed rules that are unchanged keep running untouched. A PUSH of a
 * running id is a replace (forwarder.apply): open connections keep their upstream, and a
 * definition that cannot be activated leaves the old one running and answers FAILED; a PUSH
 * that changes only caps or source lists is the same replace, so open connections move to the
 * new caps at once. OwnerRateLimitUpdate SET / REMOVE go to the forwarder's owner envelopes,
 * which live as long as the process (reference §4.3), so a reconnect keeps them until the
 * server's replay sets them again. Reconnecting, backoff and signals are daemon.ts's. Depends on proto, forwarder and core; never
 * on SQLite, HTTP or the bundle file.
 */
import { ERROR_CATALOGUE, EVENTS, isPortunusError, type Logger } from '@portunus/core';
import {
  DEFAULT_UDP_IDLE_MS,
  DEFAULT_UDP_MAX_FLOWS,
  isRuleActivationError,
  sameRule,
  type Forwarder,
} from '@portunus/forwarder';
import {
  ControlClient,
  PROTOCOL_VERSION,
  bearerMetadata,
  grpc,
  type ClientMessage,
  type RuleStatus,
  type OwnerRateLimitUpdate,
  type RuleUpdate,
  type ServerMessage,
  type TrafficQuotaUpdate,
  type Welcome,
} from '@portunus/proto';

import {
  fetchPinnedCertificate,
  grpcTarget,
  pinnedChannelOptions,
  pinnedCredentials,
} from './pinning.js';
import { CLIENT_VERSION } from './version.js';
import {
  ownerStatsToWire,
  rateLimitFromWire,
  ruleFromWire,
  sniListenerStatsToWire,
  statsToWire,
} from './wire.js';

/** Keepalive pings so a silently dead server is noticed within ~15 s. */
export const KEEPALIVE_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
};

export interface SessionConfig {
  host: string;
  port: number;
  pinSha256: string;
  token: string;
  logger: Logger;
  statsReportIntervalMs: number;
  /** Drain budget for the in-flight connections of a removed rule. */
  drainMs: number;
  connectTimeoutMs?: number;
  /** The process's data plane; it outlives the session. */
  forwarder: Forwarder;
  channelOptions?: grpc.ChannelOptions;
}

export type SessionEnd =
  | { kind: 'stopped' }
  | { kind: 'terminal'; reason: string }
  | { kind: 'lost'; welcomed: boolean; code: number; details: string };

export interface SessionResult {
  end: SessionEnd;
  /** Removals still draining in-flight connections. */
  draining: Promise<unknown>[];
}

type ChannelCall = grpc.ClientDuplexStream<ClientMessage, ServerMessage>;
interface ControlStub {
  Channel(metadata: grpc.Metadata, options?: grpc.CallOptions): ChannelCall;
}

/**
 * Connects once and serves the stream until it ends or `signal` aborts. Throws only for a failed
 * pin check or an unreachable endpoint (before any stream exists).
 */
export async function runSession(
  config: SessionConfig,
  signal: AbortSignal,
  onWelcome: () => void,
): Promise<SessionResult> {
  const certificate = await fetchPinnedCertificate(config.host, config.port, config.pinSha256, {
    signal,
    ...(config.connectTimeoutMs !== undefined ? { timeoutMs: config.connectTimeoutMs } : {}),
  });
  const client = new ControlClient(
    grpcTarget(config.host, config.port),
    pinnedCredentials(certificate),
    pinnedChannelOptions(config.host, { ...KEEPALIVE_OPTIONS, ...config.channelOptions }),
  );
  const session = new Session(config, client as unknown as ControlStub);
  try {
    const end = await session.serve(signal, onWelcome);
    return { end, draining: session.draining };
  } finally {
    client.close();
  }
}

class Session {
  readonly forwarder: Forwarder;
  readonly draining: Promise<unknown>[] = [];
  private readonly log: Logger;
  private call: ChannelCall | undefined;
  private ended = false;
  private welcomed = false;
  private statsTimer: NodeJS.Timeout | undefined;
  /** Rule updates run one after another, in arrival order. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly config: SessionConfig,
    private readonly stub: ControlStub,
  ) {
    this.log = config.logger;
    this.forwarder = config.forwarder;
  }

  serve(signal: AbortSignal, onWelcome: () => void): Promise<SessionEnd> {
    return new Promise<SessionEnd>((resolve) => {
      const call = this.stub.Channel(bearerMetadata(this.config.token));
      this.call = call;
      const onAbort = (): void => {
        call.cancel();
      };
      let lastError: grpc.ServiceError | undefined;
      call.on('data', (message: ServerMessage) => {
        this.queue = this.queue
          .then(() => this.handle(message, onWelcome))
          .catch((error: unknown) => {
            this.log.warn(EVENTS.controlStreamError, { error });
          });
      });
      // Without an 'error' listener a failed call would throw; the final status follows anyway.
      call.on('error', (error: grpc.ServiceError) => {
        lastError = error;
      });
      call.on('status', (status: grpc.StatusObject) => {
        this.ended = true;
        clearInterval(this.statsTimer);
        signal.removeEventListener('abort', onAbort);
        const details = status.details || lastError?.details || '';
        // Activations already started finish before the caller tears the forwarder down.
        void this.queue.then(() => {
          if (signal.aborted) resolve({ kind: 'stopped' });
          else if (status.code === grpc.status.UNAUTHENTICATED)
            resolve({ kind: 'terminal', reason: details || 'unauthenticated' });
          else resolve({ kind: 'lost', welcomed: this.welcomed, code: status.code, details });
        });
      });
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      this.send(
        {
          hello: {
            protocol_version: PROTOCOL_VERSION,
            client_version: CLIENT_VERSION,
            supported_protocols: ['TCP', 'UDP'],
          },
        },
        EVENTS.controlStreamError,
      );
    });
  }

  private send(message: ClientMessage, failureEvent: string): void {
    if (this.ended || !this.call) return;
    try {
      this.call.write(message);
    } catch (error) {
      this.log.warn(failureEvent, { error });
    }
  }

  private async handle(message: ServerMessage, onWelcome: () => void): Promise<void> {
    if (this.ended) return;
    if (message.payload === 'welcome') this.onWelcome(message.welcome, onWelcome);
    else if (message.payload === 'rule_update') await this.onRuleUpdate(message.rule_update);
    else if (message.payload === 'owner_rate_limit_update') {
      this.onOwnerRateLimit(message.owner_rate_limit_update);
    } else if (message.payload === 'traffic_quota_update') {
      this.onQuotaUpdate(message.traffic_quota_update);
    }
  }

  /** The protocol has no answer to an owner update: a bad one is logged and ignored. */
  private onOwnerRateLimit(update: OwnerRateLimitUpdate): void {
    const ownerId = update.owner_id;
    if (ownerId === '' || (update.action !== 'SET' && update.action !== 'REMOVE')) {
      this.log.warn(EVENTS.controlOwnerRateLimitInvalid, {
        owner_id: ownerId,
        action: update.action,
      });
      return;
    }
    if (update.action === 'REMOVE') {
      const removed = this.forwarder.removeOwnerRateLimit(ownerId);
      this.log.info(EVENTS.controlOwnerRateLimitRemoved, { owner_id: ownerId, was_set: removed });
      return;
    }
    const caps = rateLimitFromWire(update.rate_limit);
    this.forwarder.setOwnerRateLimit(ownerId, caps);
    this.log.info(EVENTS.controlOwnerRateLimitSet, { owner_id: ownerId, caps });
  }

  /**
   * Reference §5.10: SET gives the owner's budget (the forwarder's registry outlives this
   * session, so budgets survive reconnects), REMOVE lifts it. The server sends SET for hard
   * quotas only; a soft one is never enforced here.
   */
  private onQuotaUpdate(update: TrafficQuotaUpdate): void {
    const fields = { request_id: update.request_id, user_id: update.user_id };
    if (update.action === 'SET') {
      const state = update.state;
      if (!state || update.user_id === '') {
        this.log.warn(EVENTS.controlTrafficQuotaSetWithoutState, fields);
        return;
      }
      this.forwarder.quotas.set(update.user_id, state.budget_remaining_bytes);
      this.log.info(EVENTS.controlTrafficQuotaSet, {
        ...fields,
        monthly_bytes: state.monthly_bytes,
        budget_remaining_bytes: state.budget_remaining_bytes,
        exhausted: state.exhausted,
        period_ends_at_unix_sec: state.period_ends_at_unix_sec,
      });
    } else if (update.action === 'REMOVE') {
      const had = this.forwarder.quotas.remove(update.user_id);
      this.log.info(EVENTS.controlTrafficQuotaRemove, { ...fields, had_budget: had });
    } else {
      this.log.warn(EVENTS.controlTrafficQuotaUnspecifiedAction, fields);
    }
  }

  private onWelcome(welcome: Welcome, onWelcome: () => void): void {
    if (this.welcomed) return;
    this.welcomed = true;
    const idleSecs =
      welcome.udp_flow_idle_secs > 0 ? welcome.udp_flow_idle_secs : DEFAULT_UDP_IDLE_MS / 1000;
    const maxFlows =
      welcome.udp_max_flows_per_rule > 0 ? welcome.udp_max_flows_per_rule : DEFAULT_UDP_MAX_FLOWS;
    this.forwarder.configureUdp({ idleMs: idleSecs * 1000, maxFlows });
    this.log.info(EVENTS.controlConnected, {
      server_version: welcome.server_version,
      udp_flow_idle_secs: idleSecs,
      udp_max_flows_per_rule: maxFlows,
    });
    if (welcome.replay_manifest) this.reconcile(new Set(welcome.replay_rule_ids));
    onWelcome();
    this.statsTimer = setInterval(() => {
      this.sendStats();
    }, this.config.statsReportIntervalMs);
  }

  /**
   * After a reconnect: a running rule the server will not replay was removed (or gated) while
   * the stream was down, so it stops; the replayed ones arrive as PUSHes and are kept or
   * replaced.
   */
  private reconcile(replayed: ReadonlySet<string>): void {
    for (const ruleId of this.forwarder.ruleIds()) {
      if (replayed.has(ruleId)) continue;
      this.log.info(EVENTS.controlRuleReconciledRemoved, { rule_id: ruleId });
      this.drainRemoval(ruleId);
    }
  }

  private drainRemoval(ruleId: string): void {
    // Listeners close synchronously inside remove(); only the in-flight drain is awaited later,
    // so the server's ack budget is not spent waiting for long-lived connections.
    const removal = this.forwarder.remove(ruleId, { drainMs: this.config.drainMs });
    this.draining.push(
      removal.catch((error: unknown) => {
        this.log.warn(EVENTS.controlStreamError, { rule_id: ruleId, error });
      }),
    );
  }

  private sendStats(): void {
    const forwarder = this.forwarder;
    this.send(
      {
        stats_report: {
          sent_at_unix_ms: Date.now(),
          stats: forwarder.stats().map(statsToWire),
          sni_listener_stats: forwarder.sniListenerStats().map(sniListenerStatsToWire),
          owner_rate_limit_stats: ownerStatsToWire(forwarder.ownerStats()),
        },
      },
      EVENTS.controlStatsSendFailed,
    );
  }

  private answer(status: RuleStatus): void {
    this.send({ rule_status: status }, EVENTS.controlStatusSendFailed);
  }

  private async onRuleUpdate(update: RuleUpdate): Promise<void> {
    const requestId = update.request_id;
    const rule = update.rule;
    if (update.action !== 'PUSH' && update.action !== 'REMOVE') {
      this.log.warn(EVENTS.controlRuleUpdateUnspecifiedAction, {
        request_id: requestId,
        rule_id: rule?.rule_id,
      });
      this.answer({
        request_id: requestId,
        rule_id: rule?.rule_id ?? '',
        outcome: 'FAILED',
        reason: 'unspecified_action',
      });
      return;
    }
    if (!rule || rule.rule_id === '') {
      this.log.warn(EVENTS.controlRuleUpdateMissingRule, {
        request_id: requestId,
        action: update.action,
      });
      this.answer({
        request_id: requestId,
        rule_id: '',
        outcome: 'FAILED',
        reason: 'missing_rule',
      });
      return;
    }
    const forwarder = this.forwarder;
    const ruleId = rule.rule_id;
    if (update.action === 'REMOVE') {
      if (forwarder.has(ruleId)) {
        this.drainRemoval(ruleId);
      } else {
        this.log.info(EVENTS.controlRuleRemoveUnknown, { request_id: requestId, rule_id: ruleId });
      }
      this.answer({ request_id: requestId, rule_id: ruleId, outcome: 'REMOVED', reason: '' });
      return;
    }
    const mapped = ruleFromWire(rule);
    if (!mapped.ok) {
      this.log.warn(EVENTS.controlRulePushUnsupported, {
        request_id: requestId,
        rule_id: ruleId,
        reason: mapped.reason,
      });
      this.answer({
        request_id: requestId,
        rule_id: ruleId,
        outcome: 'FAILED',
        reason: mapped.reason,
      });
      return;
    }
    const running = forwarder.spec(ruleId);
    if (running && sameRule(running, mapped.spec)) {
      this.log.info(EVENTS.controlRuleAlreadyActive, { request_id: requestId, rule_id: ruleId });
      this.answer({ request_id: requestId, rule_id: ruleId, outcome: 'ACTIVATED', reason: '' });
      return;
    }
    try {
      // A running id is replaced; on failure the old definition keeps running.
      await forwarder.apply(mapped.spec);
      this.answer({ request_id: requestId, rule_id: ruleId, outcome: 'ACTIVATED', reason: '' });
    } catch (error) {
      // The forwarder already logged rule.failed with the port and cause.
      const reason = isRuleActivationError(error) ? error.reason : 'bind_failed';
      this.answer({ request_id: requestId, rule_id: ruleId, outcome: 'FAILED', reason });
    }
  }
}

/** The `error` field of control.connect_failed for a failure before the stream existed. */
export function describeConnectFailure(error: unknown): { code: string; error: string } {
  if (isPortunusError(error)) return { code: error.code, error: error.message };
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'control_unreachable', error: message };
}

export const CONNECT_FAILED_EVENT = ERROR_CATALOGUE.control_unreachable.event;
