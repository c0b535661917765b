/**
 * Rule routes (reference §2.3–2.5): list (own rules for a user, all or `?owner=` for a
 * superadmin), get, delete, and push. A push runs the whole validation pipeline and the RBAC
 * check first; pushes are never queued, so until the fleet connects clients every valid push
 * answers 422 `client_not_connected` and stores nothing.
 */
import type { FastifyInstance } from 'fastify';

import { EVENTS, PortunusError, formatRfc3339 } from '@portunus/core';
import {
  deleteRule,
  enforcePush,
  findClientsByName,
  getRuleOrThrow,
  listRulesJson,
  totalChanges,
  type Rule,
  type RuleFilter,
} from '@portunus/store';

import { identityOf } from '../auth.js';
import type { Identity, OperatorContext } from '../context.js';
import { validateRulePush, type RulePushBody } from '../rule-validation.js';

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

const targetSchema = {
  type: 'object',
  required: ['host', 'port'],
  additionalProperties: false,
  properties: {
    host: { type: 'string', maxLength: 253 },
    port: { type: 'integer' },
    priority: { type: 'integer' },
    proxy_protocol: { enum: ['v1', 'v2'] },
  },
} as const;

const pushSchema = {
  body: {
    type: 'object',
    required: ['client', 'listen_port'],
    additionalProperties: false,
    properties: {
      client: { type: 'string', minLength: 1, maxLength: 255 },
      listen_port: { type: 'integer' },
      listen_port_end: { type: 'integer' },
      target_host: { type: 'string', maxLength: 253 },
      target_port: { type: 'integer' },
      target_port_end: { type: 'integer' },
      targets: { type: 'array', items: targetSchema, maxItems: 64 },
      protocol: { type: 'string', maxLength: 16 },
      prefer_ipv6: { type: 'boolean' },
      ack_timeout_secs: { type: 'number', minimum: 0.1, maximum: 60 },
      health_check_interval_secs: { type: 'integer' },
      sni_pattern: { type: 'string', maxLength: 512 },
      rate_limit: { type: 'object', additionalProperties: { type: 'number' } },
    },
  },
} as const;

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
    return reply.type('application/json; charset=utf-8').send(renderRules(ctx, filter));
  });

  app.get<{ Params: { ruleId: string } }>('/v1/rules/:ruleId', (request) =>
    ruleView(ownedRule(ctx, identityOf(request), parseRuleId(request.params.ruleId))),
  );

  app.delete<{ Params: { ruleId: string } }>('/v1/rules/:ruleId', (request, reply) => {
    const rule = ownedRule(ctx, identityOf(request), parseRuleId(request.params.ruleId));
    // The client drains the rule when the fleet sends REMOVE; the stored rule goes now.
    deleteRule(ctx.db, rule.ruleId);
    ctx.logger.info('audit.rule_remove', { rule_id: rule.ruleId, client_id: rule.clientId });
    request.auditAction = {
      action: EVENTS.ruleRemoved,
      resourceKind: 'rule',
      resourceValue: String(rule.ruleId),
    };
    return reply.status(204).send();
  });

  app.post<{ Body: RulePushBody }>('/v1/rules', { schema: pushSchema }, (request) => {
    const identity = identityOf(request);
    const push = validateRulePush(request.body);
    const clients = findClientsByName(ctx.db, push.clientName);
    if (clients.length === 0) {
      throw new PortunusError(
        'client_not_found',
        `no client named ${JSON.stringify(push.clientName)}`,
      );
    }
    // A push goes to the first connected client of that name (reference §6.6).
    const target = clients.find((client) => ctx.fleet.isConnected(client.clientId)) ?? clients[0];
    if (!target) throw new PortunusError('client_not_found');
    if (identity.role !== 'superadmin') {
      enforcePush(ctx.db, {
        userId: identity.userId,
        clientId: target.clientId,
        protocol: push.protocol,
        listenPort: push.listenPort,
        listenPortEnd: push.listenPortEnd ?? push.listenPort,
      });
    }
    if (!ctx.fleet.isConnected(target.clientId)) {
      throw new PortunusError(
        'client_not_connected',
        `client ${push.clientName} is not connected; pushes are never queued`,
      );
    }
    // A connected client needs the control stream, which the fleet work adds; nothing connects
    // before it, so no push can be delivered yet.
    throw new PortunusError('client_not_connected', 'the control stream is not available yet');
  });
}
