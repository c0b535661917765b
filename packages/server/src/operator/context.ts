/**
 * What every operator route gets: the store connection, config, clock, audit writer, metrics and
 * the identity the auth layer attached to the request. One type so routes never reach for
 * globals, and tests can build the app from a temp store and a fake clock (STYLE.md §8, §10).
 */
import type { Database } from 'better-sqlite3';

import type { Logger } from '@portunus/core';
import type { AuditWriter, Role } from '@portunus/store';

import type { ServerConfig } from '../config.js';
import type { ServerMetrics } from '../metrics.js';

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

/** Which clients are live, and pushing to them; the fleet fills this in (none until then). */
export interface Fleet {
  isConnected(clientId: string): boolean;
  connection(clientId: string): { remoteAddr: string; connectedAt: number } | undefined;
  connectedCount(): number;
}

export const NO_FLEET: Fleet = {
  isConnected: () => false,
  connection: () => undefined,
  connectedCount: () => 0,
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
  metrics: ServerMetrics;
  fleet: Fleet;
  control: ControlEndpoint;
  now: () => number;
  /** BLAKE3 hex of server.toml's operator_token, which authenticates as `_legacy`. */
  operatorTokenHash?: string;
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
