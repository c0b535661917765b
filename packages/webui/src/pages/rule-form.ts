/**
 * The push dialog's form model and its translation into a `RulePushRequest` (reference §8 "Push
 * rule dialog"): one or more targets with priority and PROXY version, optional listen range,
 * health-check interval, SNI pattern and caps. A single target without caps goes out in the legacy
 * shape; anything else as `targets[]`. Errors are keyed by field so each input shows its own.
 * Pure, so the component tests exercise it directly; no React here.
 */
import {
  isPort,
  normaliseSniPattern,
  type Protocol,
  type RateLimit,
  type RulePushRequest,
  type RuleView,
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
  caps: Record<
    'bandwidth_in_bps' | 'bandwidth_out_bps' | 'new_connections_per_sec' | 'concurrent_connections',
    string
  >;
}

/** The i18n key of each cap's label, shared by the dialog and its error messages. */
export const CAP_LABELS = {
  bandwidth_in_bps: 'rules.bandwidthIn',
  bandwidth_out_bps: 'rules.bandwidthOut',
  new_connections_per_sec: 'rules.newConnections',
  concurrent_connections: 'rules.concurrent',
} as const;

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
    caps: {
      bandwidth_in_bps: '',
      bandwidth_out_bps: '',
      new_connections_per_sec: '',
      concurrent_connections: '',
    },
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
    caps: {
      bandwidth_in_bps: cap(rule.rate_limit?.bandwidth_in_bps),
      bandwidth_out_bps: cap(rule.rate_limit?.bandwidth_out_bps),
      new_connections_per_sec: cap(rule.rate_limit?.new_connections_per_sec),
      concurrent_connections: cap(rule.rate_limit?.concurrent_connections),
    },
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
  };
  return { request, errors };
}
