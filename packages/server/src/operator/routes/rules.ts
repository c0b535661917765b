/**
 * Rule routes (reference §2.3–2.5): list (a user's own rules; everything, or `?owner=`, for a
 * superadmin), get, delete, push (POST) and edit (PUT, the full push body, the id stays). The
 * request pipeline and the store writes live in services/rules.ts, shared with every caller;
 * this module owns the HTTP shapes: body schemas, Rule JSON, the push answer and audit rows.
 */
import type { FastifyInstance } from 'fastify';

import Type from 'typebox';

import {
  NoQuerySchema,
  RuleListQuerySchema,
  RulePushRequestSchema,
  RulePushResponseSchema,
  RuleStatsQuerySchema,
  RuleStatsSnapshotSchema,
  RuleViewSchema,
  type RulePushResponse,
  type RuleStatsSnapshot,
  type RuleView,
} from '@portunus/api';

import { EVENTS, PortunusError, formatRfc3339 } from '@portunus/core';
import { listRulesJson, totalChanges, type Rule, type RuleFilter } from '@portunus/store';

import { rateLimitView } from '../../services/rule-definitions.js';
import { editRule, ownedRule, pushRule, removeRule } from '../../services/rules.js';
import { identityOf } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { listWithLiveHealth, withLiveHealth } from '../rule-health.js';
import type { RulePushBody } from '../rule-validation.js';
import {
  AUTH_FAILURES,
  NO_CONTENT,
  RULE_WRITE_FAILURES,
  failures,
  pathParams,
} from '../route-schemas.js';

/** Rule JSON of `GET /v1/rules` (reference §2.5); absent optional fields are omitted. */
export function ruleView(rule: Rule): RuleView {
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
    ...(rule.rateLimit !== null ? { rate_limit: rateLimitView(rule.rateLimit) } : {}),
    allowed_sources: rule.allowedSources,
    denied_sources: rule.deniedSources,
  };
}

function parseRuleId(text: string): number {
  const id = /^\d{1,15}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(id) || id < 1)
    throw new PortunusError('rule_not_found', `no rule ${text}`);
  return id;
}

// No length on the id: a malformed one is rule_not_found, as parseRuleId answers.
const ruleParams = pathParams({ ruleId: undefined });
const READ_FAILURES = [...AUTH_FAILURES, 'rule_not_found', 'not_owner'] as const;

const listSchema = {
  querystring: RuleListQuerySchema,
  response: { 200: Type.Array(RuleViewSchema), ...failures(AUTH_FAILURES, ['role_required']) },
};
const getSchema = {
  params: ruleParams,
  querystring: NoQuerySchema,
  response: { 200: RuleViewSchema, ...failures(READ_FAILURES) },
};
const deleteSchema = {
  params: ruleParams,
  querystring: NoQuerySchema,
  response: {
    204: NO_CONTENT,
    ...failures(READ_FAILURES, ['client_not_connected', 'ack_timeout']),
  },
};
const pushSchema = {
  querystring: NoQuerySchema,
  body: RulePushRequestSchema,
  response: { 201: RulePushResponseSchema, ...failures(AUTH_FAILURES, RULE_WRITE_FAILURES) },
};
const editSchema = {
  params: ruleParams,
  querystring: NoQuerySchema,
  body: RulePushRequestSchema,
  response: {
    200: RulePushResponseSchema,
    ...failures(AUTH_FAILURES, RULE_WRITE_FAILURES, ['rule_not_found']),
  },
};
const statsSchema = {
  params: ruleParams,
  querystring: RuleStatsQuerySchema,
  response: { 200: RuleStatsSnapshotSchema, ...failures(READ_FAILURES) },
};

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
  app.get<{ Querystring: { client?: string; owner?: string } }>(
    '/v1/rules',
    { schema: listSchema },
    (request, reply) => {
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
    },
  );

  app.get<{ Params: { ruleId: string } }>('/v1/rules/:ruleId', { schema: getSchema }, (request) =>
    withLiveHealth(
      ruleView(ownedRule(ctx, identityOf(request), parseRuleId(request.params.ruleId))),
      ctx.fleet,
    ),
  );

  app.delete<{ Params: { ruleId: string } }>(
    '/v1/rules/:ruleId',
    { schema: deleteSchema },
    (request, reply) => {
      const rule = removeRule(ctx, identityOf(request), parseRuleId(request.params.ruleId));
      request.auditAction = {
        action: EVENTS.ruleRemoved,
        resourceKind: 'rule',
        resourceValue: String(rule.ruleId),
        details: { client_id: rule.clientId, owner_user_id: rule.ownerUserId },
      };
      return reply.status(204).send();
    },
  );

  app.post<{ Body: RulePushBody }>('/v1/rules', { schema: pushSchema }, async (request, reply) => {
    const rule = await pushRule(ctx, identityOf(request), request.body, (ruleId) => {
      // From here the rule exists: an activation failure's deny row names it too.
      request.auditResource = { kind: 'rule', value: String(ruleId) };
    });
    return reply.status(201).send(pushView(rule));
  });

  app.put<{ Params: { ruleId: string }; Body: RulePushBody }>(
    '/v1/rules/:ruleId',
    { schema: editSchema },
    async (request) => {
      const ruleId = parseRuleId(request.params.ruleId);
      request.auditResource = { kind: 'rule', value: String(ruleId) };
      const edit = await editRule(ctx, identityOf(request), ruleId, request.body);
      request.auditAction = {
        action: EVENTS.ruleEdited,
        resourceKind: 'rule',
        resourceValue: String(ruleId),
        details: {
          client_id: edit.rule.clientId,
          owner_user_id: edit.rule.ownerUserId,
          changed: edit.changed,
          ...(edit.revision !== undefined ? { revision: edit.revision } : {}),
        },
      };
      return pushView(edit.rule);
    },
  );

  app.get<{ Params: { ruleId: string }; Querystring: { per_port?: string; per_target?: string } }>(
    '/v1/rules/:ruleId/stats',
    { schema: statsSchema },
    (request): RuleStatsSnapshot => {
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

/**
 * The answer of a push or an edit (reference §2.3): `owner`, where the list says owner_user_id.
 */
function pushView(rule: Rule): RulePushResponse {
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
