/**
 * The latest listener counters of every client's shared SNI ports (reference §4.2
 * SniListenerStats), kept in memory and rendered at scrape time as §7.3's
 * `portunus_tls_sni_listener_miss_total`, `portunus_tls_sni_listener_parse_failures_total` and
 * the peek-duration histogram `portunus_tls_client_hello_peek_duration_seconds` (counters
 * emulating a histogram, as the reference does: `_bucket{le}` cumulative over @portunus/api's
 * SNI_PEEK_BUCKETS_SECONDS, `_sum` in seconds, `_count`), all labelled client and port. Each
 * report replaces the client's set (a port that closed drops out); a client's last values stay
 * after it disconnects, like the rule counters. Depends on prom-client, @portunus/api and the
 * proto types only.
 */
import { Counter, type Registry } from 'prom-client';

import { SNI_PEEK_BUCKETS_SECONDS } from '@portunus/api';
import type { WireSniListenerStats } from '@portunus/proto';

type Label = 'client' | 'port';

export class SniListenerTable {
  /** By client id: the client's display name and its ports' latest counters. */
  private readonly clients = new Map<
    string,
    { clientName: string; ports: WireSniListenerStats[] }
  >();

  record(clientId: string, clientName: string, ports: readonly WireSniListenerStats[]): void {
    this.clients.set(clientId, { clientName, ports: ports.map((port) => ({ ...port })) });
  }

  /** The latest counters of one client's SNI ports (tests and diagnostics). */
  get(clientId: string): readonly WireSniListenerStats[] {
    return this.clients.get(clientId)?.ports ?? [];
  }

  register(registry: Registry): void {
    const clients = this.clients;
    const rows = function* () {
      for (const { clientName, ports } of clients.values()) {
        for (const port of ports) {
          yield { labels: { client: clientName, port: String(port.listen_port) }, port };
        }
      }
    };
    const counter = <L extends string>(
      name: string,
      help: string,
      labelNames: readonly L[],
      fill: (counter: Counter<L>) => void,
    ): void => {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers: [registry],
        collect(this: Counter<L>) {
          this.reset();
          fill(this);
        },
      });
    };
    const labels = ['client', 'port'] as const satisfies readonly Label[];
    counter(
      'portunus_tls_sni_listener_miss_total',
      'SNI connections dropped: no route matched and no fallback.',
      labels,
      (c) => {
        for (const row of rows()) c.inc(row.labels, row.port.sni_route_miss_total);
      },
    );
    counter(
      'portunus_tls_sni_listener_parse_failures_total',
      'SNI connections dropped: no valid ClientHello (malformed, timeout or size cap).',
      labels,
      (c) => {
        for (const row of rows()) c.inc(row.labels, row.port.client_hello_parse_failures_total);
      },
    );
    const histogram = 'portunus_tls_client_hello_peek_duration_seconds';
    counter(
      `${histogram}_bucket`,
      'ClientHello peek duration, cumulative buckets.',
      [...labels, 'le'] as const,
      (c) => {
        for (const row of rows()) {
          const counts = row.port.client_hello_peek_bucket_counts;
          let cumulative = 0;
          SNI_PEEK_BUCKETS_SECONDS.forEach((bound, index) => {
            cumulative += counts[index] ?? 0;
            c.inc({ ...row.labels, le: String(bound) }, cumulative);
          });
          // +Inf holds every peek, whatever a client's bucket list held.
          c.inc({ ...row.labels, le: '+Inf' }, row.port.client_hello_peek_count);
        }
      },
    );
    counter(`${histogram}_sum`, 'ClientHello peek duration, total seconds.', labels, (c) => {
      for (const row of rows()) c.inc(row.labels, row.port.client_hello_peek_sum_micros / 1e6);
    });
    counter(`${histogram}_count`, 'ClientHello peeks.', labels, (c) => {
      for (const row of rows()) c.inc(row.labels, row.port.client_hello_peek_count);
    });
  }
}
