/**
 * Traffic history as the screens read it (reference §2.3 traffic routes): the chart's ranges and
 * their buckets (1h and 24h in 1-minute buckets, 7d in 1-hour ones, reference §8), the query
 * hook, and "bytes today". It owns no drawing: the chart itself is the lazy TrafficChart chunk,
 * so recharts never lands in the main bundle. Must not import recharts.
 */
import { useQuery } from '@tanstack/react-query';

import type { TrafficView } from '@portunus/api';

import { api } from '../http.js';

/** The answer of the three traffic routes. */
export type { TrafficView };

export type TrafficRange = '1h' | '24h' | '7d';

export const TRAFFIC_RANGES: Record<TrafficRange, { seconds: number; bucket: '1m' | '1h' }> = {
  '1h': { seconds: 3600, bucket: '1m' },
  '24h': { seconds: 86_400, bucket: '1m' },
  '7d': { seconds: 7 * 86_400, bucket: '1h' },
};

/** A minute bucket fills once a minute: polling faster only repaints the same chart. */
export const TRAFFIC_POLL_MS = 60_000;

const BUCKET_SECONDS = { '1m': 60, '1h': 3600 } as const;

/**
 * The server answers only buckets that saw traffic; a chart drawn from those alone would join two
 * busy minutes across an idle hour. Every bucket of the range is filled in, idle ones with zero.
 */
export function withEmptyBuckets(view: TrafficView, from: number, to: number): TrafficView {
  const size = BUCKET_SECONDS[view.bucket];
  const byTs = new Map(view.samples.map((sample) => [sample.ts, sample]));
  const samples: TrafficView['samples'] = [];
  for (let ts = from - (from % size); ts < to; ts += size) {
    samples.push(byTs.get(ts) ?? { ts, bytes_in: 0, bytes_out: 0 });
  }
  return { ...view, samples };
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** `path` is one of the traffic routes; the range ends now at each refetch. */
export function useTraffic(path: string, range: TrafficRange) {
  return useQuery({
    queryKey: ['traffic', path, range],
    queryFn: async () => {
      const to = nowSeconds();
      const { seconds, bucket } = TRAFFIC_RANGES[range];
      const from = to - seconds;
      const view = await api<TrafficView>('GET', `${path}?from=${from}&to=${to}&bucket=${bucket}`);
      return withEmptyBuckets(view, from, to);
    },
    refetchInterval: TRAFFIC_POLL_MS,
  });
}

/** Bytes both ways since midnight UTC. */
export function useBytesToday(path: string) {
  return useQuery({
    queryKey: ['traffic-today', path],
    queryFn: async () => {
      const to = nowSeconds();
      const from = to - (to % 86_400);
      const view = await api<TrafficView>(
        'GET',
        `${path}?from=${from}&to=${Math.max(to, from + 1)}&bucket=1m`,
      );
      return view.total_bytes_in + view.total_bytes_out;
    },
    refetchInterval: TRAFFIC_POLL_MS,
  });
}
