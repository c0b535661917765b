/**
 * The throughput chart: bytes in/out per bucket as stacked bars (a bucket is a count over its
 * minute or hour, so a bar says that where a joined line would invent values between buckets),
 * drawn by recharts. It is imported only
 * through React.lazy (TrafficPanel.tsx), so recharts and its dependencies form their own chunk and
 * the main bundle stays under its 500 KB budget. Colours come from the theme's CSS variables, so
 * the chart follows light and dark. Drawing only: no fetching here.
 */
import {
  Bar,
  BarChart,
  CartesianGrid,
  Legend,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from 'recharts';

import { formatBytes } from '../ui.js';
import type { TrafficView } from './traffic.js';

/** Axis labels short enough for one line at phone width: "977 KiB", "1.5 MiB". */
function tickBytes(value: number): string {
  const text = formatBytes(value);
  const [number = '', unit = ''] = text.split(' ');
  const scaled = Number(number);
  return scaled >= 100 ? `${Math.round(scaled)} ${unit}` : text;
}

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
      <BarChart data={view.samples} margin={{ top: 8, right: 8, bottom: 0, left: 0 }}>
        <CartesianGrid stroke="var(--border)" strokeDasharray="3 3" />
        <XAxis
          dataKey="ts"
          tickFormatter={time}
          stroke="var(--muted)"
          fontSize={12}
          minTickGap={24}
        />
        <YAxis tickFormatter={tickBytes} stroke="var(--muted)" fontSize={12} width={64} />
        <Tooltip
          cursor={{ fill: 'var(--code)' }}
          labelFormatter={(ts) => time(Number(ts))}
          formatter={(value) => formatBytes(Number(value))}
          contentStyle={{ background: 'var(--panel)', border: '1px solid var(--border)' }}
        />
        <Legend />
        <Bar
          dataKey="bytes_in"
          name={labels.in}
          stackId="bytes"
          fill="var(--accent)"
          isAnimationActive={false}
        />
        <Bar
          dataKey="bytes_out"
          name={labels.out}
          stackId="bytes"
          fill="var(--ok)"
          isAnimationActive={false}
        />
      </BarChart>
    </ResponsiveContainer>
  );
}
