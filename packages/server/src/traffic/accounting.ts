/**
 * Traffic accounting of the control plane: each StatsReport round of a client becomes one store
 * transaction of per-rule deltas attributed to the rules' owners (store/src/traffic.ts holds the
 * delta rules and the SQL). A round that cannot be written (disk full, I/O error) is logged and
 * dropped without moving the baselines, so the next round that commits carries its bytes: a
 * store fault delays usage, it never loses it. The per-owner deltas of each committed round are
 * handed to `onRound`, where monthly quotas will hook in. Depends on the store and core only;
 * no HTTP, no control stream.
 */
import type { Database } from 'better-sqlite3';

import { EVENTS, type Logger } from '@portunus/core';
import {
  recordTrafficRound,
  type RuleCounterReading,
  type TrafficRoundResult,
} from '@portunus/store';

/** What the fleet calls with each report round of a client. */
export interface TrafficRecorder {
  recordRound(clientId: string, readings: readonly RuleCounterReading[]): void;
}

export interface TrafficAccountingOptions {
  db: Database;
  logger: Logger;
  now: () => number;
  onRound?: (clientId: string, result: TrafficRoundResult) => void;
}

export class TrafficAccounting implements TrafficRecorder {
  constructor(private readonly options: TrafficAccountingOptions) {}

  recordRound(clientId: string, readings: readonly RuleCounterReading[]): void {
    if (readings.length === 0) return;
    let result: TrafficRoundResult;
    try {
      result = recordTrafficRound(this.options.db, clientId, this.options.now(), readings);
    } catch (error) {
      this.options.logger.warn(EVENTS.trafficRoundFailed, {
        client_id: clientId,
        rules: readings.length,
        error: (error as { code?: string }).code ?? String(error),
      });
      return;
    }
    this.options.onRound?.(clientId, result);
  }
}
