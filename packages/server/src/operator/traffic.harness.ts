/**
 * The traffic side of the server's contract tests (tests only), beside contract.harness.ts: a
 * ControlFleet over a ContractHarness's store and clock whose stats rounds go through the real
 * traffic accounting into a real QuotaEngine, an edge session opened on it with a recording
 * stream, the wire stats row an edge reports, the store rows a quota needs (a grant, an active
 * rule) and a quota's status read through the app. It drives rounds by hand and must not open
 * sockets or depend on timers; a test that needs either brings its own.
 */
import assert from 'node:assert/strict';

import type { QuotaView } from '@portunus/api';
import { silentLogger } from '@portunus/core';
import type { Hello, ServerMessage, WireRuleStats } from '@portunus/proto';
import { insertGrant, insertRule } from '@portunus/store';

import { ControlFleet, type ControlFleetOptions } from '../control/fleet.js';
import { TrafficAccounting } from '../traffic/accounting.js';
import { QuotaEngine, registerQuotaMetrics, type QuotaEngineOptions } from '../traffic/quotas.js';
import type { ContractHarness } from './contract.harness.js';

/** One rule's cumulative counters as an edge reports them; the rest zero unless in `extra`. */
export function wireStats(
  ruleId: number,
  bytesIn: number,
  bytesOut: number,
  extra: Partial<WireRuleStats> = {},
): WireRuleStats {
  return {
    rule_id: String(ruleId),
    bytes_in: bytesIn,
    bytes_out: bytesOut,
    active_connections: 0,
    per_port: [],
    dns_failures: 0,
    datagrams_in: 0,
    datagrams_out: 0,
    active_flows: 0,
    flows_dropped_overflow: 0,
    target_failovers_total: 0,
    per_target: [],
    ...extra,
  };
}

/**
 * A fleet and quota engine wired as `serve` wires them: each accounted round feeds the engine,
 * and the engine pushes its updates through the fleet. `engine` takes the alert sink and timers
 * a test injects; `fleet` an observer.
 */
export function quotaFleet(
  h: ContractHarness,
  options: {
    engine?: Pick<QuotaEngineOptions, 'alerts' | 'timers'>;
    fleet?: Pick<ControlFleetOptions, 'observer'>;
  } = {},
): { fleet: ControlFleet; engine: QuotaEngine } {
  const engine = new QuotaEngine({
    db: h.store.db,
    logger: silentLogger,
    metrics: registerQuotaMetrics(h.metrics.registry, h.store.db),
    now: () => h.clock,
    ...options.engine,
  });
  const fleet = new ControlFleet({
    db: h.store.db,
    logger: silentLogger,
    metrics: h.metrics,
    now: () => h.clock,
    traffic: new TrafficAccounting({
      db: h.store.db,
      logger: silentLogger,
      now: () => h.clock,
      onRound: (clientId, result) => {
        engine.onRound(clientId, result);
      },
    }),
    quotas: engine,
    ...options.fleet,
  });
  engine.attach(fleet);
  return { fleet, engine };
}

/**
 * Opens a session for an edge that can carry quotas (client 0.13.0, TCP); `onMessage` sees what
 * the server pushes to it (a callback, not an array, since tests replace their array between
 * cases). `hello` overrides the Hello, for an edge too old for quotas.
 */
export function openEdge(
  fleet: ControlFleet,
  client: { clientId: string; clientName: string; remoteAddr?: string },
  onMessage: (message: ServerMessage) => void = () => undefined,
  hello: Partial<Hello> = {},
): ReturnType<ControlFleet['open']> {
  return fleet.open(
    { remoteAddr: '127.0.0.1:5555', ...client },
    {
      protocol_version: '1.0.0',
      client_version: '0.13.0',
      supported_protocols: ['TCP'],
      ...hello,
    },
    { send: onMessage, end: () => undefined },
  );
}

/** A TCP grant of ports `start`..`end` on the client, so the user may own rules and quotas. */
export function grantTcpPorts(
  h: ContractHarness,
  grant: { grantId: string; userId: string; clientId: string; start: number; end: number },
): void {
  insertGrant(h.store.db, {
    grantId: grant.grantId,
    userId: grant.userId,
    clientId: grant.clientId,
    listenPortStart: grant.start,
    listenPortEnd: grant.end,
    protocols: ['tcp'],
    note: '',
    now: h.clock,
  });
}

/** An active TCP rule of `ownerUserId` on the client to a documentation address; its id. */
export function activeTcpRule(
  h: ContractHarness,
  clientId: string,
  ownerUserId: string,
  listenPort: number,
): number {
  return insertRule(h.store.db, {
    clientId,
    ownerUserId,
    protocol: 'tcp',
    listenPort,
    targets: [{ host: '192.0.2.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null }],
    state: { kind: 'active' },
    now: h.clock,
  }).ruleId;
}

/** The quota's status as `token` reads it through the app; fails unless 200. */
export async function quotaStatus(
  h: ContractHarness,
  token: string,
  user: string,
  clientId: string,
): Promise<QuotaView> {
  const response = await h.bearer(token, {
    method: 'GET',
    url: `/v1/users/${user}/quotas/${clientId}/status`,
  });
  assert.equal(response.statusCode, 200, response.body);
  return response.json<QuotaView>();
}
