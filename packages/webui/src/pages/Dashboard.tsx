/**
 * The dashboard (reference §8 `/`): KPIs and the rule list, in a superadmin and a user variant.
 * Throughput charts, traffic splits and quota alerts need the traffic history of a later issue;
 * they belong in the `extra` slot below, not faked here.
 */
import type { Me } from '@portunus/api';
import type { ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router';

import { StatusBadge } from '../ui.js';
import { useClients } from './Clients.js';
import { listenText, targetText, useRules } from './Rules.js';

/** Rows shown under "Rules": enough to scan, bounded so 1,000 rules paint fast. */
const TOP_RULES = 10;

export function DashboardPage({ me, extra }: { me: Me; extra?: ReactNode }) {
  const { t } = useTranslation();
  const clients = useClients().data ?? [];
  const rules = useRules().data ?? [];
  const isSuperadmin = me.role === 'superadmin';
  const live = clients.filter((client) => client.revoked_at === null);
  // A user's clients are the ones their own rules use (the server already filtered the rules).
  const mine = isSuperadmin
    ? live
    : live.filter((client) => rules.some((rule) => rule.client_id === client.client_id));
  const connected = mine.filter((client) => client.connected).length;
  const active = rules.filter((rule) => rule.state.kind === 'active').length;
  const targets = rules.reduce((sum, rule) => sum + rule.targets.length, 0);
  const offline = mine.length - connected;
  return (
    <section>
      <div className="page-head">
        <h1>
          {isSuperadmin ? t('dashboard.title') : t('dashboard.greeting', { name: me.display_name })}
        </h1>
      </div>
      {offline > 0 && (
        <p className="alert" role="status">
          {t('dashboard.offline', { count: offline })}
        </p>
      )}
      <div className="kpis">
        <div className="card kpi" data-testid="kpi-clients">
          <span className="muted">
            {isSuperadmin ? t('dashboard.clients') : t('dashboard.myClients')}
          </span>
          <strong>
            {connected}/{mine.length}
          </strong>
        </div>
        <div className="card kpi" data-testid="kpi-rules">
          <span className="muted">
            {isSuperadmin ? t('dashboard.rules') : t('dashboard.myRules')}
          </span>
          <strong>
            {active}/{rules.length}
          </strong>
        </div>
        <div className="card kpi">
          <span className="muted">{t('dashboard.targets')}</span>
          <strong>{targets}</strong>
        </div>
      </div>
      {extra}
      <h2>{t('dashboard.topRules')}</h2>
      {rules.length === 0 ? (
        <p className="muted">{t('dashboard.noRules')}</p>
      ) : (
        <ul className="top-rules">
          {rules.slice(0, TOP_RULES).map((rule) => (
            <li key={rule.id}>
              <Link to={`/rules/${rule.id}`}>#{rule.id}</Link> {rule.client_name} :
              {listenText(rule)} → {targetText(rule)}{' '}
              <StatusBadge kind={rule.state.kind} label={rule.state.kind} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
