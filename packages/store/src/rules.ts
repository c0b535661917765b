/**
 * The rules aggregate: forwarding rules as pushed to a client, with their targets (1..8 rows in
 * rule_targets; a single-target rule has one), optional per-rule rate-limit caps and their state
 * (pending → active | failed(reason) | removed), which survives restarts. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import type { Protocol } from './grants.js';
import { immediate, prepared } from './statements.js';

export type RuleStateKind = 'pending' | 'active' | 'failed' | 'removed';

export interface RuleState {
  kind: RuleStateKind;
  reason?: string;
}

export interface RuleTarget {
  host: string;
  port: number;
  portEnd: number | null;
  priority: number;
  proxyProtocol: 'v1' | 'v2' | null;
}

export interface RateLimit {
  bandwidthInBps?: number;
  bandwidthOutBps?: number;
  newConnectionsPerSec?: number;
  concurrentConnections?: number;
  bandwidthInBurst?: number;
  bandwidthOutBurst?: number;
  newConnectionsBurst?: number;
}

/**
 * What a rule is, without its state and times: the part an edit replaces, a revision records and
 * a restore recreates. Every layer compares and stores definitions through `definitionOf`, so the
 * field list exists once.
 */
export interface RuleDefinition {
  ruleId: number;
  clientId: string;
  ownerUserId: string;
  protocol: Protocol;
  listenPort: number;
  listenPortEnd: number | null;
  preferIpv6: boolean;
  healthCheckIntervalSecs: number | null;
  sniPattern: string | null;
  rateLimit: RateLimit | null;
  targets: RuleTarget[];
}

export interface Rule extends RuleDefinition {
  clientName: string;
  state: RuleState;
  createdAt: number;
  updatedAt: number;
  lastStateChangeAt: number;
}

/**
 * The canonical definition of a rule: fixed key order, caps in column order, absent optional
 * fields as null — so two definitions are equal exactly when their JSON texts are.
 */
export function definitionOf(rule: RuleDefinition): RuleDefinition {
  let rateLimit: RateLimit | null = null;
  for (const [, field] of RATE_LIMIT_COLUMNS) {
    const value = rule.rateLimit?.[field];
    if (value !== undefined) (rateLimit ??= {})[field] = value;
  }
  return {
    ruleId: rule.ruleId,
    clientId: rule.clientId,
    ownerUserId: rule.ownerUserId,
    protocol: rule.protocol,
    listenPort: rule.listenPort,
    listenPortEnd: rule.listenPortEnd ?? null,
    preferIpv6: rule.preferIpv6,
    healthCheckIntervalSecs: rule.healthCheckIntervalSecs ?? null,
    sniPattern: rule.sniPattern ?? null,
    rateLimit,
    targets: rule.targets.map((target) => ({
      host: target.host,
      port: target.port,
      portEnd: target.portEnd ?? null,
      priority: target.priority,
      proxyProtocol: target.proxyProtocol ?? null,
    })),
  };
}

export function sameDefinition(a: RuleDefinition, b: RuleDefinition): boolean {
  return JSON.stringify(definitionOf(a)) === JSON.stringify(definitionOf(b));
}

export interface NewRule {
  /** Set only to recreate a rule under the id it had (a restore); else the next id. */
  ruleId?: number;
  clientId: string;
  ownerUserId: string;
  protocol: Protocol;
  listenPort: number;
  listenPortEnd?: number | null;
  preferIpv6?: boolean;
  healthCheckIntervalSecs?: number | null;
  sniPattern?: string | null;
  rateLimit?: RateLimit | null;
  targets: readonly RuleTarget[];
  state?: RuleState;
  now: number;
}

/** Column ↔ field of the rate-limit caps, shared by rules and owner envelopes. */
export const RATE_LIMIT_COLUMNS = [
  ['rl_bandwidth_in_bps', 'bandwidthInBps'],
  ['rl_bandwidth_out_bps', 'bandwidthOutBps'],
  ['rl_new_connections_per_sec', 'newConnectionsPerSec'],
  ['rl_concurrent_connections', 'concurrentConnections'],
  ['rl_bandwidth_in_burst', 'bandwidthInBurst'],
  ['rl_bandwidth_out_burst', 'bandwidthOutBurst'],
  ['rl_new_connections_burst', 'newConnectionsBurst'],
] as const satisfies readonly (readonly [string, keyof RateLimit])[];

type RuleRow = {
  rule_id: number;
  client_id: string;
  client_name: string;
  owner_user_id: string;
  protocol: Protocol;
  listen_port: number;
  listen_port_end: number | null;
  prefer_ipv6: number;
  health_check_interval_secs: number | null;
  sni_pattern: string | null;
  state_kind: RuleStateKind;
  state_reason: string | null;
  created_at: number;
  updated_at: number;
  last_state_change_at: number;
} & Record<(typeof RATE_LIMIT_COLUMNS)[number][0], number | null>;

interface TargetRow {
  rule_id: number;
  host: string;
  port: number;
  port_end: number | null;
  priority: number;
  proxy_protocol: 'v1' | 'v2' | null;
}

const SELECT = 'SELECT r.*, c.client_name FROM rules r JOIN clients c USING (client_id)';

function rateLimitOf(row: RuleRow): RateLimit | null {
  const caps: RateLimit = {};
  for (const [column, field] of RATE_LIMIT_COLUMNS) {
    const value = row[column];
    if (value !== null) caps[field] = value;
  }
  return Object.keys(caps).length > 0 ? caps : null;
}

function groupTargets(rows: TargetRow[]): Map<number, RuleTarget[]> {
  const targets = new Map<number, RuleTarget[]>();
  for (const target of rows) {
    let list = targets.get(target.rule_id);
    if (!list) {
      list = [];
      targets.set(target.rule_id, list);
    }
    list.push({
      host: target.host,
      port: target.port,
      portEnd: target.port_end,
      priority: target.priority,
      proxyProtocol: target.proxy_protocol,
    });
  }
  return targets;
}

const TARGET_COLUMNS = 't.rule_id, t.host, t.port, t.port_end, t.priority, t.proxy_protocol';

function assemble(rows: RuleRow[], targets: Map<number, RuleTarget[]>): Rule[] {
  return rows.map((row) => ({
    ruleId: row.rule_id,
    clientId: row.client_id,
    clientName: row.client_name,
    ownerUserId: row.owner_user_id,
    protocol: row.protocol,
    listenPort: row.listen_port,
    listenPortEnd: row.listen_port_end,
    preferIpv6: row.prefer_ipv6 === 1,
    healthCheckIntervalSecs: row.health_check_interval_secs,
    sniPattern: row.sni_pattern,
    rateLimit: rateLimitOf(row),
    state:
      row.state_reason === null
        ? { kind: row.state_kind }
        : { kind: row.state_kind, reason: row.state_reason },
    targets: targets.get(row.rule_id) ?? [],
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    lastStateChangeAt: row.last_state_change_at,
  }));
}

export function insertRule(db: Database, rule: NewRule): Rule {
  return immediate(db, () => {
    const state = rule.state ?? { kind: 'pending' };
    const caps = RATE_LIMIT_COLUMNS.map(([, field]) => rule.rateLimit?.[field] ?? null);
    const info = prepared(
      db,
      `INSERT INTO rules (rule_id, client_id, owner_user_id, protocol, listen_port, listen_port_end,
         prefer_ipv6, health_check_interval_secs, sni_pattern,
         ${RATE_LIMIT_COLUMNS.map(([column]) => column).join(', ')},
         state_kind, state_reason, created_at, updated_at, last_state_change_at)
       VALUES (${Array.from({ length: 9 + RATE_LIMIT_COLUMNS.length + 5 }, () => '?').join(', ')})`,
    ).run(
      rule.ruleId ?? null,
      rule.clientId,
      rule.ownerUserId,
      rule.protocol,
      rule.listenPort,
      rule.listenPortEnd ?? null,
      rule.preferIpv6 ? 1 : 0,
      rule.healthCheckIntervalSecs ?? null,
      rule.sniPattern ?? null,
      ...caps,
      state.kind,
      state.kind === 'failed' ? (state.reason ?? 'unspecified') : null,
      rule.now,
      rule.now,
      rule.now,
    );
    const ruleId = Number(info.lastInsertRowid);
    insertTargets(db, ruleId, rule.targets);
    return getRuleOrThrow(db, ruleId);
  });
}

function insertTargets(db: Database, ruleId: number, targets: readonly RuleTarget[]): void {
  const insertTarget = prepared(
    db,
    `INSERT INTO rule_targets (rule_id, idx, host, port, port_end, priority, proxy_protocol)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  targets.forEach((target, idx) => {
    insertTarget.run(
      ruleId,
      idx,
      target.host,
      target.port,
      target.portEnd,
      target.priority,
      target.proxyProtocol,
    );
  });
}

/**
 * Replaces the definition of a stored rule (an edit the client accepted): every field but its id
 * and client, and its targets; the state becomes `state`. Throws rule_not_found when it is gone.
 */
export function replaceRuleDefinition(
  db: Database,
  definition: RuleDefinition,
  state: RuleState,
  now: number,
): Rule {
  return immediate(db, () => {
    const caps = RATE_LIMIT_COLUMNS.map(([, field]) => definition.rateLimit?.[field] ?? null);
    const result = prepared(
      db,
      `UPDATE rules SET owner_user_id = ?, protocol = ?, listen_port = ?, listen_port_end = ?,
         prefer_ipv6 = ?, health_check_interval_secs = ?, sni_pattern = ?,
         ${RATE_LIMIT_COLUMNS.map(([column]) => `${column} = ?`).join(', ')},
         state_kind = ?, state_reason = ?, updated_at = ?, last_state_change_at = ?
       WHERE rule_id = ? AND client_id = ?`,
    ).run(
      definition.ownerUserId,
      definition.protocol,
      definition.listenPort,
      definition.listenPortEnd,
      definition.preferIpv6 ? 1 : 0,
      definition.healthCheckIntervalSecs,
      definition.sniPattern,
      ...caps,
      state.kind,
      state.kind === 'failed' ? (state.reason ?? 'unspecified') : null,
      now,
      now,
      definition.ruleId,
      definition.clientId,
    );
    if (result.changes === 0) {
      throw new PortunusError('rule_not_found', `no rule ${definition.ruleId}`, {
        rule_id: definition.ruleId,
      });
    }
    prepared(db, 'DELETE FROM rule_targets WHERE rule_id = ?').run(definition.ruleId);
    insertTargets(db, definition.ruleId, definition.targets);
    return getRuleOrThrow(db, definition.ruleId);
  });
}

export function getRule(db: Database, ruleId: number): Rule | undefined {
  const row = prepared(db, `${SELECT} WHERE r.rule_id = ?`).get(ruleId) as RuleRow | undefined;
  if (!row) return undefined;
  const targets = prepared(
    db,
    `SELECT ${TARGET_COLUMNS} FROM rule_targets t WHERE t.rule_id = ? ORDER BY t.idx`,
  ).all(ruleId) as TargetRow[];
  return assemble([row], groupTargets(targets))[0];
}

export function getRuleOrThrow(db: Database, ruleId: number): Rule {
  const rule = getRule(db, ruleId);
  if (!rule) throw new PortunusError('rule_not_found', `no rule ${ruleId}`, { rule_id: ruleId });
  return rule;
}

export interface RuleFilter {
  clientId?: string;
  clientName?: string;
  ownerUserId?: string;
}

/** The list query's columns, read positionally: rows as arrays build ~5x faster than as objects. */
const LIST_COLUMNS = [
  'r.rule_id',
  'r.client_id',
  'c.client_name',
  'r.owner_user_id',
  'r.protocol',
  'r.listen_port',
  'r.listen_port_end',
  'r.prefer_ipv6',
  'r.health_check_interval_secs',
  'r.sni_pattern',
  'r.state_kind',
  'r.state_reason',
  'r.created_at',
  'r.updated_at',
  'r.last_state_change_at',
  ...RATE_LIMIT_COLUMNS.map(([column]) => `r.${column}`),
].join(', ');

function fromListRow(values: unknown[], targets: Map<number, RuleTarget[]>): Rule {
  const ruleId = values[0] as number;
  const reason = values[11] as string | null;
  const kind = values[10] as RuleStateKind;
  let rateLimit: RateLimit | null = null;
  RATE_LIMIT_COLUMNS.forEach(([, field], index) => {
    const value = values[15 + index] as number | null;
    if (value !== null) (rateLimit ??= {})[field] = value;
  });
  return {
    ruleId,
    clientId: values[1] as string,
    clientName: values[2] as string,
    ownerUserId: values[3] as string,
    protocol: values[4] as Protocol,
    listenPort: values[5] as number,
    listenPortEnd: values[6] as number | null,
    preferIpv6: values[7] === 1,
    healthCheckIntervalSecs: values[8] as number | null,
    sniPattern: values[9] as string | null,
    rateLimit,
    state: reason === null ? { kind } : { kind, reason },
    targets: targets.get(ruleId) ?? [],
    createdAt: values[12] as number,
    updatedAt: values[13] as number,
    lastStateChangeAt: values[14] as number,
  };
}

const RULE_FILTER = `(@clientId IS NULL OR r.client_id = @clientId)
  AND (@clientName IS NULL OR c.client_name = @clientName)
  AND (@ownerUserId IS NULL OR r.owner_user_id = @ownerUserId)`;

/** Rules matching the filter, by id; two queries whatever the count (no query per rule). */
export function listRules(db: Database, filter: RuleFilter = {}): Rule[] {
  const params = {
    clientId: filter.clientId ?? null,
    clientName: filter.clientName ?? null,
    ownerUserId: filter.ownerUserId ?? null,
  };
  const rows = prepared(
    db,
    `SELECT ${LIST_COLUMNS} FROM rules r JOIN clients c USING (client_id)
     WHERE ${RULE_FILTER} ORDER BY r.rule_id`,
  )
    .raw(true)
    .all(params) as unknown[][];
  if (rows.length === 0) return [];
  const targets = prepared(
    db,
    `SELECT ${TARGET_COLUMNS} FROM rule_targets t
     JOIN rules r USING (rule_id) JOIN clients c ON c.client_id = r.client_id
     WHERE ${RULE_FILTER} ORDER BY t.rule_id, t.idx`,
  ).all(params) as TargetRow[];
  const byRule = groupTargets(targets);
  return rows.map((values) => fromListRow(values, byRule));
}

/** Deletes a rule and its targets; false when it did not exist. */
export function deleteRule(db: Database, ruleId: number): boolean {
  return prepared(db, 'DELETE FROM rules WHERE rule_id = ?').run(ruleId).changes > 0;
}

export function setRuleState(db: Database, ruleId: number, state: RuleState, now: number): void {
  const result = prepared(
    db,
    `UPDATE rules SET state_kind = ?, state_reason = ?, updated_at = ?, last_state_change_at = ?
     WHERE rule_id = ?`,
  ).run(
    state.kind,
    state.kind === 'failed' ? (state.reason ?? 'unspecified') : null,
    now,
    now,
    ruleId,
  );
  if (result.changes === 0) {
    throw new PortunusError('rule_not_found', `no rule ${ruleId}`, { rule_id: ruleId });
  }
}

const RFC3339 = (column: string): string =>
  `strftime('%Y-%m-%dT%H:%M:%fZ', ${column} / 1000.0, 'unixepoch')`;

/**
 * The `GET /v1/rules` answer (reference §2.5) rendered by SQLite itself: a JSON array text,
 * with no JavaScript object per rule. Listing 10,000 rules through objects spent most of its time
 * allocating and serializing; SQLite's JSON functions build the same bytes in C. Absent optional
 * fields are dropped by json_patch (a null in a merge patch removes the key). The route's own
 * ruleView must render identically; a contract test compares the two.
 */
export function listRulesJson(db: Database, filter: RuleFilter = {}): string {
  const caps = RATE_LIMIT_COLUMNS.map(([column]) => `'${column.slice(3)}', r.${column}`).join(', ');
  const anyCap = RATE_LIMIT_COLUMNS.map(([column]) => `r.${column} IS NOT NULL`).join(' OR ');
  const row = prepared(
    db,
    `SELECT json_patch(
       json_object(
         'id', r.rule_id, 'client_id', r.client_id, 'client_name', c.client_name,
         'listen_port', r.listen_port,
         'target_host', coalesce(t0.host, ''), 'target_port', coalesce(t0.port, 0),
         'prefer_ipv6', json(CASE r.prefer_ipv6 WHEN 1 THEN 'true' ELSE 'false' END),
         'protocol', r.protocol,
         'state', json_patch(json_object('kind', r.state_kind), json_object('reason', r.state_reason)),
         'created_at', ${RFC3339('r.created_at')},
         'last_state_change_at', ${RFC3339('r.last_state_change_at')},
         'owner_user_id', r.owner_user_id,
         'targets', (SELECT json_group_array(json_object('host', host, 'port', port,
             'priority', priority, 'proxy_protocol', proxy_protocol, 'health', json('null')))
           FROM (SELECT * FROM rule_targets WHERE rule_id = r.rule_id ORDER BY idx))),
       json_object(
         'listen_port_end', r.listen_port_end, 'target_port_end', t0.port_end,
         'health_check_interval_secs', r.health_check_interval_secs,
         'sni_pattern', r.sni_pattern,
         'rate_limit', CASE WHEN ${anyCap} THEN json_patch('{}', json_object(${caps})) END))
     FROM rules r JOIN clients c USING (client_id)
     LEFT JOIN rule_targets t0 ON t0.rule_id = r.rule_id AND t0.idx = 0
     WHERE ${RULE_FILTER} ORDER BY r.rule_id`,
  );
  const params = {
    clientId: filter.clientId ?? null,
    clientName: filter.clientName ?? null,
    ownerUserId: filter.ownerUserId ?? null,
  };
  return `[${(row.pluck().all(params) as string[]).join(',')}]`;
}

/** Active rules with an SNI pattern, all clients (the `portunus_tls_sni_routes_active` gauge). */
export function countActiveSniRules(db: Database): number {
  return prepared(
    db,
    `SELECT count(*) FROM rules WHERE sni_pattern IS NOT NULL AND state_kind = 'active'`,
  )
    .pluck()
    .get() as number;
}

/** A rule holding ports: what the port-sharing decision needs (docs/sni-routing.md). */
export interface PortHolder {
  ruleId: number;
  listenPort: number;
  listenPortEnd: number | null;
  sniPattern: string | null;
}

/**
 * The rules of the same client and protocol that hold a port of the range: Active or Failed
 * (reference §5.9: Pending rules do not block; a Failed rule keeps its port until removed), in
 * port order. Whether they conflict is the caller's decision (SNI ports are shared).
 */
export function findPortHolders(
  db: Database,
  range: {
    clientId: string;
    protocol: Protocol;
    listenPort: number;
    listenPortEnd: number | null;
    /** An edited rule does not conflict with its own old ports. */
    exceptRuleId?: number;
  },
): PortHolder[] {
  const hi = range.listenPortEnd ?? range.listenPort;
  return prepared(
    db,
    `SELECT rule_id AS ruleId, listen_port AS listenPort, listen_port_end AS listenPortEnd,
            sni_pattern AS sniPattern
     FROM rules
     WHERE client_id = ? AND protocol = ? AND state_kind IN ('active', 'failed')
       AND listen_port <= ? AND coalesce(listen_port_end, listen_port) >= ? AND rule_id IS NOT ?
     ORDER BY listen_port, rule_id`,
  ).all(
    range.clientId,
    range.protocol,
    hi,
    range.listenPort,
    range.exceptRuleId ?? null,
  ) as PortHolder[];
}

/**
 * Stores a push as Pending. The caller runs its port-conflict check in the same transaction
 * (services/port-conflicts.ts), so a rejected push changes nothing and two pushes cannot both
 * pass the check against the same stored state.
 */
export function insertPendingRule(db: Database, rule: NewRule): Rule {
  return immediate(db, () => insertRule(db, { ...rule, state: { kind: 'pending' } }));
}
