// Proves traffic history with real processes: bytes sent through an enrolled client's rule appear
// in GET /v1/users/{id}/traffic and in `traffic user --format json`, survive a server restart,
// and after the restart and after a client restart (counters start over on the edge) each byte
// is counted exactly once. Waits on conditions with deadlines, never on fixed sleeps.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, it } from 'node:test';

import type { RunningProcess } from '@portunus/test-support';

import {
  FleetHarness,
  countEvents,
  freePort,
  nextEvent,
  tcpEcho,
  tcpRoundTrip,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import { addRule, statsRounds, type TrafficAnswer } from './traffic.harness.js';

const h = new FleetHarness();
let server: FleetServer;
let bundle: string;
let client: RunningProcess;
let target: Awaited<ReturnType<typeof tcpEcho>>;
let port: number;
let ruleId: number;
/** Bytes sent so far, each echoed back: bytes_in and bytes_out both count them. */
let sent = 0;

async function traffic(): Promise<TrafficAnswer> {
  const now = Math.floor(Date.now() / 1000);
  const answer = await server.http.request<TrafficAnswer>(
    'GET',
    `/v1/users/_legacy/traffic?from=${now - 3600}&to=${now + 60}`,
    { auth: server.auth },
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** Sends `size` bytes through the rule and waits until the history holds everything sent. */
async function send(size: number): Promise<TrafficAnswer> {
  const payload = crypto.randomBytes(size);
  const echoed = await tcpRoundTrip(port, payload);
  assert.ok(echoed.equals(payload));
  sent += size;
  return waitUntil(async () => {
    const view = await traffic();
    return view.total_bytes_in >= sent && view.total_bytes_out >= sent ? view : undefined;
  }, `traffic history with ${sent} bytes`);
}

/** Two more stats reports land, and the total still counts each byte once. */
async function assertCountedOnce(): Promise<void> {
  await statsRounds(server, ruleId, 2);
  const view = await traffic();
  assert.ok(
    Math.abs(view.total_bytes_in - sent) <= 1024,
    `bytes_in ${view.total_bytes_in}, sent ${sent}`,
  );
  assert.ok(Math.abs(view.total_bytes_out - sent) <= 1024);
}

before(async () => {
  target = await tcpEcho();
  server = await h.fleetServer();
  bundle = await h.enroll(server, 'edge-1');
  client = await h.daemon(bundle);
  port = await freePort();
  ruleId = await addRule(server, 'edge-1', port, target.port);
});

after(async () => {
  await h.close();
  await target.close();
});

describe('traffic history', () => {
  it("records the bytes of a rule as its owner's minute samples, also through the CLI", async () => {
    const view = await send(64 * 1024);
    assert.equal(view.bucket, '1m');
    await assertCountedOnce();
    const now = Math.floor(Date.now() / 1000);
    const cli = await h.run(
      [
        'traffic',
        'user',
        '_legacy',
        '--from',
        String(now - 3600),
        '--to',
        String(now + 60),
        '--format',
        'json',
        '--http-endpoint',
        server.http.hostPort,
      ],
      { env: { PORTUNUS_OPERATOR_TOKEN: server.auth.bearer } },
    );
    assert.equal(cli.code, 0, cli.stderr);
    const printed = JSON.parse(cli.stdout) as TrafficAnswer;
    assert.equal(printed.total_bytes_in, (await traffic()).total_bytes_in);
    const denied = await h.run(['traffic', 'global', '--http-endpoint', server.http.hostPort], {
      env: { PORTUNUS_OPERATOR_TOKEN: 'not-a-token' },
    });
    assert.equal(denied.code, 4, denied.stderr);
  });

  it('keeps the history across a server restart and counts nothing twice after it', async () => {
    const before = (await traffic()).total_bytes_in;
    const seen = countEvents(client, 'control.connected');
    server = await h.restartServer(server);
    assert.equal((await traffic()).total_bytes_in, before);
    await nextEvent(client, 'control.connected', seen);
    await send(32 * 1024);
    await assertCountedOnce();
  });

  it('re-bases a restarted client whose counters start over, losing and doubling nothing', async () => {
    client.kill('SIGKILL');
    await client.exited();
    client = await h.daemon(bundle);
    await waitUntil(
      () => tcpRoundTrip(port, Buffer.from('up?'), 1_000),
      'the rule forwarding again',
    );
    sent += 3;
    await send(16 * 1024);
    await assertCountedOnce();
  });
});
