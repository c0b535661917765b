/**
 * Replacing a running rule (a PUSH of an active id) through a real Forwarder on loopback: the
 * listener of an unchanged port is never closed, an open connection keeps its upstream while
 * new connections use the new definition, counters carry on, a range that grows binds only its
 * new ports, an identical re-push changes nothing, and a definition that cannot be bound leaves
 * the old one running. UDP: new flows go to the new target on the same socket. Every socket is
 * closed in `after`.
 */
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';

import {
  V4,
  closeUdp,
  freePortRun,
  once,
  recordingLogger,
  roundTrip,
  tcpServer,
  testResources,
  udpSocket,
  waitFor,
} from './net.harness.js';
import { Forwarder, RuleActivationError } from './index.js';
import { simpleRule } from './rule-spec.js';

const resources = testResources();

async function namedTarget(name: string): Promise<number> {
  const server = tcpServer((socket) => {
    socket.write(`${name}:`);
    socket.pipe(socket);
  });
  const port = await resources.listen(server);
  return port;
}

function newForwarder(): { forwarder: Forwarder; servers: net.Server[] } {
  const servers: net.Server[] = [];
  const forwarder = resources.forwarder({
    logger: recordingLogger(),
    listenHost: V4,
    tcp: {
      // Sees every listener the forwarder creates, to prove none is closed by a replace.
      createServer: (options, onConnection) => {
        const server = net.createServer(options, onConnection);
        servers.push(server);
        return server;
      },
    },
  });
  return { forwarder, servers };
}

async function ask(port: number): Promise<string> {
  return (await roundTrip(port, Buffer.from('hi'))).toString();
}

describe('rule replace', () => {
  it('keeps the listener and open connections, sends new connections to the new target', async () => {
    const a = await namedTarget('a');
    const b = await namedTarget('b');
    const { forwarder, servers } = newForwarder();
    const spec = simpleRule({
      ruleId: 'r1',
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: a,
    });
    const { ports } = await forwarder.activate(spec);
    const port = ports[0]!;
    assert.equal(await ask(port), 'a:hi');

    const open = net.connect({ port, host: V4 });
    const received: Buffer[] = [];
    open.on('data', (chunk: Buffer) => received.push(chunk));
    await waitFor(() => Buffer.concat(received).toString() === 'a:', 'open connection greeted');

    const replaced = await forwarder.apply({
      ...spec,
      targets: [{ ...spec.targets[0]!, port: b }],
    });
    assert.deepEqual(replaced.ports, [port]);
    assert.equal(servers.length, 1, 'no second listener was made');
    assert.ok(servers[0]!.listening, 'the listener was never closed');
    assert.equal(await ask(port), 'b:hi', 'new connections use the new definition');
    open.write('still');
    await waitFor(() => Buffer.concat(received).toString() === 'a:still', 'old upstream kept');
    const ended = once(open, 'close');
    open.end();
    await ended;
    await waitFor(() => forwarder.ruleStats('r1')!.active_connections === 0, 'all closed');
    assert.equal(forwarder.ruleStats('r1')!.bytes_in, 2 + 2 + 5, 'counters carry on');
  });

  it('answers an identical re-push without touching anything', async () => {
    const a = await namedTarget('a');
    const { forwarder, servers } = newForwarder();
    const spec = simpleRule({
      ruleId: 'r2',
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: a,
    });
    const { ports } = await forwarder.activate(spec);
    assert.deepEqual((await forwarder.apply({ ...spec, listenPort: ports[0]! })).ports, ports);
    assert.equal(servers.length, 1);
  });

  it('grows a range by binding only the new ports', async () => {
    const base = await freePortRun(3);
    const t0 = await namedTarget('t0');
    const { forwarder, servers } = newForwarder();
    const spec = simpleRule({
      ruleId: 'r3',
      protocol: 'tcp',
      listenPort: base,
      listenPortEnd: base + 1,
      targetHost: V4,
      targetPort: t0,
      targetPortEnd: t0 + 1,
    });
    // The target range is only checked by offset; a single target per port is enough here.
    await forwarder.activate(spec);
    await forwarder.apply({ ...spec, listenPort: base + 1, listenPortEnd: base + 2 });
    assert.equal(servers.length, 3, 'one new listener for the one new port');
    assert.equal(servers[0]!.listening, false, 'the dropped port closed');
    assert.equal(servers[1]!.listening, true, 'the kept port never closed');
  });

  it('keeps the old definition running when the new one cannot be bound', async () => {
    const a = await namedTarget('a');
    const busy = net.createServer();
    const busyPort = await resources.listen(busy);
    const { forwarder } = newForwarder();
    const spec = simpleRule({
      ruleId: 'r4',
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: a,
    });
    const { ports } = await forwarder.activate(spec);
    await assert.rejects(
      forwarder.apply({ ...spec, listenPort: busyPort }),
      (error: unknown) => error instanceof RuleActivationError && error.reason === 'port_in_use',
    );
    assert.deepEqual(forwarder.spec('r4')?.listenPort, ports[0]);
    assert.equal(await ask(ports[0]!), 'a:hi');
  });

  it('sends new UDP flows to the new target on the same socket', async () => {
    const targets: dgram.Socket[] = [];
    for (const name of ['ua', 'ub']) {
      const socket = await udpSocket();
      resources.defer(() => closeUdp(socket));
      socket.on('message', (msg, rinfo) => {
        socket.send(`${name}:${msg.toString()}`, rinfo.port, rinfo.address);
      });
      targets.push(socket);
    }
    const { forwarder } = newForwarder();
    const spec = simpleRule({
      ruleId: 'r5',
      protocol: 'udp',
      listenPort: 0,
      targetHost: V4,
      targetPort: targets[0]!.address().port,
    });
    const { ports } = await forwarder.activate(spec);
    const port = ports[0]!;
    const askUdp = async (client: dgram.Socket): Promise<string> => {
      const reply = once<Buffer>(client, 'message');
      client.send('x', port, V4);
      return (await reply).toString();
    };
    const first = await udpSocket();
    resources.defer(() => closeUdp(first));
    assert.equal(await askUdp(first), 'ua:x');
    await forwarder.apply({
      ...spec,
      listenPort: port,
      targets: [{ ...spec.targets[0]!, port: targets[1]!.address().port }],
    });
    const second = await udpSocket();
    resources.defer(() => closeUdp(second));
    assert.equal(await askUdp(second), 'ub:x', 'a new flow uses the new target');
    assert.equal(await askUdp(first), 'ua:x', 'a live flow keeps its upstream');
    assert.equal(forwarder.ruleStats('r5')!.datagrams_in, 3);
  });
});
