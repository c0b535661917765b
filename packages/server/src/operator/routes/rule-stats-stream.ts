/**
 * `GET /v1/rules/{id}/stats/stream` (reference §2.3): Server-Sent Events for one rule's counters —
 * the current snapshot first (if any report arrived), then one `stats` event per stats report, and
 * a `: keepalive` comment every 30 s so proxies keep an idle stream open. A subscriber whose socket
 * does not drain is lagging: its snapshots are dropped (never queued without bound, so one slow
 * browser costs the server nothing) and after too many in a row the stream is closed
 * (`stats_stream.lagged`); the browser then reconnects or falls back to polling. RBAC is the same
 * as `…/stats`: the rule's owner or a superadmin, checked before the stream opens so a denial is
 * the JSON error envelope. Open streams end when the app closes, so shutdown never waits on one.
 */
import type { ServerResponse } from 'node:http';

import type { FastifyInstance } from 'fastify';

import { NoQuerySchema } from '@portunus/api';
import { EVENTS, PortunusError, formatRfc3339 } from '@portunus/core';

import type { RuleStatsSnapshot } from '../../control/rule-stats.js';
import { ownedRule } from '../../services/rules.js';
import { identityOf } from '../auth.js';
import type { OperatorContext } from '../context.js';
import { AUTH_FAILURES, failures, pathParams, textAnswer } from '../route-schemas.js';

const streamSchema = {
  params: pathParams({ ruleId: undefined }),
  querystring: NoQuerySchema,
  response: {
    200: textAnswer(
      'text/event-stream',
      '`stats` events whose data is the RuleStatsSnapshot of GET /v1/rules/{id}/stats (with per_target), and `: keepalive` comments',
    ),
    ...failures(AUTH_FAILURES, ['rule_not_found', 'not_owner']),
  },
};

export const STATS_STREAM_KEEPALIVE_MS = 30_000;
/** Bytes waiting in the socket beyond which a snapshot is dropped instead of written. */
export const STATS_STREAM_LAG_BYTES = 64 * 1024;
/** Consecutive dropped snapshots after which a lagging stream is closed. */
export const STATS_STREAM_MAX_DROPS = 8;

function event(snapshot: RuleStatsSnapshot): string {
  // Totals only, as `…/stats` without per_port: the browser shows rule-level counters.
  const data = { ...snapshot, per_port: undefined, updated_at: formatRfc3339(snapshot.updated_at) };
  return `event: stats\ndata: ${JSON.stringify(data)}\n\n`;
}

export function registerRuleStatsStreamRoute(app: FastifyInstance, ctx: OperatorContext): void {
  const open = new Set<ServerResponse>();
  app.addHook('preClose', (done) => {
    for (const raw of open) raw.end();
    done();
  });

  app.get<{ Params: { ruleId: string } }>(
    '/v1/rules/:ruleId/stats/stream',
    { schema: streamSchema },
    (request, reply) => {
      const text = request.params.ruleId;
      const id = /^\d{1,15}$/.test(text) ? Number(text) : 0;
      if (id < 1) throw new PortunusError('rule_not_found', `no rule ${text}`);
      const rule = ownedRule(ctx, identityOf(request), id);
      // From here on the socket is ours: fastify's onSend (audit, metrics) is for finished answers.
      ctx.metrics.operatorRequests.inc({ outcome: 'allow', reason: 'ok' });
      void reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      open.add(raw);
      let drops = 0;
      const send = (snapshot: RuleStatsSnapshot) => {
        if (raw.writableLength > STATS_STREAM_LAG_BYTES) {
          drops++;
          if (drops === 1 || drops >= STATS_STREAM_MAX_DROPS) {
            ctx.logger.warn(EVENTS.statsStreamLagged, {
              rule_id: rule.ruleId,
              dropped: drops,
              closing: drops >= STATS_STREAM_MAX_DROPS,
            });
          }
          if (drops >= STATS_STREAM_MAX_DROPS) raw.destroy();
          return;
        }
        drops = 0;
        raw.write(event(snapshot));
      };
      raw.write(': stream open\n\n');
      const current = ctx.fleet.ruleStats(rule.ruleId);
      if (current) send(current);
      const unsubscribe = ctx.fleet.subscribeRuleStats(rule.ruleId, send);
      const keepAlive = setInterval(() => {
        raw.write(': keepalive\n\n');
      }, ctx.statsStreamKeepAliveMs ?? STATS_STREAM_KEEPALIVE_MS);
      keepAlive.unref();
      raw.on('close', () => {
        unsubscribe();
        clearInterval(keepAlive);
        open.delete(raw);
      });
    },
  );
}
