/**
 * The operator benchmark's store: a real data dir opened with openStore, holding a superadmin
 * with one API credential (stored as the BLAKE3 hex of its token, as the server stores it), a
 * plain user the measured grants are for, a few rule owners, and `config.rules` deterministic
 * rules spread over `config.clients` clients: mostly single-target TCP rules, some UDP, some
 * multi-target with health checks, SNI patterns, PROXY protocol, rate-limit caps, and a mix of
 * states, so the GET /v1/rules body has the shape a real fleet gives it. Also writes server.toml
 * with an `operator_token`, the second kind of bearer the server accepts.
 */
import fs from 'node:fs';
import path from 'node:path';

import { SERVER_TOML, generateSecret, hashSecret } from '@portunus/server';
import {
  AuditWriter,
  insertClient,
  insertCredential,
  insertRule,
  insertUser,
  openStore,
  storePaths,
  type Protocol,
  type RuleState,
  type RuleTarget,
} from '@portunus/store';

import { BASE_TS, rng } from '../store/fixtures.js';
import { nowMs, progress } from '../store/report.js';
import type { OperatorBenchConfig } from './config.js';

export const ADMIN_ID = 'bench-admin';
export const ADMIN_NAME = 'Bench admin';
/** The user every measured POST /v1/grants grants to. */
export const GRANTEE_ID = 'bench-user';
const OWNERS = 8;

export interface OperatorStore {
  dataDir: string;
  /** The superadmin's API credential (bearer). */
  token: string;
  /** server.toml's operator_token (bearer, authenticates as `_legacy`). */
  operatorToken: string;
  rules: number;
  clients: number;
  bytes: number;
  buildMs: number;
  /** The AuditWriter defaults, which `serve` uses: a write waits for its batch's commit. */
  auditFlushIntervalMs: number;
  auditBatchSize: number;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A deterministic 26-character ULID-shaped id. */
function ulidLike(ts: number, next: () => number): string {
  let time = '';
  let remaining = ts;
  for (let i = 0; i < 10; i += 1) {
    time = CROCKFORD.charAt(remaining % 32) + time;
    remaining = Math.floor(remaining / 32);
  }
  let tail = '';
  for (let i = 0; i < 16; i += 1) tail += CROCKFORD.charAt(Math.floor(next() * 32));
  return time + tail;
}

function ruleShape(
  index: number,
  next: () => number,
): {
  protocol: Protocol;
  targets: RuleTarget[];
  sniPattern: string | null;
  healthCheckIntervalSecs: number | null;
  rateLimit: { bandwidthInBps: number; bandwidthOutBps: number } | null;
  state: RuleState;
} {
  const protocol: Protocol = index % 5 === 4 ? 'udp' : 'tcp';
  const roll = next();
  const count = roll < 0.7 ? 1 : roll < 0.9 ? 2 : 3;
  const proxy = protocol === 'tcp' && next() < 0.1 ? 'v2' : null;
  const targets = Array.from({ length: count }, (_, idx): RuleTarget => ({
    host:
      next() < 0.5
        ? `10.${(index >> 8) & 255}.${index & 255}.${10 + idx}`
        : `backend-${(index * 3 + idx) % 997}.internal.example.net`,
    port: 8000 + ((index + idx) % 1000),
    portEnd: null,
    priority: idx,
    proxyProtocol: proxy,
  }));
  const stateRoll = next();
  const state: RuleState =
    stateRoll < 0.85
      ? { kind: 'active' }
      : stateRoll < 0.95
        ? { kind: 'pending' }
        : { kind: 'failed', reason: 'listen port 0.0.0.0 already in use' };
  return {
    protocol,
    targets,
    sniPattern: protocol === 'tcp' && next() < 0.15 ? `app-${index}.example.com` : null,
    healthCheckIntervalSecs: count > 1 ? 10 : null,
    rateLimit: next() < 0.1 ? { bandwidthInBps: 12_500_000, bandwidthOutBps: 25_000_000 } : null,
    state,
  };
}

export function buildOperatorStore(dataDir: string, config: OperatorBenchConfig): OperatorStore {
  progress(`building a store with ${config.rules.toLocaleString('en-US')} rules in ${dataDir}`);
  const start = nowMs();
  const next = rng(11);
  const token = generateSecret();
  const operatorToken = generateSecret();
  const store = openStore(dataDir);
  let audit: { flushIntervalMs: number; batchSize: number };
  try {
    const writer = new AuditWriter(store.db);
    audit = { flushIntervalMs: writer.flushIntervalMs, batchSize: writer.batchSize };
    writer.close();
    // Setup, not a measurement: the server reopens the store with its normal PRAGMAs.
    store.db.pragma('synchronous = OFF');
    const db = store.db;
    db.transaction(() => {
      insertUser(db, {
        userId: ADMIN_ID,
        role: 'superadmin',
        displayName: ADMIN_NAME,
        now: BASE_TS,
      });
      insertCredential(db, {
        credentialId: ulidLike(BASE_TS, next),
        userId: ADMIN_ID,
        hash: hashSecret(token),
        label: 'bench',
        now: BASE_TS,
      });
      insertUser(db, { userId: GRANTEE_ID, role: 'user', displayName: 'Bench user', now: BASE_TS });
      for (let owner = 1; owner <= OWNERS; owner += 1) {
        insertUser(db, {
          userId: `owner-${owner}`,
          role: 'user',
          displayName: `Owner ${owner}`,
          now: BASE_TS,
        });
      }
    })();
    const clientIds = Array.from({ length: config.clients }, (_, index) => {
      const clientId = ulidLike(BASE_TS + index, next);
      insertClient(db, {
        clientId,
        clientName: `edge-${String(index + 1).padStart(3, '0')}.example.net`,
        clientAddress: `203.0.113.${index + 1}`,
        now: BASE_TS,
      });
      return clientId;
    });
    for (let offset = 0; offset < config.rules; offset += config.buildBatch) {
      const end = Math.min(config.rules, offset + config.buildBatch);
      db.transaction(() => {
        for (let index = offset; index < end; index += 1) {
          const shape = ruleShape(index, next);
          insertRule(db, {
            clientId: clientIds[index % clientIds.length]!,
            ownerUserId: index % 3 === 0 ? ADMIN_ID : `owner-${(index % OWNERS) + 1}`,
            listenPort: 10_000 + Math.floor(index / clientIds.length),
            ...shape,
            now: BASE_TS + index * 1000,
          });
        }
      })();
    }
    const count = db.prepare('SELECT count(*) FROM rules').pluck().get() as number;
    if (count !== config.rules) throw new Error(`expected ${config.rules} rules, found ${count}`);
  } finally {
    store.close();
  }
  fs.writeFileSync(
    path.join(dataDir, SERVER_TOML),
    `operator_token = ${JSON.stringify(operatorToken)}\n`,
    { mode: 0o600 },
  );
  const buildMs = nowMs() - start;
  const bytes = fs.statSync(storePaths(dataDir).db).size;
  progress(`built in ${(buildMs / 1000).toFixed(1)} s, ${(bytes / 1e6).toFixed(1)} MB`);
  return {
    dataDir,
    token,
    operatorToken,
    rules: config.rules,
    clients: config.clients,
    bytes,
    buildMs,
    auditFlushIntervalMs: audit.flushIntervalMs,
    auditBatchSize: audit.batchSize,
  };
}
