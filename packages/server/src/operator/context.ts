/**
 * What every operator route gets: the store connection, config, clock, audit writer, metrics and
 * the identity the auth layer attached to the request. One type so routes never reach for
 * globals, and tests can build the app from a temp store and a fake clock (STYLE.md §8, §10).
 */
import type { Database } from 'better-sqlite3';

import type { ErrorCode, Logger } from '@portunus/core';
import type { AuditWriter, RateLimit, Role, Rule, StoreFaults } from '@portunus/store';

import type { ServerConfig } from '../config.js';
import type { RuleStatsSnapshot, TargetStatsSnapshot } from '../control/rule-stats.js';
import type { GatedRule } from '../control/wire.js';
import type { ServerMetrics } from '../metrics.js';
import type { QuotaEngine } from '../traffic/quotas.js';

export interface Identity {
  userId: string;
  role: Role;
  displayName: string;
  authMethod: 'cookie' | 'bearer';
  /** Set for cookie auth: the session's hash, for logout. */
  sessionHash?: string;
  /** Set for API credentials (not for the static operator token). */
  credentialId?: string;
  passwordChangeRequired: boolean;
}

export interface LiveConnection {
  remoteAddr: string;
  connectedAt: number;
}

/** What became of a push within its ack budget (reference §2.4). */
export type PushOutcome =
  | { kind: 'activated' }
  | { kind: 'failed'; reason: string }
  | { kind: 'timeout' }
  /** The stream ended while waiting. */
  | { kind: 'lost' }
  | { kind: 'not_connected' };

/** Which clients are live, and pushing to them (control/fleet.ts; NO_FLEET without a stream). */
export interface Fleet {
  isConnected(clientId: string): boolean;
  connection(clientId: string): LiveConnection | undefined;
  connectedCount(): number;
  /** The capability gate a rule fails on this client, if any (reference §4.4). */
  gate(rule: GatedRule): ErrorCode | undefined;
  /**
   * Sends a stored Pending rule and waits for its RuleStatus up to the ack budget. With
   * `replace`, `rule` is a new definition for a stored rule's id (an edit, a restore): the store
   * is the caller's to update, and a refusal leaves the stored rule's state alone.
   */
  push(rule: Rule, ackTimeoutMs: number, options?: { replace?: boolean }): Promise<PushOutcome>;
  /** Sends REMOVE for rules already deleted from the store (no-op for offline clients). */
  remove(ruleIds: readonly number[]): void;
  /**
   * Why an owner envelope cannot be pushed to the client now (reference §4.4: it must be
   * connected and at least the rate-limit version), or undefined.
   */
  ownerRateLimitGate(clientId: string): ErrorCode | undefined;
  /** OwnerRateLimitUpdate SET (caps) or REMOVE (null); false when nothing was sent. */
  sendOwnerRateLimit(clientId: string, ownerUserId: string, rateLimit: RateLimit | null): boolean;
  /** Ends the client's live session at once (revocation, re-enrollment). No-op when offline. */
  disconnect(clientId: string, reason: 'revoked' | 'rotated'): void;
  /** Why a quota cannot be pushed to the client now (offline or too old), if it cannot. */
  quotaGate(clientId: string): 'quota_unsupported_by_client' | undefined;
  /** The latest stats the client reported for a rule. */
  ruleStats(ruleId: number): RuleStatsSnapshot | undefined;
  /** Per-target reports of live rules that have them (the rule JSON's `targets[].health`). */
  liveTargetHealth(): ReadonlyMap<number, readonly TargetStatsSnapshot[]>;
  /** Each new snapshot of the rule, as stats reports arrive; returns the unsubscribe. */
  subscribeRuleStats(ruleId: number, listener: (snapshot: RuleStatsSnapshot) => void): () => void;
}

export const NO_FLEET: Fleet = {
  isConnected: () => false,
  connection: () => undefined,
  connectedCount: () => 0,
  gate: () => undefined,
  push: () => Promise.resolve({ kind: 'not_connected' }),
  remove: () => undefined,
  ownerRateLimitGate: () => 'rate_limit_unsupported_by_client',
  sendOwnerRateLimit: () => false,
  disconnect: () => undefined,
  quotaGate: () => 'quota_unsupported_by_client',
  ruleStats: () => undefined,
  liveTargetHealth: () => new Map(),
  subscribeRuleStats: () => () => undefined,
};

/** What the operator API needs to know of the control listener and its certificate. */
export interface ControlEndpoint {
  /** SHA-256 of the server certificate's DER, 64 lowercase hex (the clients' pin). */
  fingerprintSha256: string;
  /** True when the certificate's SANs cover `host` (DNS name or IP literal). */
  coversHost(host: string): boolean;
  /** The port the control listener is bound to. */
  port: number;
  /** `--advertised-endpoint` / PORTUNUS_ADVERTISED_ENDPOINT, when set (the "seed" tier). */
  seed?: string;
}

export interface OperatorContext {
  db: Database;
  config: ServerConfig;
  logger: Logger;
  audit: AuditWriter;
  /** Disk-full episodes: the error handler reports refused writes to it. */
  storeFaults?: StoreFaults;
  metrics: ServerMetrics;
  fleet: Fleet;
  /** Pushes quota state to the edge (traffic/quotas.ts); absent, quota changes push nothing. */
  quotas?: QuotaEngine;
  control: ControlEndpoint;
  now: () => number;
  /** BLAKE3 hex of server.toml's operator_token, which authenticates as `_legacy`. */
  operatorTokenHash?: string;
  /** The built web UI's directory; default: @portunus/webui's dist/ (webui.ts). */
  webUiDir?: string;
  /** How often an idle stats stream sends its keep-alive comment (default 30 s). */
  statsStreamKeepAliveMs?: number;
}

/** Reserved user ids (reference §6.1); none can be created through the API. */
export const RESERVED_USERS = {
  legacy: '_legacy',
  superadmin: '_superadmin',
  localCli: '_local_cli',
  anonymous: '_anonymous',
} as const;

export const SESSION_COOKIE = 'portunus_session';
export const SESSION_IDLE_MS = 8 * 3600_000;
export const SESSION_ABSOLUTE_MS = 7 * 24 * 3600_000;
export const SETUP_TOKEN_TTL_MS = 30 * 60_000;
