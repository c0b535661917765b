/**
 * Quota enforcement on every TCP path of a real Forwarder on loopback besides the plain one
 * (quota-copy.test.ts; reference §5.10 "every TCP path"): a connection that reached its target
 * after a failover (the preferred target refuses), one copied through the metered variant under
 * a bandwidth cap, and one routed by SNI on a port two owners share. On each, the owner's budget
 * stops the transfer with the overrun within one chunk, the client sees a FIN (half-close, not a
 * reset only), every forwarded byte was paid for, and a new connection of the owner is refused;
 * on the shared SNI port the other owner's open connection goes on. Every socket is closed in
 * `after`.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, it } from 'node:test';

import { captureClientHello } from '@portunus/test-support';

import { V4, closedPort, once, testResources, waitFor } from '../net.harness.js';
import { Forwarder } from '../rule-runtime.js';
import { simpleRule, type RuleSpec } from '../rule-spec.js';

const resources = testResources();

/** libuv reads at most 64 KiB at a time: the per-connection overrun bound. */
const CHUNK = 64 * 1024;
const BUDGET = 200_000;
const TOTAL = 8 * 1024 * 1024;

/** An open client connection to `port`, with its FIN and close observable. */
async function connect(port: number): Promise<{
  socket: net.Socket;
  ended: () => boolean;
  closed: Promise<unknown>;
}> {
  const socket = net.connect({ port, host: V4, allowHalfOpen: true });
  resources.defer(() => socket.destroy());
  let ended = false;
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', () => undefined);
  socket.resume();
  const closed = once(socket, 'close', 10_000);
  // A refusal at accept may reset the socket before 'connect' is seen: then it only closes.
  await new Promise<void>((resolve) => {
    socket.once('connect', resolve);
    socket.once('close', () => {
      resolve();
    });
  });
  return { socket, ended: () => ended, closed };
}

/** Writes `prefix`, then streams up to `total` bytes until the far side closes. */
async function blast(
  port: number,
  total: number,
  prefix?: Buffer,
): Promise<{ ended: boolean; written: number }> {
  const { socket, ended, closed } = await connect(port);
  const block = Buffer.alloc(16 * 1024, 7);
  let written = 0;
  if (prefix) socket.write(prefix);
  while (written < total && !socket.destroyed && socket.writable) {
    written += block.length;
    if (!socket.write(block)) {
      await Promise.race([once(socket, 'drain', 10_000), closed]);
    }
  }
  await closed;
  return { ended: ended(), written };
}

/** Whether a new connection reaches the target (it gets `probe`) before the edge closes it. */
async function reaches(
  port: number,
  target: { received: () => number },
  probe: Buffer,
): Promise<boolean> {
  const before = target.received();
  const { socket } = await connect(port);
  if (!socket.destroyed) socket.write(probe);
  await waitFor(
    () => socket.destroyed || target.received() >= before + probe.length,
    'the probe to arrive or the connection to close',
  );
  const arrived = target.received() >= before + probe.length;
  socket.destroy();
  return arrived;
}

/** The transfer stopped at the budget with at most one chunk over, and every byte was paid. */
async function assertStopped(
  fw: Forwarder,
  owner: string,
  target: { received: () => number },
  result: { ended: boolean; written: number },
  unpaid = 0,
): Promise<void> {
  assert.equal(result.ended, true, 'the client saw a FIN, not a reset only');
  assert.ok(result.written < TOTAL, 'the transfer was stopped');
  await waitFor(() => target.received() - unpaid >= BUDGET, 'the budget forwarded');
  const forwarded = target.received() - unpaid;
  assert.ok(forwarded - BUDGET <= CHUNK, `overrun ${forwarded - BUDGET} > one chunk`);
  const budget = fw.quotas.budgetOf(owner)!;
  assert.ok(budget.exhausted);
  assert.equal(-budget.remaining, forwarded - BUDGET, 'every forwarded byte was paid for');
}

describe('quota enforcement on the failover path', () => {
  it('stops a connection that failed over to its second target at the budget', async () => {
    const fw = resources.forwarder();
    const dead = await closedPort();
    const target = await resources.sink();
    const spec: RuleSpec = {
      ...simpleRule({
        ruleId: 'qf',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: 0,
      }),
      ownerId: 'alice',
      targets: [
        { host: V4, port: dead, portEnd: null, priority: 0, proxyProtocol: null },
        { host: V4, port: target.port, portEnd: null, priority: 1, proxyProtocol: null },
      ],
    };
    const { ports } = await fw.activate(spec);
    const port = ports[0]!;
    fw.quotas.set('alice', BUDGET);
    const result = await blast(port, TOTAL);
    assert.equal(target.connections(), 1, 'the transfer went to the second target');
    const stats = fw.stats().find((rule) => rule.rule_id === 'qf')!;
    assert.ok(stats.targets[0]!.consecutive_failures >= 1, 'the first target was tried and failed');
    await assertStopped(fw, 'alice', target, result);
    assert.equal(await reaches(port, target, Buffer.from('ping')), false, 'new ones are refused');
  });
});

describe('quota enforcement on the capped (metered) path', () => {
  it('stops a connection under a bandwidth cap at the budget', async () => {
    const fw = resources.forwarder();
    const target = await resources.sink();
    const { ports } = await fw.activate(
      simpleRule({
        ruleId: 'qc',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target.port,
        ownerId: 'bob',
        // Generous enough that the budget, not the cap, ends the transfer; still metered.
        rateLimit: { bandwidthInBps: 64 * 1024 * 1024, bandwidthInBurst: 1024 * 1024 },
      }),
    );
    const port = ports[0]!;
    fw.quotas.set('bob', BUDGET);
    const result = await blast(port, TOTAL);
    await assertStopped(fw, 'bob', target, result);
    const stats = fw.stats().find((rule) => rule.rule_id === 'qc')!;
    assert.notEqual(stats.rate_limit, null, 'the connection ran under the cap');
    assert.equal(await reaches(port, target, Buffer.from('ping')), false, 'new ones are refused');
  });
});

describe('quota enforcement on a shared SNI port', () => {
  let helloA: Buffer;
  let helloB: Buffer;
  before(async () => {
    helloA = await captureClientHello('a.example.com');
    helloB = await captureClientHello('b.example.com');
  });

  it("stops the exhausted owner's connection and lets the other owner's go on", async () => {
    const fw = resources.forwarder();
    const targetA = await resources.sink();
    const targetB = await resources.sink();
    const sniRule = (ruleId: string, port: number, pattern: string, owner: string, to: number) =>
      simpleRule({
        ruleId,
        protocol: 'tcp',
        listenPort: port,
        targetHost: V4,
        targetPort: to,
        ownerId: owner,
        sniPattern: pattern,
      });
    const { ports } = await fw.activate(sniRule('sa', 0, 'a.example.com', 'carol', targetA.port));
    const port = ports[0]!;
    await fw.activate(sniRule('sb', port, 'b.example.com', 'dave', targetB.port));

    // Dave's connection is open before Carol's budget runs out, and stays open after.
    const daves = await connect(port);
    daves.socket.write(helloB);
    await waitFor(() => targetB.received() === helloB.length, "dave's hello replayed");

    fw.quotas.set('carol', BUDGET);
    const result = await blast(port, TOTAL, helloA);
    assert.equal(targetA.connections(), 1);
    // The replayed hello is paid for like any other byte the client sent.
    await assertStopped(fw, 'carol', targetA, result);

    daves.socket.write(Buffer.alloc(100_000, 3));
    await waitFor(
      () => targetB.received() === helloB.length + 100_000,
      "dave's bytes after carol's stop",
    );
    assert.equal(daves.ended(), false, "dave's connection was not stopped");
    assert.equal(fw.quotas.budgetOf('dave'), undefined);
    assert.equal(
      await reaches(port, targetA, helloA),
      false,
      "carol's new connections are refused",
    );
    assert.equal(await reaches(port, targetB, helloB), true, "dave's new connections go on");
  });
});
