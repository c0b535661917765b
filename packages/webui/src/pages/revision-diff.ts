/**
 * The rule-set revision diff as the revisions page renders it: the answer of
 * `GET /v1/rule-revisions/{n}/diff` (rules added since revision n, removed since, and changed,
 * with the names of the fields that differ) turned into rows of "now" against "after restore",
 * each value written the way the rules table writes it. The answer's shapes are @portunus/api's. Pure, so component tests exercise it directly; no React, no HTTP.
 */
import type { RevisionDiff, RuleDefinitionView } from '@portunus/api';

export type { RevisionDiff };
/** A rule's definition as the diff shows it (services/rule-definitions.ts `definitionView`). */
export type RevisionRule = RuleDefinitionView;
export type RevisionTarget = RuleDefinitionView['targets'][number];

/** What a restore to revision n does to one rule, with the fields shown side by side. */
export interface DiffEntry {
  ruleId: number;
  /** `remove`: added since n, a restore removes it; `recreate`: removed since; `revert`: edited. */
  change: 'remove' | 'recreate' | 'revert';
  title: string;
  rows: { field: string; now: string; restored: string; differs: boolean }[];
}

/** The fields a rule is shown with, in the order the push dialog asks for them. */
const FIELDS = [
  'client_name',
  'owner_user_id',
  'protocol',
  'listen_port',
  'listen_port_end',
  'targets',
  'prefer_ipv6',
  'health_check_interval_secs',
  'sni_pattern',
  'rate_limit',
  'allowed_sources',
  'denied_sources',
] as const;

function targetText(target: RevisionTarget): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  const port =
    target.port_end === undefined ? String(target.port) : `${target.port}-${target.port_end}`;
  const proxy = target.proxy_protocol ? ` PROXY ${target.proxy_protocol}` : '';
  return `${host}:${port} (p${target.priority}${proxy})`;
}

/** One field's value as text; absent is "—", so a removed cap reads as a change to "—". */
export function fieldText(rule: RevisionRule | undefined, field: (typeof FIELDS)[number]): string {
  if (!rule) return '—';
  switch (field) {
    case 'targets':
      return rule.targets.map(targetText).join(', ');
    case 'rate_limit': {
      const caps = Object.entries(rule.rate_limit ?? {}).filter(
        ([, cap]) => typeof cap === 'number',
      );
      return caps.length === 0
        ? '—'
        : caps.map(([name, cap]) => `${name}=${String(cap)}`).join(', ');
    }
    case 'allowed_sources':
    case 'denied_sources':
      return rule[field].length === 0 ? '—' : rule[field].join(', ');
    default: {
      const value = rule[field];
      return value === undefined || value === null ? '—' : String(value);
    }
  }
}

function ruleTitle(rule: RevisionRule): string {
  const listen =
    rule.listen_port_end === undefined
      ? String(rule.listen_port)
      : `${rule.listen_port}-${rule.listen_port_end}`;
  return `#${rule.rule_id} ${rule.client_name ?? rule.client_id} ${rule.protocol} :${listen}`;
}

function entry(
  change: DiffEntry['change'],
  now: RevisionRule | undefined,
  restored: RevisionRule | undefined,
): DiffEntry {
  const rule = (restored ?? now) as RevisionRule;
  const rows = FIELDS.map((field) => {
    const before = fieldText(now, field);
    const after = fieldText(restored, field);
    return { field, now: before, restored: after, differs: before !== after };
  }).filter((row) => row.differs || change === 'revert');
  return { ruleId: rule.rule_id, change, title: ruleTitle(rule), rows };
}

/**
 * The diff as entries ordered by rule id. An edited rule lists every field, the differing ones
 * marked, so the unchanged context is visible; an added or removed rule lists its set fields.
 */
export function diffEntries(diff: RevisionDiff): DiffEntry[] {
  return [
    ...diff.added.map((rule) => entry('remove', rule, undefined)),
    ...diff.removed.map((rule) => entry('recreate', undefined, rule)),
    ...diff.changed.map((change) => entry('revert', change.now, change.revision)),
  ].sort((a, b) => a.ruleId - b.ruleId);
}
