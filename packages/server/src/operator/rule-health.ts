/**
 * Live target health in the rule JSON (reference §2.5 `targets[].health`). The store renders the
 * rule list in SQL and the server caches that text until the next write, so health — which
 * changes with traffic, not with writes — cannot come from there. It is laid over the stored
 * view here from the fleet's latest stats reports, matching each target by its position and
 * host:port (a stale report of an older definition is ignored). With no per-target report at
 * all, the cached text is served untouched. Depends on the fleet's stats types only.
 */
import type { TargetStatsSnapshot } from '../control/rule-stats.js';

export interface TargetHealthView {
  healthy: boolean;
  consecutive_failures: number;
  last_failure_at_unix_ms: number;
  last_success_at_unix_ms: number;
}

/** What this needs of the fleet: the live per-target reports, by rule id. */
export interface TargetHealthSource {
  liveTargetHealth(): ReadonlyMap<number, readonly TargetStatsSnapshot[]>;
}

interface RuleJson {
  id: number;
  targets: { host: string; port: number; health: TargetHealthView | null }[];
}

export function targetHealthView(target: TargetStatsSnapshot): TargetHealthView {
  return {
    healthy: target.health === 0,
    consecutive_failures: target.consecutive_failures,
    last_failure_at_unix_ms: target.last_failure_at_unix_ms,
    last_success_at_unix_ms: target.last_success_at_unix_ms,
  };
}

function overlay(view: RuleJson, reported: readonly TargetStatsSnapshot[] | undefined): void {
  if (!reported) return;
  view.targets.forEach((target, index) => {
    const live = reported.find((t) => t.index === index);
    if (live && live.host === target.host && live.port === target.port) {
      target.health = targetHealthView(live);
    }
  });
}

/** One rule view (an object from ruleView) with its live health. */
export function withLiveHealth<T extends object>(view: T, source: TargetHealthSource): T {
  const rule = view as unknown as RuleJson;
  overlay(rule, source.liveTargetHealth().get(rule.id));
  return view;
}

/** The rule list as JSON text with live health; the text itself when nothing is reported. */
export function listWithLiveHealth(json: string, source: TargetHealthSource): string {
  const live = source.liveTargetHealth();
  if (live.size === 0) return json;
  const rules = JSON.parse(json) as RuleJson[];
  let touched = false;
  for (const rule of rules) {
    const reported = live.get(rule.id);
    if (!reported) continue;
    overlay(rule, reported);
    touched = true;
  }
  return touched ? JSON.stringify(rules) : json;
}
