/**
 * Test harness for the operator API's contract tests (tests only): a real store in a temp data
 * dir, the real app built by `buildOperatorApp`, a settable clock, and helpers to onboard, log in
 * and call routes with a bearer token or a session cookie through `app.inject()`.
 */
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';

import { silentLogger, type Logger } from '@portunus/core';
import {
  AuditWriter,
  insertCredential,
  insertUser,
  openStore,
  queryAudit,
  type AuditEntry,
  type Role,
  type Store,
} from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { DEFAULT_CONFIG, type ServerConfig } from '../config.js';
import { hashPassword } from '../identity/passwords.js';
import { generateSecret, hashSecret, ulid } from '../identity/secrets.js';
import { createServerMetrics, type ServerMetrics } from '../metrics.js';
import { buildOperatorApp, type OperatorHttpLimits } from './app.js';
import {
  NO_FLEET,
  SESSION_COOKIE,
  type ControlEndpoint,
  type Fleet,
  type OperatorContext,
} from './context.js';

export const TEST_PASSWORD = 'correct horse battery staple';

export interface HarnessOptions {
  config?: Partial<ServerConfig>;
  fleet?: Fleet;
  control?: Partial<ControlEndpoint>;
  operatorToken?: string;
  auditCapacity?: number;
  /** Where the app logs (silent unless a test records it). */
  logger?: Logger;
  /** Socket and body limits of the app (hostile-input tests use small ones). */
  limits?: Partial<OperatorHttpLimits>;
  /** A directory of built web UI files (default: the real build, if any). */
  webUiDir?: string;
}

export class ContractHarness {
  readonly dirs = tempDirs();
  readonly store: Store;
  readonly audit: AuditWriter;
  readonly metrics: ServerMetrics;
  readonly context: OperatorContext;
  clock = Date.UTC(2026, 4, 1, 12, 0, 0);
  private appPromise: Promise<FastifyInstance> | undefined;
  private readonly limits: Partial<OperatorHttpLimits>;

  constructor(options: HarnessOptions = {}) {
    this.limits = options.limits ?? {};
    this.store = openStore(this.dirs.make('portunus-contract-'));
    this.metrics = createServerMetrics({ collectProcessMetrics: false });
    this.audit = new AuditWriter(this.store.db, {
      capacity: options.auditCapacity ?? 1024,
      onDrop: () => {
        this.metrics.auditBufferDrops.inc();
      },
    });
    this.context = {
      db: this.store.db,
      config: { ...DEFAULT_CONFIG, ...options.config },
      logger: options.logger ?? silentLogger,
      audit: this.audit,
      metrics: this.metrics,
      fleet: options.fleet ?? NO_FLEET,
      ...(options.webUiDir !== undefined ? { webUiDir: options.webUiDir } : {}),
      control: {
        fingerprintSha256: 'ab'.repeat(32),
        // A test certificate for localhost, 127.0.0.1 and *.example.com.
        coversHost: (host) =>
          ['localhost', '127.0.0.1'].includes(host.toLowerCase()) ||
          /^[a-z0-9-]+\.example\.com$/i.test(host),
        port: 7443,
        ...options.control,
      },
      now: () => this.clock,
      ...(options.operatorToken ? { operatorTokenHash: hashSecret(options.operatorToken) } : {}),
    };
  }

  app(): Promise<FastifyInstance> {
    this.appPromise ??= buildOperatorApp(this.context, this.limits);
    return this.appPromise;
  }

  async inject(options: InjectOptions): Promise<LightMyRequestResponse> {
    return (await this.app()).inject(options);
  }

  /** Creates a user with a password and an API token; returns the token. */
  async addUser(userId: string, role: Role, password = TEST_PASSWORD): Promise<string> {
    insertUser(this.store.db, {
      userId,
      role,
      displayName: `${userId} name`,
      passwordHash: await hashPassword(password),
      now: this.clock,
    });
    const token = generateSecret();
    insertCredential(this.store.db, {
      credentialId: ulid(this.clock),
      userId,
      hash: hashSecret(token),
      label: 'test',
      now: this.clock,
    });
    return token;
  }

  /** Logs in through the API and returns the session cookie value. */
  async login(userId: string, password = TEST_PASSWORD): Promise<string> {
    const response = await this.inject({
      method: 'POST',
      url: '/v1/auth/login',
      payload: { user_id: userId, password },
    });
    const cookie = response.cookies.find((c) => c.name === SESSION_COOKIE);
    if (response.statusCode !== 200 || !cookie) {
      throw new Error(`login failed: ${response.statusCode} ${response.body}`);
    }
    return cookie.value;
  }

  bearer(token: string, options: InjectOptions): Promise<LightMyRequestResponse> {
    return this.inject({
      ...options,
      headers: { ...options.headers, authorization: `Bearer ${token}` },
    });
  }

  /** A cookie-authenticated request that passes CSRF (same origin, header, JSON). */
  session(
    cookie: string,
    options: Omit<InjectOptions, 'headers'> & { headers?: Record<string, string | undefined> },
  ): Promise<LightMyRequestResponse> {
    const headers: Record<string, string> = {};
    const merged: Record<string, string | undefined> = {
      host: 'portunus.test',
      origin: 'http://portunus.test',
      'x-portunus-csrf': '1',
      ...options.headers,
    };
    // An undefined value leaves that header out, to test its absence.
    for (const [name, value] of Object.entries(merged))
      if (value !== undefined) headers[name] = value;
    return this.inject({ ...options, headers, cookies: { [SESSION_COOKIE]: cookie } });
  }

  /** Every audit row so far, oldest first. */
  auditRows(): AuditEntry[] {
    this.audit.flush();
    return queryAudit(this.store.db, { limit: 1000 }).entries.reverse();
  }

  async close(): Promise<void> {
    if (this.appPromise) await (await this.appPromise).close();
    this.audit.close();
    this.store.close();
    this.dirs.cleanup();
  }
}

/** The `code` of an error-envelope answer (or of its body text). */
export function errorCode(response: LightMyRequestResponse | string): string {
  const body = typeof response === 'string' ? response : response.body;
  return (JSON.parse(body) as { error: { code: string } }).error.code;
}

/** `portunus_operator_requests_total{outcome, reason}` as rendered for Prometheus. */
export async function requestCount(
  h: ContractHarness,
  outcome: string,
  reason: string,
): Promise<number> {
  const text = await h.metrics.render();
  for (const line of text.split('\n')) {
    if (!line.startsWith('portunus_operator_requests_total{')) continue;
    if (line.includes(`outcome="${outcome}"`) && line.includes(`reason="${reason}"`)) {
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return 0;
}

/** Harnesses a test file makes as it goes, closed together in its `after`. */
export function harnessPool(): {
  fresh: (options?: HarnessOptions) => ContractHarness;
  closeAll: () => Promise<void>;
} {
  const made: ContractHarness[] = [];
  return {
    fresh(options) {
      const harness = new ContractHarness(options);
      made.push(harness);
      return harness;
    },
    async closeAll() {
      for (const harness of made.splice(0)) await harness.close();
    },
  };
}
