/**
 * The periodic traffic task of `serve`: once at start (catching up on hours missed while the
 * server was down) and then at one minute past every hour (H+1 min, reference §3.3), it rolls the
 * completed hours of 1-minute samples into 1-hour samples and prunes samples past retention (1m:
 * 7 days, 1h: 90 days) with `incremental_vacuum`. The clock and the timer are injected so tests
 * drive it without waiting. Depends on the store and core only.
 */
import type { Database } from 'better-sqlite3';

import { EVENTS, type Logger } from '@portunus/core';
import {
  HOUR_MS,
  MINUTE_MS,
  maintainTraffic,
  type TrafficMaintenanceResult,
} from '@portunus/store';

export interface MaintenanceTimers {
  setTimeout(run: () => void, delayMs: number): { unref?: () => unknown };
  clearTimeout(handle: unknown): void;
}

export interface TrafficMaintenanceOptions {
  db: Database;
  logger: Logger;
  now: () => number;
  timers?: MaintenanceTimers;
}

/** The next H+1 min strictly after `nowMs`. */
export function nextMaintenanceAt(nowMs: number): number {
  const at = nowMs - (nowMs % HOUR_MS) + MINUTE_MS;
  return at > nowMs ? at : at + HOUR_MS;
}

export class TrafficMaintenance {
  private handle: unknown;
  private stopped = false;
  private readonly timers: MaintenanceTimers;

  constructor(private readonly options: TrafficMaintenanceOptions) {
    this.timers = options.timers ?? {
      setTimeout: (run, delayMs) => setTimeout(run, delayMs),
      clearTimeout: (handle) => {
        clearTimeout(handle as NodeJS.Timeout);
      },
    };
  }

  start(): void {
    this.runOnce();
    this.schedule();
  }

  /** One rollup and prune; a store fault is logged and retried at the next hour. */
  runOnce(): TrafficMaintenanceResult | undefined {
    try {
      const result = maintainTraffic(this.options.db, this.options.now());
      this.options.logger.info(EVENTS.trafficRolledUp, {
        hours_rolled: result.hoursRolled,
        pruned_1m: result.pruned1m,
        pruned_1h: result.pruned1h,
      });
      return result;
    } catch (error) {
      this.options.logger.warn(EVENTS.trafficMaintenanceFailed, {
        error: (error as { code?: string }).code ?? String(error),
      });
      return undefined;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.handle !== undefined) this.timers.clearTimeout(this.handle);
    this.handle = undefined;
  }

  private schedule(): void {
    if (this.stopped) return;
    const now = this.options.now();
    const handle = this.timers.setTimeout(
      () => {
        this.handle = undefined;
        this.runOnce();
        this.schedule();
      },
      nextMaintenanceAt(now) - now,
    );
    // The task never keeps the process alive on its own; serve's shutdown also stops it.
    handle.unref?.();
    this.handle = handle;
  }
}
