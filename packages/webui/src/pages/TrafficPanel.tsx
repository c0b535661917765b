/**
 * A traffic card: range buttons (1h / 24h / 7d, reference §8), totals, and the chart, which loads
 * as its own lazy chunk. Used by the dashboard (global or own traffic) and a user's Traffic tab;
 * the caller names the traffic route. No chart code here.
 */
import { Suspense, lazy, useState } from 'react';
import { useTranslation } from 'react-i18next';

import { ErrorText, formatBytes } from '../ui.js';
import { TRAFFIC_RANGES, useTraffic, type TrafficRange } from './traffic.js';

const TrafficChart = lazy(() => import('./TrafficChart.js'));

export function TrafficPanel({ path, title }: { path: string; title: string }) {
  const { t } = useTranslation();
  const [range, setRange] = useState<TrafficRange>('1h');
  const traffic = useTraffic(path, range);
  const view = traffic.data;
  return (
    <div className="card traffic" data-testid="traffic-panel">
      <div className="page-head">
        <h2>{title}</h2>
        <div className="segmented" role="group" aria-label={t('screens.range')}>
          {(Object.keys(TRAFFIC_RANGES) as TrafficRange[]).map((name) => (
            <button
              key={name}
              type="button"
              aria-pressed={range === name}
              className={range === name ? 'primary' : ''}
              onClick={() => {
                setRange(name);
              }}
            >
              {name}
            </button>
          ))}
        </div>
      </div>
      <ErrorText error={traffic.error} />
      {view && (
        <>
          <p className="muted" data-testid="traffic-totals">
            {t('screens.totals', {
              in: formatBytes(view.total_bytes_in),
              out: formatBytes(view.total_bytes_out),
            })}
          </p>
          {view.total_bytes_in + view.total_bytes_out === 0 ? (
            <p className="muted">{t('screens.noTraffic')}</p>
          ) : (
            <Suspense fallback={<p className="muted">{t('app.loading')}</p>}>
              <div className="chart" data-testid="traffic-chart">
                <TrafficChart
                  view={view}
                  labels={{ in: t('screens.bytesIn'), out: t('screens.bytesOut') }}
                />
              </div>
            </Suspense>
          )}
        </>
      )}
    </div>
  );
}
