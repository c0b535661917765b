/**
 * The server's Prometheus registry (reference §7.3): one prom-client Registry per server with
 * process metrics and the control plane's counters and gauges, served on the loopback metrics
 * listener and at `GET /v1/metrics`. Metric names are external contracts: spelled as in the
 * reference. Depends on prom-client only.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServerMetrics {
  readonly registry: Registry;
  readonly operatorRequests: Counter<'outcome' | 'reason'>;
  readonly auditBufferDrops: Counter;
  readonly clientsConnected: Gauge;
  readonly authFailures: Counter<'reason'>;
  render(): Promise<string>;
  readonly contentType: string;
}

export function createServerMetrics(
  options: { collectProcessMetrics?: boolean } = {},
): ServerMetrics {
  const registry = new Registry();
  if (options.collectProcessMetrics ?? true) collectDefaultMetrics({ register: registry });
  return {
    registry,
    operatorRequests: new Counter({
      name: 'portunus_operator_requests_total',
      help: 'Protected operator HTTP requests by outcome (allow|deny) and reason (ok or the error code).',
      labelNames: ['outcome', 'reason'] as const,
      registers: [registry],
    }),
    auditBufferDrops: new Counter({
      name: 'portunus_audit_buffer_drops_total',
      help: 'Audit records dropped because the durable writer queue was full.',
      registers: [registry],
    }),
    clientsConnected: new Gauge({
      name: 'portunus_clients_connected',
      help: 'Edge clients with a live control stream.',
      registers: [registry],
    }),
    authFailures: new Counter({
      name: 'portunus_auth_failures_total',
      help: 'Control-stream bearer token failures by reason.',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    render: () => registry.metrics(),
    contentType: registry.contentType,
  };
}
