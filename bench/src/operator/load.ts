/**
 * The load generator: Node's own http client over keep-alive connections, a fixed number of
 * requests in flight (closed loop: each connection sends its next request when the previous
 * response has been read to the end), every run bounded by a request count and by a duration,
 * whichever comes first. It records the latency of every request (send to last byte) and counts
 * response bytes without keeping them. Any status other than the expected one ends the run with an
 * error that quotes the body: a benchmark of failing requests measures nothing.
 */
import http from 'node:http';

import { nowMs } from '../store/report.js';

export interface Target {
  host: string;
  port: number;
}

export interface RequestSpec {
  method: 'GET' | 'POST';
  path: string;
  headers?: Readonly<Record<string, string>>;
  /** The JSON body of request number `index` (POST). */
  body?: (index: number) => string;
  expectStatus: number;
}

export interface LoadLimits {
  concurrency: number;
  requests: number;
  ms: number;
  timeoutMs: number;
}

export interface LoadRun {
  /** Completed requests. */
  requests: number;
  /** From the first request sent to the last response read. */
  ms: number;
  bytes: number;
  /** Per-request latency in ms, `requests` entries. */
  latencies: Float64Array;
}

export interface Client {
  readonly target: Target;
  readonly agent: http.Agent;
}

/** One keep-alive agent per server, shared by the warm-up and the measurements. */
export function client(target: Target, concurrency: number): Client {
  return {
    target,
    agent: new http.Agent({
      keepAlive: true,
      maxSockets: concurrency,
      maxFreeSockets: concurrency,
      scheduling: 'fifo',
    }),
  };
}

interface Answer {
  status: number;
  bytes: number;
  /** The body, kept only when asked for or when the status was unexpected. */
  text?: string;
}

function send(
  peer: Client,
  spec: RequestSpec,
  index: number,
  timeoutMs: number,
  keepBody: boolean,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = spec.body?.(index);
    const headers: Record<string, string> = { ...spec.headers };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const request = http.request(
      {
        host: peer.target.host,
        port: peer.target.port,
        method: spec.method,
        path: spec.path,
        agent: peer.agent,
        headers,
      },
      (response) => {
        const status = response.statusCode ?? 0;
        const keep = keepBody || status !== spec.expectStatus;
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          if (keep) chunks.push(chunk);
        });
        response.on('end', () => {
          resolve(
            keep
              ? { status, bytes, text: Buffer.concat(chunks).toString('utf8') }
              : { status, bytes },
          );
        });
        response.on('error', reject);
      },
    );
    request.setTimeout(timeoutMs, () => {
      request.destroy(new Error(`no response within ${timeoutMs} ms`));
    });
    request.on('error', reject);
    request.end(body);
  });
}

/** One request, its body kept: to check a route before measuring it. */
export async function fetchOnce(
  peer: Client,
  spec: RequestSpec,
  timeoutMs: number,
): Promise<{ status: number; text: string }> {
  const answer = await send(peer, spec, 0, timeoutMs, true);
  return { status: answer.status, text: answer.text ?? '' };
}

/**
 * Keeps `limits.concurrency` requests in flight until `limits.requests` have been sent or
 * `limits.ms` have passed; `firstIndex` numbers the requests (POST bodies), so that consecutive
 * runs never repeat one.
 */
export async function runLoad(
  peer: Client,
  spec: RequestSpec,
  limits: LoadLimits,
  firstIndex = 0,
): Promise<LoadRun> {
  const latencies = new Float64Array(limits.requests);
  let issued = 0;
  let completed = 0;
  let bytes = 0;
  let failed = false;
  const start = nowMs();
  const deadline = start + limits.ms;
  const worker = async (): Promise<void> => {
    while (!failed && issued < limits.requests && nowMs() < deadline) {
      const slot = issued;
      issued += 1;
      const sent = nowMs();
      let answer: Answer;
      try {
        answer = await send(peer, spec, firstIndex + slot, limits.timeoutMs, false);
      } catch (error) {
        failed = true; // the other workers stop at their next request
        throw error;
      }
      latencies[slot] = nowMs() - sent;
      if (answer.status !== spec.expectStatus) {
        failed = true;
        throw new Error(
          `${spec.method} ${spec.path} answered ${answer.status}, expected ` +
            `${spec.expectStatus}: ${(answer.text ?? '').slice(0, 500)}`,
        );
      }
      completed += 1;
      bytes += answer.bytes;
    }
  };
  await Promise.all(Array.from({ length: limits.concurrency }, worker));
  return { requests: completed, ms: nowMs() - start, bytes, latencies: latencies.slice(0, issued) };
}
