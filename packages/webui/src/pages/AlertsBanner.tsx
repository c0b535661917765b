/**
 * The dashboard's alert banner: one line per kind of trouble (offline clients, targets down,
 * quotas exhausted, quotas past the near-limit level), from alerts.ts. Shows nothing when all is
 * well. Rendering only.
 */
import { useTranslation } from 'react-i18next';

import { NEAR_LIMIT_FRACTION, type DashboardAlerts } from './alerts.js';

const names = (list: readonly string[]) =>
  list.length > 3 ? `${list.slice(0, 3).join(', ')}, …` : list.join(', ');

export function AlertsBanner({ alerts }: { alerts: DashboardAlerts }) {
  const { t } = useTranslation();
  const lines: [string, string][] = [];
  if (alerts.offlineClients.length > 0)
    lines.push([
      'offline',
      t('screens.alertOffline', {
        count: alerts.offlineClients.length,
        names: names(alerts.offlineClients),
      }),
    ]);
  if (alerts.targetsDown.length > 0)
    lines.push([
      'targets',
      t('screens.alertTargets', {
        count: alerts.targetsDown.length,
        names: names(alerts.targetsDown.map((down) => `#${down.ruleId} ${down.target}`)),
      }),
    ]);
  const who = (quota: { user_id: string; client_name: string }) =>
    `${quota.user_id}@${quota.client_name}`;
  if (alerts.quotasExhausted.length > 0)
    lines.push([
      'exhausted',
      t('screens.alertExhausted', {
        count: alerts.quotasExhausted.length,
        names: names(alerts.quotasExhausted.map(who)),
      }),
    ]);
  if (alerts.quotasNear.length > 0)
    lines.push([
      'near',
      t('screens.alertNear', {
        count: alerts.quotasNear.length,
        percent: Math.round(NEAR_LIMIT_FRACTION * 100),
        names: names(alerts.quotasNear.map(who)),
      }),
    ]);
  if (lines.length === 0) return null;
  return (
    <div className="alert alerts" role="status" data-testid="alerts">
      {lines.map(([kind, text]) => (
        <p key={kind} data-alert={kind}>
          {text}
        </p>
      ))}
    </div>
  );
}
