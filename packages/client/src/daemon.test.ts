// Proves the daemon against a fake control server over real TLS and real sockets on 127.0.0.1:
// Hello with the bearer and versions; Welcome; a pushed TCP rule forwards bytes to a local echo
// and its bytes show up in StatsReports; a re-push answers ACTIVATED without rebinding; a busy
// port answers FAILED port_in_use; unsupported features are refused honestly; REMOVE answers
// REMOVED (also for unknown ids); a dropped stream keeps the rules forwarding, and on reconnect
// the replay manifest stops what the server dropped; a re-PUSH replaces in place; traffic quota
// SET/REMOVE stop and resume the owner's connections and survive a reconnect;
// UNAUTHENTICATED is terminal; an impostor certificate is never sent a Hello.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';

import { PROTOCOL_VERSION, grpc } from '@portunus/proto';
import { waitFor as waitUntil } from '@portunus/test-support';

import {
  FakeControlServer,
  closeServer,
  connectRefused,
  echoServer,
  freePort,
  listen,
  makeIdentity,
  recordingLogger,
  roundTrip,
  udpEcho,
  udpRoundTrip,
  type RecordingLogger,
  type TestIdentity,
  bundleFor,
} from './control.harness.js';
import { runDaemon, type DaemonOutcome } from './daemon.js';
import { CLIENT_VERSION } from './version.js';

let identity: TestIdentity;
let echo: Awaited<ReturnType<typeof echoServer>>;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  identity = await makeIdentity();
  echo = await echoServer();
});

after(async () => {
  await echo.close();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Whether a probe through `port` comes back from the echo target (false: the edge closed it). */
function echoed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    cleanups.push(() => {
      socket.destroy();
    });
    let got = '';
    socket.on('connect', () => socket.write('probe'));
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString();
      if (got === 'probe') {
        socket.destroy();
        resolve(true);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve(got === 'probe');
    });
  });
}

interface Running {
  server: FakeControlServer;
  log: RecordingLogger;
  stop: () => Promise<DaemonOutcome>;
  done: Promise<DaemonOutcome>;
}

async function startDaemon(
  options: { server?: FakeControlServer; authorize?: (token: string) => string | undefined } = {},
): Promise<Running> {
  const server =
    options.server ??
    (await new FakeControlServer({
      identity,
      ...(options.authorize ? { authorize: options.authorize } : {}),
    }).start());
  const bundle = bundleFor(server, identity);
  const log = recordingLogger();
  const controller = new AbortController();
  const done = runDaemon({
    bundle,
    logger: log,
    signal: controller.signal,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 100,
    shutdownDrainTimeoutMs: 1_000,
    statsReportIntervalMs: 50,
    random: () => 0.5,
  });
  const stop = async (): Promise<DaemonOutcome> => {
    controller.abort();
    return done;
  };
  cleanups.push(async () => {
    await stop();
    server.close();
  });
  return { server, log, stop, done };
}

describe('daemon', () => {
  it('says Hello with the bearer, then activates, forwards, reports, re-pushes and removes', async () => {
    const { server, log } = await startDaemon();
    const session = await server.session(1);
    assert.equal(session.token, 'good-token');
    assert.deepEqual(session.hello, {
      protocol_version: PROTOCOL_VERSION,
      client_version: CLIENT_VERSION,
      supported_protocols: ['TCP', 'UDP'],
    });
    const connected = await log.waitFor('control.connected');
    assert.deepEqual(connected, {
      server_version: 'fake-0.0.1',
      udp_flow_idle_secs: 60,
      udp_max_flows_per_rule: 1024,
    });

    const port = await freePort();
    const push = session.push({ rule_id: '1', listen_port: port, target_port: echo.port });
    assert.deepEqual(await session.status(push), {
      request_id: push,
      rule_id: '1',
      outcome: 'ACTIVATED',
      reason: '',
    });
    const payload = Buffer.from('hello through portunus');
    assert.deepEqual(await roundTrip(port, payload), payload);
    const report = await session.stats((r) =>
      r.stats.some(
        (s) => s.rule_id === '1' && s.bytes_in >= payload.length && s.bytes_out >= payload.length,
      ),
    );
    const entry = report.stats.find((s) => s.rule_id === '1')!;
    assert.equal(entry.per_port[0]?.listen_port, port);
    assert.ok(report.sent_at_unix_ms > 0);

    // The same id again: ACTIVATED, no second bind (which would fail port_in_use).
    const again = session.push({ rule_id: '1', listen_port: port, target_port: echo.port });
    assert.equal((await session.status(again)).outcome, 'ACTIVATED');
    assert.equal(log.count('control.rule_already_active'), 1);

    const remove = session.remove('1');
    assert.deepEqual(await session.status(remove), {
      request_id: remove,
      rule_id: '1',
      outcome: 'REMOVED',
      reason: '',
    });
    assert.equal(await connectRefused(port), true);

    const unknown = session.remove('404');
    assert.equal((await session.status(unknown)).outcome, 'REMOVED');
    await log.waitFor('control.rule_remove_unknown', (f) => f['rule_id'] === '404');
    assert.deepEqual(server.unexpected, []);
    assert.ok(!JSON.stringify(log.lines).includes('good-token'), 'the token is never logged');
  });

  it('answers FAILED port_in_use for a busy port and refuses a duplicate SNI route', async () => {
    const { server } = await startDaemon();
    const session = await server.session(1);
    const busy = net.createServer();
    const port = await listen(busy, '::');
    cleanups.push(() => closeServer(busy));
    const push = session.push({ rule_id: '2', listen_port: port, target_port: echo.port });
    assert.deepEqual(await session.status(push), {
      request_id: push,
      rule_id: '2',
      outcome: 'FAILED',
      reason: 'port_in_use',
    });
    const shared = await freePort();
    const sni = session.push({
      rule_id: '3',
      listen_port: shared,
      target_port: echo.port,
      sni_pattern: 'app.example.com',
    });
    assert.equal((await session.status(sni)).outcome, 'ACTIVATED');
    const duplicate = session.push({
      rule_id: '4',
      listen_port: shared,
      target_port: echo.port,
      sni_pattern: 'APP.example.com',
    });
    assert.deepEqual(await session.status(duplicate), {
      request_id: duplicate,
      rule_id: '4',
      outcome: 'FAILED',
      reason: 'conflict.sni_route_duplicate',
    });
  });

  it('keeps forwarding through a stream blip and reconciles with the replay manifest', async () => {
    const server = await new FakeControlServer({ identity, autoWelcome: false }).start();
    const { log } = await startDaemon({ server });
    const first = await server.session(1);
    first.welcome(0, 0, []);
    const kept = await freePort();
    const dropped = await freePort();
    for (const [id, port] of [
      ['5', kept],
      ['6', dropped],
    ] as const) {
      const push = first.push({ rule_id: id, listen_port: port, target_port: echo.port });
      assert.equal((await first.status(push)).outcome, 'ACTIVATED');
    }
    // A long-lived connection through rule 5, open across the blip.
    const open = net.connect({ port: kept, host: '127.0.0.1' });
    cleanups.push(() => {
      open.destroy();
    });
    const received: Buffer[] = [];
    open.on('data', (chunk: Buffer) => received.push(chunk));
    open.write('before');
    const text = (): string => Buffer.concat(received).toString();
    await waitUntil(() => text() === 'before', { what: 'echo before the blip' });
    const before = await first.stats((r) =>
      r.stats.some((s) => s.rule_id === '5' && s.bytes_in >= 6),
    );
    const bytesBefore = before.stats.find((s) => s.rule_id === '5')!.bytes_in;

    first.end(grpc.status.UNAVAILABLE, 'server restarting');
    const disconnected = await log.waitFor('control.disconnected');
    assert.equal(disconnected['code'], grpc.status.UNAVAILABLE);
    open.write('-during');
    await waitUntil(() => text() === 'before-during', {
      what: 'the open connection survives the blip',
    });
    assert.deepEqual(await roundTrip(kept, Buffer.from('new')), Buffer.from('new'));

    const second = await server.session(2);
    const connecting = log.lines.filter((l) => l.event === 'control.connecting');
    assert.deepEqual(
      connecting.map((l) => l.fields['attempt']),
      [1, 1],
      'the backoff restarted after the Welcome',
    );
    // The server replays only rule 5: rule 6 was removed while the stream was down.
    second.welcome(0, 0, ['5']);
    await log.waitFor('control.rule_reconciled_removed', (f) => f['rule_id'] === '6');
    assert.equal(await connectRefused(dropped), true, 'the rule the server dropped is stopped');
    const replay = second.push({ rule_id: '5', listen_port: kept, target_port: echo.port });
    assert.equal((await second.status(replay)).outcome, 'ACTIVATED');
    await log.waitFor('control.rule_already_active', (f) => f['rule_id'] === '5');
    open.write('-after');
    await waitUntil(() => text() === 'before-during-after', {
      what: 'the open connection outlives the reconnect',
    });
    const afterBlip = await second.stats((r) =>
      r.stats.some((s) => s.rule_id === '5' && s.bytes_in >= bytesBefore + 7 + 3 + 6),
    );
    assert.ok(afterBlip.stats.every((s) => s.rule_id !== '6'));
    assert.equal(log.count('rule.removed'), 1, 'only rule 6 was ever removed');
  });

  it('enforces TrafficQuotaUpdate SET and REMOVE, and keeps budgets across a reconnect', async () => {
    const server = await new FakeControlServer({ identity }).start();
    const { log } = await startDaemon({ server });
    const first = await server.session(1);
    const port = await freePort();
    const push = first.push({
      rule_id: '9',
      listen_port: port,
      target_port: echo.port,
      owner_id: 'alice',
    });
    assert.equal((await first.status(push)).outcome, 'ACTIVATED');
    const quota = (action: 'SET' | 'REMOVE', remaining: number): void => {
      first.send({
        traffic_quota_update: {
          request_id: `q-${action}-${remaining}`,
          user_id: 'alice',
          client_name: 'edge',
          client_id: '01JCLIENT',
          action,
          state:
            action === 'SET'
              ? {
                  monthly_bytes: 1000,
                  budget_remaining_bytes: remaining,
                  period_started_at_unix_sec: 0,
                  period_ends_at_unix_sec: 0,
                  exhausted: remaining <= 0,
                }
              : null,
        },
      });
    };
    quota('SET', 0);
    await log.waitFor('control.traffic_quota_set', (f) => f['budget_remaining_bytes'] === 0);
    assert.equal(await echoed(port), false, 'an exhausted owner gets no connection');
    // A SET without state changes nothing and is logged.
    first.send({
      traffic_quota_update: {
        request_id: 'q-bad',
        user_id: 'alice',
        client_name: 'edge',
        client_id: '01JCLIENT',
        action: 'SET',
        state: null,
      },
    });
    await log.waitFor('control.traffic_quota_update_set_without_state');
    quota('SET', 500);
    await log.waitFor('control.traffic_quota_set', (f) => f['budget_remaining_bytes'] === 500);
    assert.equal(await echoed(port), true);

    // The stream drops: the budget is the process's, so it still holds after the reconnect.
    quota('SET', 0);
    await log.waitFor('control.traffic_quota_set', (f) => f['budget_remaining_bytes'] === 0);
    first.end(grpc.status.UNAVAILABLE, 'server restarting');
    const second = await server.session(2);
    await waitUntil(() => log.count('control.connected') === 2, { what: 'the reconnect' });
    assert.equal(await echoed(port), false, 'still exhausted after the reconnect');
    second.send({
      traffic_quota_update: {
        request_id: 'q-remove',
        user_id: 'alice',
        client_name: 'edge',
        client_id: '01JCLIENT',
        action: 'REMOVE',
        state: null,
      },
    });
    await log.waitFor('control.traffic_quota_remove', (f) => f['had_budget'] === true);
    assert.equal(await echoed(port), true, 'REMOVE: unlimited again');
  });

  it('replaces a running rule on a PUSH, and keeps the old one when the new cannot bind', async () => {
    const { server, log } = await startDaemon();
    const session = await server.session(1);
    const port = await freePort();
    const push = session.push({ rule_id: '7', listen_port: port, target_port: echo.port });
    assert.equal((await session.status(push)).outcome, 'ACTIVATED');
    const other = await echoServer();
    cleanups.push(other.close);
    const replace = session.push({
      rule_id: '7',
      listen_port: port,
      target_port: other.port,
      targets: [
        { host: '127.0.0.1', port: other.port, priority: 0 },
        { host: '127.0.0.1', port: echo.port, priority: 1 },
      ],
    });
    assert.equal((await session.status(replace)).outcome, 'ACTIVATED');
    await log.waitFor('rule.reactivated', (f) => f['rule_id'] === '7');
    assert.deepEqual(await roundTrip(port, Buffer.from('x')), Buffer.from('x'));
    await session.stats((r) => r.stats.some((s) => s.rule_id === '7' && s.per_target.length === 2));

    const busy = net.createServer();
    const busyPort = await listen(busy, '::');
    cleanups.push(() => closeServer(busy));
    const moved = session.push({ rule_id: '7', listen_port: busyPort, target_port: echo.port });
    assert.deepEqual(await session.status(moved), {
      request_id: moved,
      rule_id: '7',
      outcome: 'FAILED',
      reason: 'port_in_use',
    });
    assert.deepEqual(await roundTrip(port, Buffer.from('y')), Buffer.from('y'), 'old one runs');
  });

  it('applies the Welcome UDP tunables and forwards a pushed UDP rule', async () => {
    const server = await new FakeControlServer({ identity, autoWelcome: false }).start();
    const { log } = await startDaemon({ server });
    const session = await server.session(1);
    session.welcome(45, 16);
    const connected = await log.waitFor('control.connected');
    assert.equal(connected['udp_flow_idle_secs'], 45);
    assert.equal(connected['udp_max_flows_per_rule'], 16);
    const target = await udpEcho();
    cleanups.push(target.close);
    const port = await freePort();
    const push = session.push({
      rule_id: '11',
      protocol: 'UDP',
      listen_port: port,
      target_port: target.port,
    });
    assert.equal((await session.status(push)).outcome, 'ACTIVATED');
    const payload = Buffer.from('datagram');
    assert.deepEqual(await udpRoundTrip(port, payload), payload);
    await session.stats((r) =>
      r.stats.some((s) => s.rule_id === '11' && s.datagrams_in >= 1 && s.datagrams_out >= 1),
    );
  });

  it('goes terminal when the credential is revoked mid-stream', async () => {
    const { server, log, stop } = await startDaemon();
    const session = await server.session(1);
    const port = await freePort();
    const push = session.push({ rule_id: '12', listen_port: port, target_port: echo.port });
    assert.equal((await session.status(push)).outcome, 'ACTIVATED');
    session.end(grpc.status.UNAUTHENTICATED, 'token_revoked');
    assert.deepEqual(await log.waitFor('control.terminal'), { reason: 'token_revoked' });
    await log.waitFor('rule.removed', (f) => f['rule_id'] === '12');
    assert.equal(await connectRefused(port), true);
    assert.equal(await stop(), 'terminal');
    assert.equal(server.sessions.length, 1);
  });

  it('stops reconnecting after UNAUTHENTICATED and idles until stopped', async () => {
    const { server, log, stop } = await startDaemon({ authorize: () => 'token_revoked' });
    const terminal = await log.waitFor('control.terminal');
    assert.deepEqual(terminal, { reason: 'token_revoked' });
    assert.equal(await stop(), 'terminal');
    assert.equal(server.sessions.length, 1);
    assert.equal(log.count('control.connecting'), 1);
  });

  it('never says Hello to an impostor and keeps retrying', async () => {
    const impostor = await new FakeControlServer({ identity: await makeIdentity() }).start();
    const { log } = await startDaemon({ server: impostor });
    const failed = await log.waitFor('control.connect_failed', (f) => f['attempt'] === 2);
    assert.equal(failed['code'], 'pin_mismatch');
    assert.equal(impostor.sessions.length, 0);
    assert.equal(log.count('control.connected'), 0);
  });

  it('drains and stops on request', async () => {
    const { server, log, stop } = await startDaemon();
    const session = await server.session(1);
    const port = await freePort();
    const push = session.push({ rule_id: '9', listen_port: port, target_port: echo.port });
    assert.equal((await session.status(push)).outcome, 'ACTIVATED');
    assert.equal(await stop(), 'stopped');
    assert.equal(await connectRefused(port), true);
    assert.equal(log.count('control.disconnected'), 0);
  });
});
