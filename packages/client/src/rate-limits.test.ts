// Proves the client's side of rate limits and owner envelopes against the fake control server
// over real TLS and loopback sockets: a rate-limited rule now activates and enforces its cap
// (a refused connection is an RST), its StatsReport entry carries the rate-limit block; an
// OwnerRateLimitUpdate SET binds the owner's rules and shows in owner_rate_limit_stats, survives
// a control-stream reconnect (the envelope is process-lifetime state), and REMOVE lifts it.
import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, before, describe, it } from 'node:test';

import { grpc } from '@portunus/proto';

import {
  FakeControlServer,
  connectOutcome as outcome,
  echoServer,
  echoedConnection,
  freePort,
  makeIdentity,
  recordingLogger,
  type FakeSession,
  type RecordingLogger,
  type TestIdentity,
  bundleFor,
} from './control.harness.js';
import { runDaemon } from './daemon.js';

let identity: TestIdentity;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  identity = await makeIdentity();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function start(autoWelcome: boolean): Promise<{
  server: FakeControlServer;
  log: RecordingLogger;
  echoPort: number;
}> {
  const echo = await echoServer();
  cleanups.push(() => echo.close());
  const server = await new FakeControlServer({ identity, autoWelcome }).start();
  const bundle = bundleFor(server, identity);
  const log = recordingLogger();
  const controller = new AbortController();
  const done = runDaemon({
    bundle,
    logger: log,
    signal: controller.signal,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 100,
    shutdownDrainTimeoutMs: 500,
    statsReportIntervalMs: 50,
    random: () => 0.5,
  });
  cleanups.push(async () => {
    controller.abort();
    await done;
    server.close();
  });
  return { server, log, echoPort: echo.port };
}

/** Opens a connection and proves an echo through it; destroyed after the test. */
async function openEchoed(port: number): Promise<net.Socket> {
  const socket = await echoedConnection(port);
  cleanups.push(() => {
    socket.destroy();
  });
  return socket;
}

function setOwner(session: FakeSession, ownerId: string, concurrent: number): void {
  session.send({
    owner_rate_limit_update: {
      client_name: 'edge',
      client_id: '01JCLIENT',
      owner_id: ownerId,
      action: 'SET',
      rate_limit: { concurrent_connections: concurrent },
    },
  });
}

describe('rate limits through the control stream', () => {
  it('activates a rate-limited rule, enforces it and reports its rate-limit block', async () => {
    const { server, echoPort } = await start(true);
    const session = await server.session(1);
    const port = await freePort();
    const push = session.push({
      rule_id: '1',
      listen_port: port,
      target_port: echoPort,
      rate_limit: { concurrent_connections: 1 },
      allowed_sources: ['127.0.0.0/8'],
    });
    assert.equal((await session.status(push)).outcome, 'ACTIVATED');
    await openEchoed(port);
    assert.equal(await outcome(port), 'reset');
    const report = await session.stats((r) =>
      r.stats.some((s) => s.rule_id === '1' && (s.rate_limit?.reject_total.length ?? 0) > 0),
    );
    const entry = report.stats.find((s) => s.rule_id === '1')!;
    assert.deepEqual(entry.rate_limit!.reject_total, [{ reason: 'CONN_CONCURRENT', total: 1 }]);
    assert.equal(entry.rate_limit!.active_connections, 1);
    assert.equal(entry.source_denied_total ?? 0, 0);
  });

  it('applies an owner envelope, keeps it across a reconnect, and lifts it on REMOVE', async () => {
    const { server, log, echoPort } = await start(false);
    const first = await server.session(1);
    first.welcome(0, 0, []);
    const portA = await freePort();
    const portB = await freePort();
    for (const [id, port] of [
      ['10', portA],
      ['11', portB],
    ] as const) {
      const push = first.push({
        rule_id: id,
        listen_port: port,
        target_port: echoPort,
        owner_id: 'u1',
      });
      assert.equal((await first.status(push)).outcome, 'ACTIVATED');
    }
    setOwner(first, 'u1', 1);
    await log.waitFor('control.owner_rate_limit_set', (f) => f['owner_id'] === 'u1');
    const held = await openEchoed(portA);
    assert.equal(await outcome(portB), 'reset', 'the envelope spans both rules of the owner');
    // A report taken before the refusal was counted carries the envelope with no rejects yet.
    const report = await first.stats((r) =>
      (r.owner_rate_limit_stats ?? []).some(
        (o) => o.owner_id === 'u1' && (o.stats?.reject_total.length ?? 0) > 0,
      ),
    );
    const owner = report.owner_rate_limit_stats!.find((o) => o.owner_id === 'u1')!;
    assert.deepEqual(owner.stats!.reject_total, [{ reason: 'OWNER_CONCURRENT', total: 1 }]);

    // A blip: the envelope is process state, so it binds before the server replays it.
    first.end(grpc.status.UNAVAILABLE, 'server restarting');
    await log.waitFor('control.disconnected');
    const second = await server.session(2);
    second.welcome(0, 0, ['10', '11']);
    assert.equal(await outcome(portB), 'reset', 'still bound after the reconnect');
    // The replay of the same envelope is a no-op SET (tokens and counts kept).
    setOwner(second, 'u1', 1);
    await log.waitFor(
      'control.owner_rate_limit_set',
      () => log.count('control.owner_rate_limit_set') === 2,
    );
    assert.equal(await outcome(portB), 'reset');
    second.send({
      owner_rate_limit_update: {
        client_name: 'edge',
        client_id: '01JCLIENT',
        owner_id: 'u1',
        action: 'REMOVE',
      },
    });
    await log.waitFor('control.owner_rate_limit_removed', (f) => f['was_set'] === true);
    assert.equal(await outcome(portB), 'open');
    held.destroy();
    // An update without an owner id or action is logged and changes nothing.
    second.send({
      owner_rate_limit_update: {
        client_name: 'edge',
        client_id: '01JCLIENT',
        owner_id: '',
        action: 'SET',
      },
    });
    await log.waitFor('control.owner_rate_limit_invalid');
  });
});
