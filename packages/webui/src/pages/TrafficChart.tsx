/**
 * The throughput chart: stacked bytes in/out per bucket, drawn by recharts. It is imported only
 * through React.lazy (TrafficPanel.tsx), so recharts and its dependencies form their own chunk and
 * the main bundle stays under its 500 KB budget. Colours come from the theme's CSS variables, so
 * the chart follows light and dark. Drawing only: no fetching here.
 */
import {
  Area,
  AreaChart,
  CartesianGrid,
  Legend,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';

import { formatBytes } from '../ui.js';
import type { TrafficView } from './traffic.js';

export default function TrafficChart({
  view,
  labels,
}: {
  view: TrafficView;
  labels: { in: string; out: string };
}) {
  const hourly = view.bucket === '1h';
  const time = (ts: number) => {
    const date = new Date(ts * 1000);
    return hourly
      ? date.toLocaleString(undefined, { month: 'numeric', day: 'numeric', hour: '2-digit' })
      : date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  };
  return (
    <ResponsiveContainer width="100%" height={240}>
      <AreaChart data={view.samples} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
        <CartesianGrid stroke="var(--border)" strokeDasharray="3 3" />
        <XAxis
          dataKey="ts"
          tickFormatter={time}
          stroke="var(--muted)"
          fontSize={12}
          minTickGap={24}
        />
        <YAxis
          tickFormatter={(value: number) => formatBytes(value)}
          stroke="var(--muted)"
          fontSize={12}
          width={72}
        />
        <Tooltip
          labelFormatter={(ts) => time(Number(ts))}
          formatter={(value) => formatBytes(Number(value))}
          contentStyle={{ background: 'var(--panel)', border: '1px solid var(--border)' }}
        />
        <Legend />
        <Area
          type="monotone"
          dataKey="bytes_in"
          name={labels.in}
          stackId="bytes"
          stroke="var(--accent)"
          fill="var(--accent)"
          fillOpacity={0.35}
          isAnimationActive={false}
        />
        <Area
          type="monotone"
          dataKey="bytes_out"
          name={labels.out}
          stackId="bytes"
          stroke="var(--ok)"
          fill="var(--ok)"
          fillOpacity={0.35}
          isAnimationActive={false}
        />
      </AreaChart>
    </ResponsiveContainer>
  );
}
