/**
 * Rule routes (reference §2.3–2.5): list (a user's own rules; everything, or `?owner=`, for a
 * superadmin), get, delete, and push. A push runs the whole request pipeline first — the body
 * checks of rule-validation.ts, the client by display name, the grant check, the post-grant
 * checks — and stores nothing on any failure. Pushes are never queued: until the fleet connects
 * clients, every valid push answers 422 `client_not_connected`.
 */
import type { Database } from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';

import { EVENTS, PortunusError, formatRfc3339 } from '@portunus/core';
import {
  deleteRule,
  enforcePush,
  findClientsByName,
  getClient,
  getRuleOrThrow,
  insertPendingRule,
  listRulesJson,
  totalChanges,
  type Client,
  type Rule,
  type RuleFilter,
} from '@portunus/store';

import { identityOf } from '../auth.js';
import type { Identity, OperatorContext } from '../context.js';
import { listWithLiveHealth, withLiveHealth } from '../rule-health.js';
import { checkGrantedPush, validateRuleBody, type RulePushBody } from '../rule-validation.js';

/** Rule JSON of `GET /v1/rules` (reference §2.5); absent optional fields are omitted. */
export function ruleView(rule: Rule): Record<string, unknown> {
  const [first] = rule.targets;
  return {
    id: rule.ruleId,
    client_id: rule.clientId,
    client_name: rule.clientName,
    listen_port: rule.listenPort,
    ...(rule.listenPortEnd !== null ? { listen_port_end: rule.listenPortEnd } : {}),
    target_host: first?.host ?? '',
    target_port: first?.port ?? 0,
    ...(first?.portEnd != null ? { target_port_end: first.portEnd } : {}),
    prefer_ipv6: rule.preferIpv6,
    protocol: rule.protocol,
    state: rule.state,
    created_at: formatRfc3339(rule.createdAt),
    last_state_change_at: formatRfc3339(rule.lastStateChangeAt),
    owner_user_id: rule.ownerUserId,
    targets: rule.targets.map((target) => ({
      host: target.host,
      port: target.port,
      priority: target.priority,
      proxy_protocol: target.proxyProtocol,
      health: null,
    })),
    ...(rule.healthCheckIntervalSecs !== null
      ? { health_check_interval_secs: rule.healthCheckIntervalSecs }
      : {}),
    ...(rule.sniPattern !== null ? { sni_pattern: rule.sniPattern } : {}),
    ...(rule.rateLimit !== null ? { rate_limit: rateLimitView(rule) } : {}),
  };
}

function rateLimitView(rule: Rule): Record<string, number> {
  const caps = rule.rateLimit ?? {};
  const view: Record<string, number> = {};
  const names: [keyof typeof caps, string][] = [
    ['bandwidthInBps', 'bandwidth_in_bps'],
    ['bandwidthOutBps', 'bandwidth_out_bps'],
    ['newConnectionsPerSec', 'new_connections_per_sec'],
    ['concurrentConnections', 'concurrent_connections'],
    ['bandwidthInBurst', 'bandwidth_in_burst'],
    ['bandwidthOutBurst', 'bandwidth_out_burst'],
    ['newConnectionsBurst', 'new_connections_burst'],
  ];
  for (const [field, name] of names) {
    const value = caps[field];
    if (value !== undefined) view[name] = value;
  }
  return view;
}

/** The rule, if the caller may see it: its owner or a superadmin. */
function ownedRule(ctx: OperatorContext, identity: Identity, ruleId: number): Rule {
  const rule = getRuleOrThrow(ctx.db, ruleId);
  if (identity.role !== 'superadmin' && rule.ownerUserId !== identity.userId) {
    throw new PortunusError('not_owner', `rule ${ruleId} belongs to another user`);
  }
  return rule;
}

function parseRuleId(text: string): number {
  const id = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(id) || id < 1)
    throw new PortunusError('rule_not_found', `no rule ${text}`);
  return id;
}

const port = { type: 'integer' } as const;
const optional = <T extends { type: string }>(schema: T) =>
  ({ ...schema, type: [schema.type, 'null'] }) as const;

const targetSchema = {
  type: 'object',
  required: ['host', 'port'],
  additionalProperties: false,
  properties: {
    host: { type: 'string', maxLength: 1024 },
    port,
    // rule_targets.priority is 0..99 in the schema.
    priority: optional({ type: 'integer', minimum: 0, maximum: 99 }),
    proxy_protocol: optional({ type: 'string', maxLength: 16 }),
  },
} as const;

const count = optional({ type: 'integer', minimum: 0 });

const pushSchema = {
  body: {
    type: 'object',
    required: ['client', 'listen_port'],
    additionalProperties: false,
    properties: {
      client: { type: 'string', minLength: 1, maxLength: 255 },
      listen_port: port,
      listen_port_end: optional(port),
      target_host: optional({ type: 'string', maxLength: 1024 }),
      target_port: optional(port),
      target_port_end: optional(port),
      targets: optional({ type: 'array', items: targetSchema, maxItems: 64 }),
      protocol: optional({ type: 'string', maxLength: 16 }),
      prefer_ipv6: optional({ type: 'boolean' }),
      ack_timeout_secs: optional({ type: 'integer', minimum: 1, maximum: 60 }),
      health_check_interval_secs: optional({ type: 'integer' }),
      sni_pattern: optional({ type: 'string', maxLength: 1024 }),
      rate_limit: optional({
        type: 'object',
        additionalProperties: false,
        properties: {
          bandwidth_in_bps: count,
          bandwidth_out_bps: count,
          new_connections_per_sec: count,
          concurrent_connections: count,
          bandwidth_in_burst: count,
          bandwidth_out_burst: count,
          new_connections_burst: count,
          concurrent_connections_burst: count,
        },
      }),
    },
  },
} as const;

/**
 * The client a push names: by display name (reference §2.4), else by client id; a name that
 * several clients share is ambiguous (DESIGN.md §8.6).
 */
function resolvePushClient(db: Database, reference: string): Client {
  const named = findClientsByName(db, reference);
  const [only] = named;
  if (named.length > 1) {
    throw new PortunusError(
      'ambiguous_client_name',
      `${named.length} clients are named ${JSON.stringify(reference)} (${named
        .map((client) => client.clientId)
        .join(', ')}); use the client id`,
      { client: reference },
    );
  }
  const client = only ?? getClient(db, reference);
  if (!client) {
    throw new PortunusError('client_not_found', `no client named ${JSON.stringify(reference)}`, {
      client: reference,
    });
  }
  return client;
}

/** Answers rendered since the last write, per filter (dashboards poll this every few seconds). */
const renderedRules = new WeakMap<
  OperatorContext,
  Map<string, { changes: number; json: string }>
>();
const MAX_CACHED_FILTERS = 64;

/**
 * The list as JSON text, rendered by SQLite (the store's listRulesJson: the same JSON as
 * ruleView without an object per rule; a contract test keeps the two equal), and reused until
 * the store changes.
 */
function renderRules(ctx: OperatorContext, filter: RuleFilter): string {
  let cache = renderedRules.get(ctx);
  if (!cache) {
    cache = new Map();
    renderedRules.set(ctx, cache);
  }
  const key = JSON.stringify([filter.clientName, filter.ownerUserId]);
  const changes = totalChanges(ctx.db);
  const hit = cache.get(key);
  if (hit?.changes === changes) return hit.json;
  if (cache.size >= MAX_CACHED_FILTERS) cache.clear();
  const json = listRulesJson(ctx.db, filter);
  cache.set(key, { changes, json });
  return json;
}

export function registerRuleRoutes(app: FastifyInstance, ctx: OperatorContext): void {
  app.get<{ Querystring: { client?: string; owner?: string } }>('/v1/rules', (request, reply) => {
    const identity = identityOf(request);
    const { client, owner } = request.query;
    if (owner !== undefined && identity.role !== 'superadmin') {
      throw new PortunusError('role_required', 'only a superadmin may filter by owner');
    }
    const filter: RuleFilter = {
      ...(client !== undefined ? { clientName: client } : {}),
      ...(identity.role === 'superadmin'
        ? owner !== undefined
          ? { ownerUserId: owner }
          : {}
        : { ownerUserId: identity.userId }),
    };
    const json = listWithLiveHealth(renderRules(ctx, filter), ctx.fleet);
    return reply.type('application/json; charset=utf-8').send(json);
  });

  app.get<{ Params: { ruleId: string } }>('/v1/rules/:ruleId', (request) =>
    withLiveHealth(
      ruleView(ownedRule(ctx, identityOf(request), parseRuleId(request.params.ruleId))),
      ctx.fleet,
    ),
  );

  app.delete<{ Params: { ruleId: string } }>('/v1/rules/:ruleId', (request, reply) => {
    const rule = ownedRule(ctx, identityOf(request), parseRuleId(request.params.ruleId));
    removeRule(ctx, rule);
    request.auditAction = {
      action: EVENTS.ruleRemoved,
      resourceKind: 'rule',
      resourceValue: String(rule.ruleId),
      details: { client_id: rule.clientId, owner_user_id: rule.ownerUserId },
    };
    return reply.status(204).send();
  });

  app.post<{ Body: RulePushBody }>('/v1/rules', { schema: pushSchema }, async (request, reply) => {
    const identity = identityOf(request);
    // 1. The body: shape → ranges → SNI → rate limit → targets → protocol.
    const push = validateRuleBody(request.body);
    // 2. The client, by display name.
    const client = resolvePushClient(ctx.db, push.clientName);
    // 3. Grants (superadmins bypass them): client → protocol → one grant for the whole range.
    if (identity.role !== 'superadmin') {
      enforcePush(ctx.db, {
        userId: identity.userId,
        clientId: client.clientId,
        protocol: push.protocol,
        listenPort: push.listenPort,
        listenPortEnd: push.listenPortEnd ?? push.listenPort,
      });
    }
    // 4. Legacy target-host syntax, PROXY protocol only on TCP, the range cap.
    checkGrantedPush(push, ctx.config.rangeRuleMaxPorts);
    // 5. Pushes are never queued.
    if (!ctx.fleet.isConnected(client.clientId)) {
      throw new PortunusError(
        'client_not_connected',
        `client ${JSON.stringify(client.clientName)} (${client.clientId}) is not connected; pushes are never queued`,
        { client_id: client.clientId },
      );
    }
    // 6. Capability gates (§4.4), then the conflict check (§5.9) and Pending, in one transaction.
    const gate = ctx.fleet.gate({ clientId: client.clientId, ...push });
    if (gate) {
      throw new PortunusError(gate, `client ${JSON.stringify(client.clientName)}: ${gate}`, {
        client_id: client.clientId,
      });
    }
    const rule = insertPendingRule(ctx.db, {
      clientId: client.clientId,
      ownerUserId: identity.userId,
      protocol: push.protocol,
      listenPort: push.listenPort,
      listenPortEnd: push.listenPortEnd,
      preferIpv6: push.preferIpv6,
      healthCheckIntervalSecs: push.healthCheckIntervalSecs,
      sniPattern: push.sniPattern,
      rateLimit: push.rateLimit,
      targets: push.targets,
      now: ctx.now(),
    });
    // From here the rule exists: an activation failure's deny row names it too.
    request.auditResource = { kind: 'rule', value: String(rule.ruleId) };
    // 7. Send RuleUpdate{PUSH} and wait for the RuleStatus up to the ack budget.
    const outcome = await ctx.fleet.push(rule, push.ackTimeoutSecs * 1000);
    const fields = { rule_id: rule.ruleId, client_id: client.clientId };
    ctx.logger.info(EVENTS.rulePush, { ...fields, outcome: outcome.kind });
    switch (outcome.kind) {
      case 'activated':
        return reply.status(201).send(pushView(getRuleOrThrow(ctx.db, rule.ruleId)));
      case 'failed':
        throw new PortunusError(
          'activation_failed',
          `client ${client.clientName} could not activate rule ${rule.ruleId}: ${outcome.reason}`,
          { ...fields, reason: outcome.reason },
        );
      case 'timeout':
      case 'lost':
        throw new PortunusError(
          'ack_timeout',
          `no answer from client ${client.clientName} within ${push.ackTimeoutSecs} s; rule ${rule.ruleId} stays pending`,
          fields,
        );
      case 'not_connected':
        deleteRule(ctx.db, rule.ruleId);
        throw new PortunusError(
          'client_not_connected',
          `client ${client.clientName} disconnected before the push was sent; nothing was stored`,
          fields,
        );
    }
  });

  app.get<{ Params: { ruleId: string }; Querystring: { per_port?: string; per_target?: string } }>(
    '/v1/rules/:ruleId/stats',
    (request) => {
      const rule = ownedRule(ctx, identityOf(request), parseRuleId(request.params.ruleId));
      const snapshot = ctx.fleet.ruleStats(rule.ruleId);
      if (!snapshot) {
        throw new PortunusError('rule_not_found', `no stats reported for rule ${rule.ruleId} yet`, {
          rule_id: rule.ruleId,
        });
      }
      const { per_port: perPort, per_target: perTarget, ...totals } = snapshot;
      return {
        ...totals,
        updated_at: formatRfc3339(totals.updated_at),
        ...(isTruthy(request.query.per_port)
          ? {
              per_port: perPort.map((port) => ({
                ...port,
                updated_at: formatRfc3339(port.updated_at),
              })),
            }
          : {}),
        ...(isTruthy(request.query.per_target) ? { per_target: perTarget } : {}),
      };
    },
  );
}

function isTruthy(value: string | undefined): boolean {
  return value === 'true' || value === '1' || value === 'yes';
}

/** The `POST /v1/rules` answer (reference §2.3): `owner`, where the list says owner_user_id. */
function pushView(rule: Rule): Record<string, unknown> {
  const [first] = rule.targets;
  const state =
    rule.state.kind === 'failed'
      ? `Failed:${rule.state.reason ?? 'unspecified'}`
      : rule.state.kind.charAt(0).toUpperCase() + rule.state.kind.slice(1);
  return {
    rule_id: rule.ruleId,
    status: state,
    target_host: first?.host ?? '',
    prefer_ipv6: rule.preferIpv6,
    protocol: rule.protocol,
    owner: rule.ownerUserId,
    ...(rule.sniPattern !== null ? { sni_pattern: rule.sniPattern } : {}),
  };
}

/** Removes a rule from the store, then has its client drain it (reference §2.3 DELETE). */
function removeRule(ctx: OperatorContext, rule: Rule): void {
  if (!deleteRule(ctx.db, rule.ruleId)) {
    throw new PortunusError('rule_not_found', `no rule ${rule.ruleId}`, { rule_id: rule.ruleId });
  }
  ctx.fleet.remove([rule.ruleId]);
}
