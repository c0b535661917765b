/**
 * UDP forwarding over real loopback sockets: one flow, many sources without misroutes, the
 * rule-wide flow cap, idle expiry driven by an injected clock and scheduler, and TCP and UDP
 * rules sharing a port number. Waits on events and conditions with deadlines, never on fixed
 * sleeps; every socket is closed.
 */
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import { describe, it } from 'node:test';

import {
  FORWARDER_EVENTS,
  Forwarder,
  simpleRule,
  type IntervalScheduler,
  type UdpOptions,
} from '../index.js';
import {
  V4,
  closeUdp,
  freePortRun,
  once,
  recordingLogger,
  roundTrip,
  tcpEcho,
  testResources,
  udpSocket,
  waitFor,
} from '../net.harness.js';

const resources = testResources();

/** Closes with the Forwarder's default drain, not none: this file's teardown always has. */
function newForwarder(udp: UdpOptions = {}, logger = recordingLogger()): Forwarder {
  return resources.forwarder({ logger, udp }, {});
}

/** Sends and waits for the next datagram on `socket`. */
async function ask(socket: dgram.Socket, port: number, text: string): Promise<string> {
  const reply = once<Buffer>(socket, 'message');
  socket.send(text, port, V4);
  return (await reply).toString();
}

describe('UDP forwarding', () => {
  it('echoes one flow and counts datagrams and bytes both ways', async () => {
    const forwarder = newForwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'u1',
        protocol: 'udp',
        listenPort: 0,
        targetHost: V4,
        targetPort: await resources.udpEcho(),
      }),
    );
    const socket = await resources.udpSocket();
    assert.equal(await ask(socket, ports[0]!, 'hello'), 'hello');
    assert.equal(await ask(socket, ports[0]!, 'again!'), 'again!');
    await waitFor(() => forwarder.ruleStats('u1')?.datagrams_out === 2, 'replies counted');
    const stats = forwarder.ruleStats('u1')!;
    assert.equal(stats.active_flows, 1);
    assert.equal(stats.datagrams_in, 2);
    assert.equal(stats.bytes_in, 11);
    assert.equal(stats.bytes_out, 11);
    assert.equal(stats.flows_dropped_overflow, 0);
  });

  it('gives 200 distinct sources only their own replies', async () => {
    const forwarder = newForwarder();
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'many',
        protocol: 'udp',
        listenPort: 0,
        targetHost: V4,
        targetPort: await resources.udpEcho(),
      }),
    );
    const sockets = await Promise.all(Array.from({ length: 200 }, () => resources.udpSocket()));
    const received = sockets.map(() => [] as string[]);
    sockets.forEach((socket, index) => {
      socket.on('message', (msg: Buffer) => received[index]!.push(msg.toString()));
    });
    for (let round = 0; round < 2; round++) {
      sockets.forEach((socket, index) => {
        socket.send(`source-${index}`, ports[0], V4);
      });
      await waitFor(() => received.every((r) => r.length === round + 1), `round ${round} replies`);
    }
    received.forEach((replies, index) => {
      assert.deepEqual(replies, [`source-${index}`, `source-${index}`]);
    });
    assert.equal(forwarder.ruleStats('many')!.active_flows, 200);
  });

  it('drops new flows over the cap and keeps the old ones', async () => {
    const logger = recordingLogger();
    const forwarder = newForwarder({ maxFlows: 2 }, logger);
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'cap',
        protocol: 'udp',
        listenPort: 0,
        targetHost: V4,
        targetPort: await resources.udpEcho(),
      }),
    );
    const port = ports[0]!;
    const [a, b, c] = [
      await resources.udpSocket(),
      await resources.udpSocket(),
      await resources.udpSocket(),
    ];
    assert.equal(await ask(a, port, 'a1'), 'a1');
    assert.equal(await ask(b, port, 'b1'), 'b1');
    let cGotReply = false;
    c.on('message', () => (cGotReply = true));
    c.send('c1', port, V4);
    await waitFor(() => forwarder.ruleStats('cap')?.flows_dropped_overflow === 1, 'overflow');
    // The live flows keep working after the drop.
    assert.equal(await ask(a, port, 'a2'), 'a2');
    assert.equal(await ask(b, port, 'b2'), 'b2');
    assert.equal(cGotReply, false);
    const stats = forwarder.ruleStats('cap')!;
    assert.equal(stats.active_flows, 2);
    assert.ok(logger.lines.some((l) => l.event === FORWARDER_EVENTS.udpFlowDroppedOverflow));
  });

  it('expires idle flows on the injected clock', async () => {
    let now = 1_000_000;
    const sweeps: (() => void)[] = [];
    const scheduler: IntervalScheduler = {
      setInterval: (callback) => sweeps.push(callback),
      clearInterval: () => undefined,
    };
    const logger = recordingLogger();
    const forwarder = newForwarder({ clock: { now: () => now }, scheduler }, logger);
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'idle',
        protocol: 'udp',
        listenPort: 0,
        targetHost: V4,
        targetPort: await resources.udpEcho(),
      }),
    );
    const sweep = (): void => {
      for (const run of sweeps) run();
    };
    assert.equal(sweeps.length, 1);
    const socket = await resources.udpSocket();
    assert.equal(await ask(socket, ports[0]!, 'x'), 'x');
    now += 59_000;
    sweep();
    assert.equal(forwarder.ruleStats('idle')!.active_flows, 1);
    now += 1_000;
    sweep();
    assert.equal(forwarder.ruleStats('idle')!.active_flows, 0);
    assert.ok(logger.lines.some((l) => l.event === FORWARDER_EVENTS.udpFlowClosedIdle));
    // The next datagram from the same source opens a fresh flow.
    assert.equal(await ask(socket, ports[0]!, 'y'), 'y');
    assert.equal(forwarder.ruleStats('idle')!.active_flows, 1);
  });

  it('serves TCP and UDP rules on the same port number', async () => {
    const tcpTargetPort = await resources.listen(tcpEcho());
    const forwarder = newForwarder();
    // A port free for both protocols: a kernel-chosen TCP port may be a live UDP port here.
    const port = await freePortRun(1);
    await forwarder.activate(
      simpleRule({
        ruleId: 'same-tcp',
        protocol: 'tcp',
        listenPort: port,
        targetHost: V4,
        targetPort: tcpTargetPort,
      }),
    );
    await forwarder.activate(
      simpleRule({
        ruleId: 'same-udp',
        protocol: 'udp',
        listenPort: port,
        targetHost: V4,
        targetPort: await resources.udpEcho(),
      }),
    );
    assert.equal((await roundTrip(port, Buffer.from('over tcp'))).toString(), 'over tcp');
    assert.equal(await ask(await resources.udpSocket(), port, 'over udp'), 'over udp');
  });

  it('fails a UDP range with port_in_use naming the busy port and leaves nothing bound', async () => {
    // Two ports found free together (not "the port below an ephemeral one", which another
    // process may hold), the upper one then held by the blocker.
    const base = await freePortRun(2);
    const busy = base + 1;
    await resources.udpSocket(busy);
    const forwarder = newForwarder();
    // The range ends at the busy port, so the first port is bound before the failure.
    await assert.rejects(
      forwarder.activate(
        simpleRule({
          ruleId: 'ubusy',
          protocol: 'udp',
          listenPort: busy - 1,
          listenPortEnd: busy,
          targetHost: V4,
          targetPort: 9000,
          targetPortEnd: 9001,
        }),
      ),
      { reason: 'port_in_use', port: busy },
    );
    await closeUdp(await udpSocket(busy - 1));
  });

  it('accepts IPv4 and IPv6 sources on one dual-stack socket', async () => {
    const forwarder = new Forwarder({ logger: recordingLogger() });
    resources.defer(() => forwarder.close());
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'udual',
        protocol: 'udp',
        listenPort: 0,
        targetHost: V4,
        targetPort: await resources.udpEcho(),
      }),
    );
    assert.equal(await ask(await resources.udpSocket(), ports[0]!, 'v4'), 'v4');
    const v6 = await resources.udpSocket(0, '::1');
    const reply = once<Buffer>(v6, 'message');
    v6.send('v6', ports[0], '::1');
    assert.equal((await reply).toString(), 'v6');
  });
});
