/**
 * Alerts (beyond the reference; configured by server.toml's `[alerts]`): what is worth telling an
 * operator — `quota.threshold` (from the quota engine, once per threshold per period),
 * `client.offline` after a grace period (a reconnect within it sends nothing, so restarts page no
 * one) and `client.online` after such an alert, `target.down` / `target.up` when a failover
 * target's reported health changed and held for the debounce time — and their delivery: a JSON
 * body `{event, time, subject, message}` POSTed to every webhook with `X-Portunus-Signature:
 * sha256=<hex HMAC-SHA256 of the body>` and `X-Portunus-Timestamp`, through a bounded queue with
 * retries and exponential backoff that never blocks the caller (the control plane only enqueues;
 * a full queue drops the oldest delivery and counts it). Every alert is also an audit row, and
 * `portunus_alerts_sent_total{event,outcome}` counts deliveries. The secret is never logged, nor
 * are webhook URLs beyond their host (their paths often carry tokens). Depends on node:crypto,
 * global fetch, prom-client, the audit writer and core; no store queries, no control stream.
 */
import { createHmac } from 'node:crypto';

import { Counter, type Registry } from 'prom-client';

import { EVENTS, formatRfc3339, type Logger } from '@portunus/core';
import type { PerTargetStats } from '@portunus/proto';
import type { AuditRecord, TrafficQuota } from '@portunus/store';

import type { AlertsConfig } from '../config.js';
import type { FleetObserver } from '../control/fleet.js';
import type { QuotaAlertSink } from './quotas.js';

export type AlertEvent =
  'quota.threshold' | 'client.offline' | 'client.online' | 'target.down' | 'target.up';

export interface AlertBody {
  event: AlertEvent;
  /** RFC3339, UTC. */
  time: string;
  /** The ids the alert is about (user_id, client_id, rule_id, target …). */
  subject: Record<string, string | number>;
  /** One sentence for a human. */
  message: string;
}

/** The actor of alert audit rows: the server itself (ids starting with _ are reserved). */
export const ALERT_AUDIT_ACTOR = '_server';
export const SIGNATURE_HEADER = 'x-portunus-signature';
export const TIMESTAMP_HEADER = 'x-portunus-timestamp';

/** `sha256=<hex>` of the body under the secret: what a receiver recomputes to trust a body. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export type AlertOutcome = 'delivered' | 'failed' | 'dropped';

export interface DeliveryOptions {
  /** Deliveries waiting or being retried, over all webhooks; the oldest is dropped past it. */
  queueCapacity?: number;
  /** Attempts per delivery, the first included. */
  maxAttempts?: number;
  /** Backoff before retry n is min(base * 2^(n-1), max). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Per-attempt timeout of the POST. */
  timeoutMs?: number;
  /** Deliveries in flight at once. */
  concurrency?: number;
}

const DEFAULT_DELIVERY: Required<DeliveryOptions> = {
  queueCapacity: 512,
  maxAttempts: 6,
  backoffBaseMs: 1_000,
  backoffMaxMs: 60_000,
  timeoutMs: 5_000,
  concurrency: 4,
};

interface Delivery {
  readonly url: string;
  readonly webhook: number;
  readonly event: AlertEvent;
  readonly body: string;
  attempts: number;
  timer?: NodeJS.Timeout;
}

export interface AlertDispatcherOptions {
  config: Pick<AlertsConfig, 'webhookUrls' | 'secret'>;
  logger: Logger;
  registry: Registry;
  audit: { offer(record: AuditRecord): boolean };
  now: () => number;
  delivery?: DeliveryOptions;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}

/** The delivery side: queue, signing, POST, retry with backoff, metrics, audit. */
export class AlertDispatcher {
  private readonly delivery: Required<DeliveryOptions>;
  private readonly sent: Counter<'event' | 'outcome'>;
  /** Deliveries waiting for a free slot (FIFO). */
  private readonly ready: Delivery[] = [];
  /** Deliveries sleeping before a retry. */
  private readonly sleeping = new Set<Delivery>();
  private inFlight = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly options: AlertDispatcherOptions) {
    this.delivery = { ...DEFAULT_DELIVERY, ...options.delivery };
    this.sent = new Counter({
      name: 'portunus_alerts_sent_total',
      help: 'Alert webhook deliveries by event and outcome (delivered, failed after retries, dropped).',
      labelNames: ['event', 'outcome'] as const,
      registers: [options.registry],
    });
  }

  /** Queues the alert for every webhook and writes its audit row; never waits. */
  send(alert: Omit<AlertBody, 'time'>): AlertBody {
    const now = this.options.now();
    const body: AlertBody = { ...alert, time: formatRfc3339(now) };
    const text = JSON.stringify(body);
    this.options.audit.offer({
      ts: now,
      actor: ALERT_AUDIT_ACTOR,
      outcome: 'allow',
      action: `alert.${alert.event}`,
      resourceKind: 'alert',
      resourceValue: alert.event,
      details: { ...alert.subject, message: alert.message, webhooks: this.webhookCount },
    });
    this.options.logger.info(EVENTS.alertQueued, { alert_event: alert.event, ...alert.subject });
    if (this.closed) return body;
    this.options.config.webhookUrls.forEach((url, webhook) => {
      this.enqueue({ url, webhook, event: alert.event, body: text, attempts: 0 });
    });
    this.pump();
    return body;
  }

  get webhookCount(): number {
    return this.options.config.webhookUrls.length;
  }

  /** Deliveries not finished yet (waiting, in flight or sleeping before a retry). */
  get pending(): number {
    return this.ready.length + this.sleeping.size + this.inFlight;
  }

  /** Resolves once nothing is pending (tests, shutdown). */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops: sleeping retries are cancelled, deliveries in flight finish. */
  close(): void {
    this.closed = true;
    for (const delivery of this.sleeping) clearTimeout(delivery.timer);
    this.sleeping.clear();
    this.ready.length = 0;
    this.wakeIdle();
  }

  private enqueue(delivery: Delivery): void {
    if (this.ready.length + this.sleeping.size >= this.delivery.queueCapacity) {
      // The oldest waiting delivery gives way: a stuck receiver must not hold back fresh alerts.
      const oldest = this.ready.shift();
      if (oldest) this.drop(oldest);
      else {
        this.drop(delivery);
        return;
      }
    }
    this.ready.push(delivery);
  }

  private drop(delivery: Delivery): void {
    this.sent.inc({ event: delivery.event, outcome: 'dropped' });
    this.options.logger.warn(EVENTS.alertDropped, {
      alert_event: delivery.event,
      webhook: delivery.webhook,
      host: hostOf(delivery.url),
    });
  }

  private pump(): void {
    while (!this.closed && this.inFlight < this.delivery.concurrency) {
      const next = this.ready.shift();
      if (!next) break;
      this.inFlight += 1;
      void this.attempt(next).finally(() => {
        this.inFlight -= 1;
        this.pump();
        this.wakeIdle();
      });
    }
  }

  private wakeIdle(): void {
    if (this.pending > 0 && !this.closed) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private async attempt(delivery: Delivery): Promise<void> {
    delivery.attempts += 1;
    let problem: string;
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signBody(this.options.config.secret, delivery.body),
          [TIMESTAMP_HEADER]: String(Math.floor(this.options.now() / 1000)),
          'x-portunus-event': delivery.event,
        },
        body: delivery.body,
        signal: AbortSignal.timeout(this.delivery.timeoutMs),
        redirect: 'error',
      });
      // The body is not needed; reading it frees the connection for reuse.
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) {
        this.sent.inc({ event: delivery.event, outcome: 'delivered' });
        this.options.logger.info(EVENTS.alertDelivered, {
          alert_event: delivery.event,
          webhook: delivery.webhook,
          host: hostOf(delivery.url),
          attempts: delivery.attempts,
        });
        return;
      }
      problem = `http_${response.status}`;
    } catch (error) {
      const cause = (error as { cause?: { code?: unknown } }).cause;
      const name = (error as { name?: unknown }).name;
      problem =
        typeof cause?.code === 'string' ? cause.code : typeof name === 'string' ? name : 'error';
    }
    const fields = {
      alert_event: delivery.event,
      webhook: delivery.webhook,
      host: hostOf(delivery.url),
      attempts: delivery.attempts,
      problem,
    };
    if (this.closed) return;
    if (delivery.attempts >= this.delivery.maxAttempts) {
      this.sent.inc({ event: delivery.event, outcome: 'failed' });
      this.options.logger.warn(EVENTS.alertFailed, fields);
      return;
    }
    const backoff = Math.min(
      this.delivery.backoffBaseMs * 2 ** (delivery.attempts - 1),
      this.delivery.backoffMaxMs,
    );
    this.options.logger.warn(EVENTS.alertRetry, { ...fields, retry_in_ms: backoff });
    this.sleeping.add(delivery);
    delivery.timer = setTimeout(() => {
      this.sleeping.delete(delivery);
      if (this.closed) return;
      this.ready.push(delivery);
      this.pump();
    }, backoff);
    delivery.timer.unref();
  }
}

export interface AlertTimers {
  setTimeout(run: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface AlerterOptions {
  dispatcher: Pick<AlertDispatcher, 'send'>;
  config: Pick<AlertsConfig, 'clientOfflineGraceSecs' | 'targetDebounceSecs'>;
  now: () => number;
  timers?: AlertTimers;
}

interface TargetWatch {
  /** The health last alerted (or first seen): 0 healthy, 1 failed. */
  alerted: number;
  /** The health reported now, and since when it has been reported without a break. */
  reported: number;
  since: number;
}

/** The sources: turns fleet and quota events into alerts (debounced, with grace). */
export class Alerter implements FleetObserver, QuotaAlertSink {
  private readonly timers: AlertTimers;
  private readonly offlineTimers = new Map<string, unknown>();
  /** Clients a `client.offline` went out for; their return sends `client.online`. */
  private readonly reportedOffline = new Set<string>();
  private readonly targets = new Map<string, TargetWatch>();

  constructor(private readonly options: AlerterOptions) {
    this.timers = options.timers ?? {
      setTimeout: (run, delayMs) => {
        const handle = setTimeout(run, delayMs);
        handle.unref();
        return handle;
      },
      clearTimeout: (handle) => {
        clearTimeout(handle as NodeJS.Timeout);
      },
    };
  }

  quotaThreshold(quota: TrafficQuota, threshold: number): void {
    const percent = Math.round(threshold * 100);
    this.options.dispatcher.send({
      event: 'quota.threshold',
      subject: {
        user_id: quota.userId,
        client_id: quota.clientId,
        threshold,
        bytes_used: quota.currentPeriodBytesUsed,
        bytes_limit: quota.monthlyBytes,
      },
      message: `${quota.userId} has used ${percent}% of the ${quota.enforcement} traffic quota on client ${quota.clientName} (${quota.currentPeriodBytesUsed} of ${quota.monthlyBytes} bytes).`,
    });
  }

  clientOnline(client: { clientId: string; clientName: string }): void {
    const timer = this.offlineTimers.get(client.clientId);
    if (timer !== undefined) {
      // Back within the grace period: nobody was told it left, so nobody is told it is back.
      this.timers.clearTimeout(timer);
      this.offlineTimers.delete(client.clientId);
      return;
    }
    if (!this.reportedOffline.delete(client.clientId)) return;
    this.options.dispatcher.send({
      event: 'client.online',
      subject: { client_id: client.clientId, client_name: client.clientName },
      message: `Client ${client.clientName} is connected again.`,
    });
  }

  clientOffline(client: { clientId: string; clientName: string }): void {
    if (this.offlineTimers.has(client.clientId)) return;
    const graceMs = this.options.config.clientOfflineGraceSecs * 1000;
    const handle = this.timers.setTimeout(() => {
      this.offlineTimers.delete(client.clientId);
      this.reportedOffline.add(client.clientId);
      this.options.dispatcher.send({
        event: 'client.offline',
        subject: { client_id: client.clientId, client_name: client.clientName },
        message: `Client ${client.clientName} has been disconnected for more than ${this.options.config.clientOfflineGraceSecs} s.`,
      });
    }, graceMs);
    this.offlineTimers.set(client.clientId, handle);
  }

  targetHealth(
    rule: { ruleId: number; clientId: string; clientName: string; ownerUserId: string },
    targets: readonly PerTargetStats[],
  ): void {
    const now = this.options.now();
    const debounceMs = this.options.config.targetDebounceSecs * 1000;
    for (const target of targets) {
      const key = `${rule.ruleId}/${target.index}`;
      const health = target.health === 0 ? 0 : 1;
      const watch = this.targets.get(key);
      if (!watch) {
        // First sight (a new rule, or a server restart): a baseline, not a transition.
        this.targets.set(key, { alerted: health, reported: health, since: now });
        continue;
      }
      if (health !== watch.reported) {
        watch.reported = health;
        watch.since = now;
      }
      if (watch.reported === watch.alerted || now - watch.since < debounceMs) continue;
      watch.alerted = watch.reported;
      const down = watch.alerted === 1;
      const address = `${target.host}:${target.port}`;
      this.options.dispatcher.send({
        event: down ? 'target.down' : 'target.up',
        subject: {
          client_id: rule.clientId,
          rule_id: rule.ruleId,
          owner: rule.ownerUserId,
          target_index: target.index,
          target: address,
        },
        message: down
          ? `Target ${address} of rule ${rule.ruleId} on client ${rule.clientName} is down (${target.consecutive_failures} consecutive failures).`
          : `Target ${address} of rule ${rule.ruleId} on client ${rule.clientName} is healthy again.`,
      });
    }
  }

  /** Forgets the targets of removed rules, so a re-used id starts from a fresh baseline. */
  forgetRule(ruleId: number): void {
    for (const key of [...this.targets.keys()]) {
      if (key.startsWith(`${ruleId}/`)) this.targets.delete(key);
    }
  }

  stop(): void {
    for (const handle of this.offlineTimers.values()) this.timers.clearTimeout(handle);
    this.offlineTimers.clear();
  }
}
