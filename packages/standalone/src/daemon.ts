/**
 * The running standalone: one Forwarder for the life of the process, driven by portunus.toml.
 * Start applies every rule (all or none: a rule that cannot bind stops the start with exit 1);
 * a reload re-reads the file and applies the difference the way the client reconciles a replay —
 * rules no longer named are removed, every named rule goes through `Forwarder.apply`, which keeps
 * an unchanged rule's listeners and connections and replaces a changed one in place — and an
 * invalid file is refused with the running set left as it was. Also owns the periodic
 * `standalone.stats` log line and the counters the forwarder does not keep (connections accepted,
 * port-in-use refusals). Signals are the CLI's; this module gets `reload()` and `stop()` calls.
 * Depends on core, the forwarder and this package's config and stats modules.
 */
import type net from 'node:net';

import { EVENTS, PortunusError, type Logger } from '@portunus/core';
import {
  Forwarder,
  isRuleActivationError,
  sameRule,
  spliceAvailable,
  type ForwarderOptions,
  type TcpServerFactory,
} from '@portunus/forwarder';
import netModule from 'node:net';

import type { StandaloneConfig, StandaloneRule } from './config.js';
import {
  PROTOCOL_VERSION,
  helloRule,
  processStats,
  snapshotRule,
  type Hello,
  type Snapshot,
} from './stats-protocol.js';
import { StatsSocketServer } from './stats-socket.js';
import { STANDALONE_VERSION } from './version.js';

export const STATS_LOG_INTERVAL_MS = 60_000;

export interface DaemonOptions {
  config: StandaloneConfig;
  /** Re-reads and validates the file; throws standalone_config_invalid. */
  loadConfig: () => StandaloneConfig;
  logger: Logger;
  /** Stats socket path, or undefined when stats are off. */
  statsSocket: string | undefined;
  statsLogIntervalMs?: number;
  forwarderOptions?: Omit<ForwarderOptions, 'logger'>;
}

export interface ReloadOutcome {
  added: string[];
  replaced: string[];
  unchanged: string[];
  removed: string[];
  failed: { rule: string; reason: string; message: string }[];
}

export class StandaloneDaemon {
  readonly forwarder: Forwarder;
  private config: StandaloneConfig;
  private readonly log: Logger;
  private readonly startedAt = Date.now();
  private stats: StatsSocketServer | undefined;
  private statsLogTimer: NodeJS.Timeout | undefined;
  /** Connections accepted per TCP listen port (the forwarder counts them but does not report). */
  private readonly acceptedByPort = new Map<number, number>();
  private readonly portInUseByRule = new Map<string, number>();
  private readonly draining: Promise<unknown>[] = [];
  /** What each running id runs: a rule whose replace failed keeps its old definition here. */
  private readonly running = new Map<string, StandaloneRule>();
  private reloading: Promise<ReloadOutcome | undefined> | undefined;

  constructor(private readonly options: DaemonOptions) {
    this.config = options.config;
    this.log = options.logger;
    const countAccepts: TcpServerFactory = (serverOptions, onConnection) => {
      const server = netModule.createServer(serverOptions, onConnection);
      server.on('connection', () => {
        const port = (server.address() as net.AddressInfo | null)?.port;
        if (port !== undefined)
          this.acceptedByPort.set(port, (this.acceptedByPort.get(port) ?? 0) + 1);
      });
      return server;
    };
    const base = options.forwarderOptions ?? {};
    this.forwarder = new Forwarder({
      ...base,
      logger: this.log,
      tcp: { ...base.tcp, createServer: base.tcp?.createServer ?? countAccepts },
    });
  }

  /** Binds every rule or none, then opens the stats socket and the stats log timer. */
  async start(): Promise<void> {
    const outcome = await this.apply(this.config.rules);
    const [failure] = outcome.failed;
    if (failure) {
      await this.forwarder.close({ drainMs: 0 });
      throw new PortunusError(
        'standalone_activation_failed',
        `rule ${JSON.stringify(failure.rule)}: ${failure.message}`,
        { rule: failure.rule, reason: failure.reason, failed: outcome.failed },
      );
    }
    if (this.options.statsSocket !== undefined) {
      this.stats = new StatsSocketServer({
        path: this.options.statsSocket,
        refreshMs: this.config.stats.refreshMs,
        hello: () => this.hello(),
        snapshot: (seq) => this.snapshot(seq),
        log: this.log,
      });
      try {
        await this.stats.start();
      } catch (error) {
        await this.forwarder.close({ drainMs: 0 });
        throw error;
      }
    }
    this.statsLogTimer = setInterval(() => {
      this.logStats();
    }, this.options.statsLogIntervalMs ?? STATS_LOG_INTERVAL_MS);
    this.log.info(EVENTS.standaloneStarted, {
      version: STANDALONE_VERSION,
      label: this.config.global.label,
      rules: this.ruleSummary(),
      stats_socket: this.options.statsSocket ?? null,
    });
  }

  /**
   * Re-reads the file and applies the difference. Refuses an invalid file (the running set
   * stays); a rule that cannot be applied keeps its old definition (or stays off if new).
   * Reloads never overlap: a reload during a reload waits for it and then runs.
   */
  async reload(): Promise<ReloadOutcome | undefined> {
    const previous = this.reloading ?? Promise.resolve(undefined);
    const next = previous.then(() => this.reloadOnce());
    this.reloading = next;
    return next;
  }

  private async reloadOnce(): Promise<ReloadOutcome | undefined> {
    this.log.info(EVENTS.standaloneReloadRequested, {});
    let config: StandaloneConfig;
    try {
      config = this.options.loadConfig();
    } catch (error) {
      if (!(error instanceof PortunusError)) throw error;
      this.log.warn(EVENTS.standaloneReloadRefused, {
        code: error.code,
        problems: error.fields['problems'],
        message: error.message,
        rules_kept: this.forwarder.ruleIds().length,
      });
      return undefined;
    }
    this.config = config;
    const outcome = await this.apply(config.rules);
    this.log.info(EVENTS.standaloneReloaded, {
      added: outcome.added,
      replaced: outcome.replaced,
      unchanged: outcome.unchanged,
      removed: outcome.removed,
      failed: outcome.failed,
      rules: this.ruleSummary(),
    });
    this.stats?.broadcastHello();
    return outcome;
  }

  /** Makes the forwarder run exactly `rules` (by id), reporting what happened to each. */
  private async apply(rules: readonly StandaloneRule[]): Promise<ReloadOutcome> {
    const outcome: ReloadOutcome = {
      added: [],
      replaced: [],
      unchanged: [],
      removed: [],
      failed: [],
    };
    const wanted = new Set(rules.map((rule) => rule.spec.ruleId));
    for (const id of this.forwarder.ruleIds()) {
      if (wanted.has(id)) continue;
      // remove() closes the listeners at once (their ports are free for the rules below); only
      // the in-flight drain is left running, bounded by shutdown_drain_secs.
      const removal = this.forwarder.remove(id, { drainMs: this.drainMs() });
      this.draining.push(removal.catch(() => undefined));
      outcome.removed.push(this.running.get(id)?.name ?? id);
      this.running.delete(id);
    }
    // A port moving from one rule to another may be freed only by a later replace: retry once.
    let pending = [...rules];
    for (let pass = 0; pass < 2 && pending.length > 0; pass += 1) {
      const retry: StandaloneRule[] = [];
      for (const rule of pending) {
        const result = await this.applyOne(rule, outcome, pass === 1);
        if (result === 'retry') retry.push(rule);
      }
      pending = retry;
    }
    // File order for the Hello and the log, whatever order the passes applied them in.
    const order = new Map(rules.map((rule, index) => [rule.spec.ruleId, index]));
    const sorted = [...this.running.values()].sort(
      (a, b) => (order.get(a.spec.ruleId) ?? 0) - (order.get(b.spec.ruleId) ?? 0),
    );
    this.running.clear();
    for (const rule of sorted) this.running.set(rule.spec.ruleId, rule);
    return outcome;
  }

  private async applyOne(
    rule: StandaloneRule,
    outcome: ReloadOutcome,
    isLastPass: boolean,
  ): Promise<'done' | 'retry'> {
    const id = rule.spec.ruleId;
    const running = this.forwarder.spec(id);
    const isUnchanged =
      running !== undefined &&
      (sameRule(running, rule.spec) ||
        (rule.spec.listenPort === 0 &&
          sameRule(running, { ...rule.spec, listenPort: running.listenPort })));
    // UDP tunables apply to rules started from now on (the forwarder's own contract), so a UDP
    // rule whose flow cap or idle time changed is restarted: its flows end, its counters restart.
    const previous = this.running.get(id);
    const tunablesChanged =
      previous !== undefined &&
      rule.spec.protocol === 'udp' &&
      (previous.udpMaxFlows !== rule.udpMaxFlows ||
        previous.udpFlowIdleSecs !== rule.udpFlowIdleSecs);
    this.forwarder.configureUdp({
      idleMs: rule.udpFlowIdleSecs * 1000,
      maxFlows: rule.udpMaxFlows,
    });
    if (tunablesChanged) {
      await this.forwarder.remove(id, { drainMs: 0 });
      this.running.delete(id);
    }
    try {
      await this.forwarder.apply(rule.spec);
    } catch (error) {
      if (!isRuleActivationError(error)) throw error;
      if (error.reason === 'port_in_use' && !isLastPass) return 'retry';
      if (error.reason === 'port_in_use') {
        this.portInUseByRule.set(id, (this.portInUseByRule.get(id) ?? 0) + 1);
      }
      outcome.failed.push({ rule: rule.name, reason: error.reason, message: error.message });
      return 'done';
    }
    this.running.set(id, rule);
    if (running === undefined) outcome.added.push(rule.name);
    else if (isUnchanged && !tunablesChanged) outcome.unchanged.push(rule.name);
    else outcome.replaced.push(rule.name);
    return 'done';
  }

  private drainMs(): number {
    return this.config.global.shutdownDrainSecs * 1000;
  }

  /** Stops accepting, drains open connections within shutdown_drain_secs, closes the socket. */
  async stop(): Promise<void> {
    clearInterval(this.statsLogTimer);
    await this.stats?.stop();
    await Promise.allSettled([this.forwarder.close({ drainMs: this.drainMs() }), ...this.draining]);
    this.log.info(EVENTS.standaloneStopped, {});
  }

  /** Name, id, protocol and bound ports of each running rule, for the log. */
  private ruleSummary(): { name: string; rule_id: string; protocol: string; ports: number[] }[] {
    return this.runningRules().map(({ rule, ports }) => ({
      name: rule.name,
      rule_id: rule.spec.ruleId,
      protocol: rule.spec.protocol,
      ports,
    }));
  }

  /** The running rules in file order, with their bound ports. */
  private runningRules(): { rule: StandaloneRule; ports: number[] }[] {
    const byId = new Map(this.forwarder.stats().map((s) => [s.rule_id, s]));
    return [...this.running.values()].flatMap((rule) => {
      const stats = byId.get(rule.spec.ruleId);
      return stats ? [{ rule, ports: stats.ports.map((p) => p.listen_port) }] : [];
    });
  }

  hello(): Hello {
    return {
      v: PROTOCOL_VERSION,
      daemon_version: STANDALONE_VERSION,
      daemon_started_at_ms: this.startedAt,
      refresh_ms: this.config.stats.refreshMs,
      rules: this.runningRules().map(({ rule, ports }) =>
        helloRule(rule, ports, spliceAvailable()),
      ),
    };
  }

  snapshot(seq: number): Snapshot {
    const now = Date.now();
    return {
      t_ms: now,
      uptime_ms: now - this.startedAt,
      seq,
      process: processStats(),
      r: this.forwarder.stats().map((stats) =>
        snapshotRule(stats, {
          connsTotal:
            stats.protocol === 'tcp'
              ? stats.ports.reduce(
                  (sum, p) => sum + (this.acceptedByPort.get(p.listen_port) ?? 0),
                  0,
                )
              : 0,
          portInUse: this.portInUseByRule.get(stats.rule_id) ?? 0,
        }),
      ),
    };
  }

  private logStats(): void {
    const names = new Map([...this.running.values()].map((rule) => [rule.spec.ruleId, rule.name]));
    for (const entry of this.snapshot(0).r) {
      this.log.info(EVENTS.standaloneStats, { rule: names.get(entry.id), ...entry });
    }
  }
}
