/**
 * TCP forwarding and port ranges over real loopback sockets: exact byte counts, half-close,
 * refused upstreams, removal with in-flight connections, range offsets and all-or-nothing binds.
 * Waits on events and conditions with deadlines, never on fixed sleeps; every server is closed.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';

import {
  DEFAULT_TCP_HIGH_WATER_MARK,
  simpleRule,
  Forwarder,
  RuleActivationError,
  FORWARDER_EVENTS,
} from '../index.js';
import {
  V4,
  closeTcp,
  closedPort,
  freePortRun,
  listenTcp,
  once,
  pattern,
  recordingLogger,
  roundTrip,
  tcpEcho,
  tcpServer,
  testResources,
  waitFor,
} from '../net.harness.js';

const resources = testResources();

describe('TCP forwarding', () => {
  it('echoes through the forwarder both ways with exact byte counts', async () => {
    const target = await resources.listen(tcpEcho());
    const forwarder = resources.forwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'echo',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    const payload = pattern(300_000, 7);
    const reply = await roundTrip(ports[0]!, payload);
    assert.ok(reply.equals(payload));
    await waitFor(() => forwarder.ruleStats('echo')?.active_connections === 0, 'connection closed');
    const stats = forwarder.ruleStats('echo')!;
    assert.equal(stats.bytes_in, 300_000);
    assert.equal(stats.bytes_out, 300_000);
    assert.equal(stats.conn_errors, 0);
  });

  it('counts each direction separately', async () => {
    // The target reads everything, then answers with a reply of a different size.
    const target = await resources.listen(
      tcpServer((socket) => {
        let received = 0;
        socket.on('data', (chunk: Buffer) => (received += chunk.length));
        socket.on('end', () => socket.end(pattern(received / 2 + 11, 3)));
      }),
    );
    const forwarder = resources.forwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'sizes',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    const reply = await roundTrip(ports[0]!, pattern(80_000, 1));
    assert.equal(reply.length, 40_011);
    await waitFor(() => forwarder.ruleStats('sizes')?.active_connections === 0, 'closed');
    const stats = forwarder.ruleStats('sizes')!;
    assert.equal(stats.bytes_in, 80_000);
    assert.equal(stats.bytes_out, 40_011);
  });

  it('propagates a half-close: the client ends its write side and still gets the reply', async () => {
    let targetSawEnd = false;
    const target = await resources.listen(
      tcpServer((socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => {
          targetSawEnd = true;
          socket.end(`got:${Buffer.concat(chunks).toString()}`);
        });
      }),
    );
    const forwarder = resources.forwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'half',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    const reply = await roundTrip(ports[0]!, Buffer.from('ping'));
    assert.equal(reply.toString(), 'got:ping');
    assert.ok(targetSawEnd);
  });

  it('closes the client connection and counts a connect failure when the upstream refuses', async () => {
    const logger = recordingLogger();
    const forwarder = resources.forwarder({ logger });
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'refused',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: await closedPort(),
      }),
    );
    const client = net.connect({ port: ports[0]!, host: V4 });
    client.on('error', () => undefined);
    await once(client, 'close');
    await waitFor(() => forwarder.ruleStats('refused')?.active_connections === 0, 'torn down');
    // A failed connect is not a mid-stream error: the two counters tell them apart.
    assert.equal(forwarder.ruleStats('refused')!.connect_failures, 1);
    assert.equal(forwarder.ruleStats('refused')!.conn_errors, 0);
    const line = logger.lines.find((l) => l.event === FORWARDER_EVENTS.targetDialFailed);
    assert.equal(line?.fields['code'], 'ECONNREFUSED');
    const dropped = logger.lines.find(
      (l) => l.event === FORWARDER_EVENTS.connErrorAllTargetsFailed,
    );
    assert.equal(dropped?.fields['code'], 'all_targets_failed');
  });

  it('stops accepting at once on removal while an in-flight connection keeps flowing', async () => {
    const target = await resources.listen(tcpEcho());
    const logger = recordingLogger();
    const forwarder = resources.forwarder({ logger });
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'drain',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    const port = ports[0]!;
    const client = net.connect({ port, host: V4 });
    await once(client, 'connect');
    client.write('before');
    await once(client, 'data');
    let removed = false;
    const removal = forwarder.remove('drain').then(() => (removed = true));
    // A new connection is refused straight away...
    const late = net.connect({ port, host: V4 });
    const lateError = await once<NodeJS.ErrnoException>(late, 'error');
    assert.equal(lateError.code, 'ECONNREFUSED');
    // ...while the old one still echoes.
    client.write('after');
    const echoed = await once<Buffer>(client, 'data');
    assert.equal(echoed.toString(), 'after');
    assert.equal(removed, false);
    client.end();
    await removal;
    assert.ok(logger.lines.some((l) => l.event === FORWARDER_EVENTS.ruleRemoved));
    assert.equal(forwarder.has('drain'), false);
  });

  it('gives the dialled upstream the same large buffers as the accepted client', async () => {
    const target = await resources.listen(tcpEcho());
    const seen: number[] = [];
    const forwarder = resources.forwarder({
      tcp: {
        dial: (options) => {
          seen.push((options as { highWaterMark?: number }).highWaterMark ?? 0);
          return net.connect(options);
        },
      },
    });
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'hwm',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    assert.deepEqual(await roundTrip(ports[0]!, Buffer.from('x')), Buffer.from('x'));
    // A 16 KiB default would pause the source after every corked read (tcp/listener.ts).
    assert.deepEqual(seen, [DEFAULT_TCP_HIGH_WATER_MARK]);
  });

  it('destroys in-flight connections when the drain deadline passes', async () => {
    const target = await resources.listen(tcpEcho());
    const forwarder = resources.forwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'deadline',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    const client = net.connect({ port: ports[0]!, host: V4 });
    client.on('error', () => undefined);
    await once(client, 'connect');
    client.write('x');
    await once(client, 'data');
    const closed = once(client, 'close');
    await forwarder.remove('deadline', { drainMs: 20 });
    await closed;
  });

  it('gives up on an upstream that does not connect within the connect timeout', async () => {
    const logger = recordingLogger();
    // A socket that is never asked to connect stands in for a blackholed target.
    const forwarder = resources.forwarder({
      logger,
      tcp: { connectTimeoutMs: 30, dial: () => new net.Socket() },
    });
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'slow',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: 9,
      }),
    );
    const client = net.connect({ port: ports[0]!, host: V4 });
    client.on('error', () => undefined);
    await once(client, 'close');
    await waitFor(() => forwarder.ruleStats('slow')?.connect_failures === 1, 'timeout counted');
    const line = logger.lines.find((l) => l.event === FORWARDER_EVENTS.targetDialFailed);
    assert.equal(line?.fields['code'], 'ETIMEDOUT');
  });

  it('reports permission_denied when the bind is refused with EACCES', async () => {
    const forwarder = new Forwarder({
      listenHost: V4,
      tcp: {
        createServer: (options, onConnection) => {
          const server = net.createServer(options, onConnection);
          // Stands in for a privileged port bound by an unprivileged user.
          server.listen = (() => {
            process.nextTick(() => {
              server.emit('error', Object.assign(new Error('denied'), { code: 'EACCES' }));
            });
            return server;
          }) as typeof server.listen;
          return server;
        },
      },
    });
    await assert.rejects(
      forwarder.activate(
        simpleRule({
          ruleId: 'priv',
          protocol: 'tcp',
          listenPort: 80,
          targetHost: V4,
          targetPort: 8080,
        }),
      ),
      { reason: 'permission_denied', port: 80 },
    );
  });

  it('accepts IPv4 and IPv6 on one dual-stack listener', async () => {
    const target = await resources.listen(tcpEcho());
    const forwarder = new Forwarder({ logger: recordingLogger() });
    resources.defer(() => forwarder.close({ drainMs: 0 }));
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'dual',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    assert.equal((await roundTrip(ports[0]!, Buffer.from('v4'), V4)).toString(), 'v4');
    assert.equal((await roundTrip(ports[0]!, Buffer.from('v6'), '::1')).toString(), 'v6');
    await forwarder.remove('dual');
  });
});

describe('TCP port ranges', () => {
  it('maps a 3-port range onto 3 targets at the same offset', async () => {
    const targetBase = await freePortRun(3);
    for (let offset = 0; offset < 3; offset++) {
      const port = targetBase + offset;
      await resources.listen(
        tcpServer((socket) => {
          socket.resume();
          socket.on('end', () => socket.end(`target:${port}`));
        }),
        port,
      );
    }
    const listenBase = await freePortRun(3);
    const forwarder = resources.forwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'range',
        protocol: 'tcp',
        listenPort: listenBase,
        listenPortEnd: listenBase + 2,
        targetHost: V4,
        targetPort: targetBase,
        targetPortEnd: targetBase + 2,
      }),
    );
    assert.deepEqual(ports, [listenBase, listenBase + 1, listenBase + 2]);
    for (let offset = 0; offset < 3; offset++) {
      const reply = await roundTrip(listenBase + offset, Buffer.from('hi'));
      assert.equal(reply.toString(), `target:${targetBase + offset}`);
    }
    await waitFor(() => forwarder.ruleStats('range')?.active_connections === 0, 'closed');
    const stats = forwarder.ruleStats('range')!;
    assert.equal(stats.ports.length, 3);
    assert.deepEqual(
      stats.ports.map((p) => [p.listen_port, p.target_port, p.bytes_in]),
      [0, 1, 2].map((o) => [listenBase + o, targetBase + o, 2]),
    );
    assert.equal(stats.bytes_in, 6);
  });

  it('fails a range with port_in_use naming the busy port and leaves nothing bound', async () => {
    const base = await freePortRun(3);
    const blocker = net.createServer();
    await resources.listen(blocker, base + 1);
    const logger = recordingLogger();
    const forwarder = resources.forwarder({ logger });
    await assert.rejects(
      forwarder.activate(
        simpleRule({
          ruleId: 'busy',
          protocol: 'tcp',
          listenPort: base,
          listenPortEnd: base + 2,
          targetHost: V4,
          targetPort: 9000,
          targetPortEnd: 9002,
        }),
      ),
      (error: unknown) =>
        error instanceof RuleActivationError &&
        error.reason === 'port_in_use' &&
        error.port === base + 1,
    );
    assert.equal(forwarder.has('busy'), false);
    const failed = logger.lines.find((l) => l.event === FORWARDER_EVENTS.ruleFailed);
    assert.ok(failed);
    assert.equal(failed.fields['reason'], 'port_in_use');
    assert.equal(failed.fields['port'], base + 1);
    // The port before the busy one was released, and the one after was never taken.
    for (const port of [base, base + 2]) {
      const probe = net.createServer();
      assert.equal(await listenTcp(probe, port), port);
      await closeTcp(probe);
    }
  });

  it('refuses ranges over the cap, mismatched lengths and duplicate ids before binding', async () => {
    const forwarder = new Forwarder({ listenHost: V4, maxRangePorts: 4 });
    resources.defer(() => forwarder.close());
    const base = { protocol: 'tcp' as const, targetHost: V4 };
    const reason = async (rule: Parameters<typeof simpleRule>[0]): Promise<string> => {
      try {
        await forwarder.activate(simpleRule(rule));
        return 'ok';
      } catch (error) {
        return (error as RuleActivationError).reason;
      }
    };
    const big = { ...base, ruleId: 'a', listenPort: 20000, listenPortEnd: 20004 };
    assert.equal(await reason({ ...big, targetPort: 30000, targetPortEnd: 30004 }), 'exceeds_cap');
    const uneven = { ...base, ruleId: 'b', listenPort: 20000, listenPortEnd: 20002 };
    assert.equal(await reason({ ...uneven, targetPort: 1, targetPortEnd: 2 }), 'range_invalid');
    const target = await closedPort();
    const one = { ...base, ruleId: 'c', listenPort: 0, targetPort: target };
    assert.equal(await reason(one), 'ok');
    assert.equal(await reason(one), 'duplicate_rule_id');
  });
});
