/**
 * A real HTTP webhook receiver on loopback for alert tests: records every POST (headers and raw
 * body), answers with a status the test chooses (to make deliveries fail and be retried), and
 * can be started on a given port after it was down, so "receiver down, then up" is a real
 * connection refused followed by a real delivery. Tests only; depends on node:http.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

import { waitFor } from './wait.js';

export interface ReceivedWebhook {
  headers: http.IncomingHttpHeaders;
  body: string;
}

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** What the receiver answers; 204 unless a test says otherwise. */
  status = 204;
  private server: http.Server | undefined;
  private boundPort = 0;

  /** Listens on 127.0.0.1 (port 0 picks one); resolves with the port. */
  async start(port = 0): Promise<number> {
    const server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.received.push({ headers: request.headers, body: Buffer.concat(chunks).toString() });
        response.writeHead(this.status).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.boundPort = (server.address() as AddressInfo).port;
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.boundPort}/hook`;
  }

  /** Bodies received so far, parsed. */
  bodies<T = Record<string, unknown>>(): T[] {
    return this.received.map((entry) => JSON.parse(entry.body) as T);
  }

  async waitForCount(count: number, what: string, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.received.length >= count, { what, timeoutMs });
  }

  /** Stops listening and cuts open connections (the receiver is "down"). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}
