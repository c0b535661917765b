/**
 * The push dialog's form model and its translation into a `RulePushRequest` (reference §8 "Push
 * rule dialog"): one or more targets with priority and PROXY version, optional listen range,
 * health-check interval, SNI pattern, caps (every field of @portunus/api's RATE_LIMIT_FIELDS) and
 * the source allow/deny lists (comma- or space-separated CIDRs). A single target without caps goes
 * out in the legacy shape; anything else as `targets[]`. Caps and lists are checked with the
 * server's own api checks, so the dialog names a fault before the request leaves. Errors are keyed
 * by field so each input shows its own. Pure, so the component tests exercise it directly; no
 * React here.
 */
import {
  RATE_LIMIT_FIELDS,
  checkRateLimit,
  checkSourceList,
  isPort,
  normaliseSniPattern,
  type Protocol,
  type RateLimit,
  type RateLimitName,
  type RulePushRequest,
  type RuleView,
  type SourceListName,
} from '@portunus/api';

export interface TargetForm {
  host: string;
  port: string;
  priority: string;
  proxy: '' | 'v1' | 'v2';
}

export interface RuleForm {
  client: string;
  protocol: Protocol;
  listenPort: string;
  listenPortEnd: string;
  targets: TargetForm[];
  healthInterval: string;
  sniPattern: string;
  caps: Record<RateLimitName, string>;
  allowedSources: string;
  deniedSources: string;
}

/** The i18n key of each cap's label, shared by the dialog and its error messages. */
export const CAP_LABELS = {
  bandwidth_in_bps: 'rules.bandwidthIn',
  bandwidth_out_bps: 'rules.bandwidthOut',
  new_connections_per_sec: 'rules.newConnections',
  concurrent_connections: 'rules.concurrent',
  bandwidth_in_burst: 'rules.bandwidthInBurst',
  bandwidth_out_burst: 'rules.bandwidthOutBurst',
  new_connections_burst: 'rules.newConnectionsBurst',
} as const satisfies Record<RateLimitName, string>;

/** The form fields of the two source lists and their labels. */
export const SOURCE_FIELDS = [
  ['allowedSources', 'allowed_sources', 'rules.allowedSources'],
  ['deniedSources', 'denied_sources', 'rules.deniedSources'],
] as const satisfies readonly (readonly [keyof RuleForm, SourceListName, string])[];

const emptyCaps = (): Record<RateLimitName, string> =>
  Object.fromEntries(RATE_LIMIT_FIELDS.map((spec) => [spec.name, ''])) as Record<
    RateLimitName,
    string
  >;

/** `10.0.0.0/8, 2001:db8::/32` → the entries; blank → none. */
function sourceEntries(text: string): string[] {
  return text.split(/[\s,]+/).filter((entry) => entry !== '');
}

export const emptyTarget = (): TargetForm => ({ host: '', port: '', priority: '', proxy: '' });

export function emptyRuleForm(client = ''): RuleForm {
  return {
    client,
    protocol: 'tcp',
    listenPort: '',
    listenPortEnd: '',
    targets: [emptyTarget()],
    healthInterval: '',
    sniPattern: '',
    caps: emptyCaps(),
    allowedSources: '',
    deniedSources: '',
  };
}

/** The form that edits an existing rule: the same fields, filled from its Rule JSON. */
export function ruleFormOf(rule: RuleView): RuleForm {
  const form = emptyRuleForm(rule.client_name);
  const cap = (value: number | null | undefined) => (value == null ? '' : String(value));
  return {
    ...form,
    protocol: rule.protocol,
    listenPort: String(rule.listen_port),
    listenPortEnd: rule.listen_port_end === undefined ? '' : String(rule.listen_port_end),
    targets: rule.targets.map((target) => ({
      host: target.host,
      port: String(target.port),
      priority: String(target.priority),
      proxy: target.proxy_protocol ?? '',
    })),
    healthInterval:
      rule.health_check_interval_secs === undefined ? '' : String(rule.health_check_interval_secs),
    sniPattern: rule.sni_pattern ?? '',
    caps: Object.fromEntries(
      RATE_LIMIT_FIELDS.map((spec) => [spec.name, cap(rule.rate_limit?.[spec.name])]),
    ) as Record<RateLimitName, string>,
    allowedSources: rule.allowed_sources.join(', '),
    deniedSources: rule.denied_sources.join(', '),
  };
}

/** Field keys: `client`, `listenPort`, `listenPortEnd`, `targets.N.host`, `targets.N.port`, … */
export type RuleFormErrors = Record<string, string>;

type Translate = (key: string, options?: Record<string, unknown>) => string;

export function buildPushRequest(
  form: RuleForm,
  t: Translate,
): { request?: RulePushRequest; errors: RuleFormErrors } {
  const errors: RuleFormErrors = {};
  const port = (key: string, text: string, label: string, optional = false): number | undefined => {
    if (text.trim() === '') {
      if (!optional) errors[key] = t('common.required', { field: label });
      return undefined;
    }
    const value = Number(text);
    if (!isPort(value)) errors[key] = t('rules.badPort', { field: label });
    return value;
  };
  if (!form.client.trim()) errors['client'] = t('common.required', { field: t('rules.client') });
  const listenPort = port('listenPort', form.listenPort, t('rules.listenPort'));
  const listenPortEnd = port('listenPortEnd', form.listenPortEnd, t('rules.listenPortEnd'), true);
  const targets = form.targets.map((target, index) => {
    if (!target.host.trim())
      errors[`targets.${index}.host`] = t('common.required', { field: t('rules.targetHost') });
    const targetPort = port(`targets.${index}.port`, target.port, t('rules.targetPort'));
    return {
      host: target.host.trim(),
      port: targetPort ?? 0,
      ...(target.priority.trim() !== '' ? { priority: Number(target.priority) } : {}),
      ...(target.proxy !== '' ? { proxy_protocol: target.proxy } : {}),
    };
  });
  const rateLimit: RateLimit = {};
  for (const [key, text] of Object.entries(form.caps) as [keyof RuleForm['caps'], string][]) {
    if (text.trim() === '') continue;
    const value = Number(text);
    if (!Number.isInteger(value) || value < 1)
      errors[`caps.${key}`] = t('rules.badCap', { field: t(CAP_LABELS[key]) });
    rateLimit[key] = value;
  }
  // The server's own grammar (@portunus/api), so the form names a bad pattern before it leaves.
  const sni = form.sniPattern.trim() === '' ? undefined : normaliseSniPattern(form.sniPattern);
  if (typeof sni === 'object') {
    errors['sniPattern'] = t('rules.badSniPattern', { reason: sni.error });
  }
  if (!Object.keys(errors).some((key) => key.startsWith('caps.'))) {
    // Bursts against their rates, u32 ranges: the server's own check.
    const checked = checkRateLimit(rateLimit);
    if ('problem' in checked)
      errors['caps'] = t('rules.badCaps', { detail: checked.problem.message });
  }
  const sources: Partial<Record<SourceListName, string[]>> = {};
  for (const [key, name, label] of SOURCE_FIELDS) {
    const checked = checkSourceList(name, sourceEntries(form[key]));
    if ('problem' in checked) {
      errors[key] = t('rules.badSources', { field: t(label), detail: checked.problem.message });
    } else if (checked.list.length > 0) {
      sources[name] = checked.list;
    }
  }
  if (Object.keys(errors).length > 0) return { errors };
  const hasCaps = Object.keys(rateLimit).length > 0;
  const healthInterval =
    form.healthInterval.trim() === '' ? undefined : Number(form.healthInterval);
  const needsTargets =
    targets.length > 1 ||
    hasCaps ||
    healthInterval !== undefined ||
    form.sniPattern.trim() !== '' ||
    targets.some((target) => 'priority' in target || 'proxy_protocol' in target);
  const [first] = targets;
  const request: RulePushRequest = {
    client: form.client.trim(),
    protocol: form.protocol,
    listen_port: listenPort ?? 0,
    ...(listenPortEnd !== undefined ? { listen_port_end: listenPortEnd } : {}),
    ...(needsTargets || !first
      ? { targets }
      : {
          target_host: first.host,
          target_port: first.port,
          // A range maps port for port: the target range is as long as the listen range.
          ...(listenPortEnd !== undefined && listenPort !== undefined
            ? { target_port_end: first.port + (listenPortEnd - listenPort) }
            : {}),
        }),
    ...(healthInterval !== undefined ? { health_check_interval_secs: healthInterval } : {}),
    ...(typeof sni === 'string' ? { sni_pattern: sni } : {}),
    ...(hasCaps ? { rate_limit: rateLimit } : {}),
    ...sources,
  };
  return { request, errors };
}
