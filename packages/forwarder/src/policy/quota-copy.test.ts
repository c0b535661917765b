/**
 * Quota enforcement on the copy paths of a real Forwarder on loopback (reference §5.10): a TCP
 * transfer stops once the owner's budget is used up, with the overrun within one chunk, and the
 * connection half-closes; new connections are refused while exhausted and accepted again after a
 * SET with budget; a budget created while a connection is open meters it from then on; another
 * owner's rule and REMOVE are unaffected. UDP pays per datagram both ways and opens no flow once
 * exhausted. Every socket is closed in `after`.
 */
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';

import { V4, once, tcpEcho, tcpServer, testResources, waitFor } from '../net.harness.js';
import { Forwarder } from '../rule-runtime.js';
import { simpleRule } from '../rule-spec.js';

const resources = testResources();

/** libuv reads at most 64 KiB at a time: the per-connection overrun bound. */
const CHUNK = 64 * 1024;

async function tcpRule(fw: Forwarder, ruleId: string, ownerId: string, target: number) {
  const { ports } = await fw.activate(
    simpleRule({
      ruleId,
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: target,
      ownerId,
    }),
  );
  return ports[0]!;
}

/** Streams `total` bytes (or until the far side closes); resolves with how it ended. */
async function blast(port: number, total: number): Promise<{ ended: boolean; written: number }> {
  const socket = net.connect({ port, host: V4, allowHalfOpen: true });
  resources.defer(() => socket.destroy());
  await once(socket, 'connect');
  const block = Buffer.alloc(16 * 1024, 7);
  let written = 0;
  let ended = false;
  socket.on('end', () => {
    ended = true;
  });
  socket.on('error', () => undefined);
  socket.resume();
  const closed = once(socket, 'close', 10_000);
  while (written < total && !socket.destroyed && socket.writable) {
    written += block.length;
    if (!socket.write(block)) {
      await Promise.race([once(socket, 'drain', 10_000), closed]);
    }
  }
  await closed;
  return { ended, written };
}

/** Whether a new connection gets through to an echo target (a refusal is a reset or a close). */
function echoes(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: V4 });
    let got = '';
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (chunk: Buffer) => {
      got += chunk.toString();
      if (got === 'ping') socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve(got === 'ping');
    });
  });
}

describe('quota enforcement on TCP', () => {
  it('stops a transfer at the budget with at most one chunk over, and half-closes', async () => {
    const fw = resources.forwarder();
    const target = await resources.sink();
    const port = await tcpRule(fw, 'q1', 'alice', target.port);
    const budget = fw.quotas.set('alice', 200_000);
    const result = await blast(port, 8 * 1024 * 1024);
    assert.equal(result.ended, true, 'the client saw a FIN, not a reset only');
    assert.ok(result.written < 8 * 1024 * 1024, 'the transfer was stopped');
    await waitFor(() => target.received() >= 200_000, 'the budget forwarded');
    const forwarded = target.received();
    assert.ok(forwarded >= 200_000, `${forwarded} forwarded`);
    assert.ok(forwarded - 200_000 <= CHUNK, `overrun ${forwarded - 200_000} > one chunk`);
    assert.ok(budget.exhausted);
    assert.equal(-budget.remaining, forwarded - 200_000, 'every forwarded byte was paid for');
  });

  it('delivers every paid byte to slow targets after their clients have gone', async () => {
    // The stop half-closes both ways and a client side closes first, while bytes it paid for
    // still queue towards a target that reads slowly. Those must still leave, then the FIN.
    const fw = resources.forwarder();
    const BUDGET = 32 * 1024 * 1024;
    let received = 0;
    const targetsEnded: Promise<unknown>[] = [];
    const server = tcpServer((socket) => {
      targetsEnded.push(once(socket, 'end', 20_000));
      socket.on('data', (chunk: Buffer) => {
        received += chunk.length;
        // One read per turn of the loop: slower than the senders, so writes queue in the edge.
        socket.pause();
        setImmediate(() => socket.resume());
      });
      socket.on('end', () => socket.end());
    });
    const targetPort = await resources.listen(server);
    const port = await tcpRule(fw, 'q5', 'dave', targetPort);
    fw.quotas.set('dave', BUDGET);
    await Promise.all(Array.from({ length: 8 }, () => blast(port, BUDGET)));
    await waitFor(() => targetsEnded.length === 8, 'every connection reached the target');
    await Promise.all(targetsEnded);
    // A spliced pair pays its last reads when it ends, so the sum may settle after the FINs; lost
    // bytes (received below paid) or bytes moved unpaid never settle and time out here.
    const paid = () => BUDGET - fw.quotas.budgetOf('dave')!.remaining;
    await waitFor(
      () => received === paid(),
      'the targets got exactly the bytes that were paid for',
    );
    assert.equal(received, paid());
    // Eight connections of one owner: together at most one chunk each past the budget, spliced
    // pairs included (their allowances are lent from what is left, QuotaBudget.lend).
    assert.ok(received - BUDGET <= 8 * CHUNK, `overrun ${received - BUDGET} > 8 chunks`);
  });

  it('refuses new connections while exhausted and accepts them after a SET with budget', async () => {
    const fw = resources.forwarder();
    const echoPort = await resources.listen(tcpEcho());
    const port = await tcpRule(fw, 'q2', 'alice', echoPort);
    const other = await tcpRule(fw, 'q3', 'bob', echoPort);
    fw.quotas.set('alice', 0);
    assert.equal(await echoes(port), false, 'refused at accept');
    assert.equal(await echoes(other), true, "another owner's rule is not affected");
    fw.quotas.set('alice', 1_000);
    assert.equal(await echoes(port), true, 'a SET with budget resumes new connections');
    // ping + its echo: 8 bytes paid (a spliced pair pays what it read when it ends).
    await waitFor(() => fw.quotas.budgetOf('alice')?.remaining === 992, '8 bytes paid');
    fw.quotas.remove('alice');
    assert.equal(await echoes(port), true, 'REMOVE: unlimited again');
  });

  it('meters a connection that was open before the owner had a budget', async () => {
    const fw = resources.forwarder();
    const target = await resources.sink();
    const port = await tcpRule(fw, 'q4', 'carol', target.port);
    const socket = net.connect({ port, host: V4, allowHalfOpen: true });
    resources.defer(() => socket.destroy());
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(Buffer.alloc(1000));
    await waitFor(() => target.received() === 1000, 'unmetered bytes');
    const ended = once(socket, 'end', 10_000);
    fw.quotas.set('carol', 500);
    socket.write(Buffer.alloc(400));
    await waitFor(() => target.received() === 1400, 'metered bytes');
    socket.write(Buffer.alloc(400));
    await ended;
    assert.equal(target.received(), 1800, 'the chunk that used the budget up still left');
    assert.equal(fw.quotas.budgetOf('carol')?.remaining, -300);
  });
});

describe('quota enforcement on UDP', () => {
  it('pays per datagram both ways and opens no flow once exhausted', async () => {
    const fw = resources.forwarder();
    const echoPort = await resources.udpEcho();
    const { ports } = await fw.activate(
      simpleRule({
        ruleId: 'u1',
        protocol: 'udp',
        listenPort: 0,
        targetHost: V4,
        targetPort: echoPort,
        ownerId: 'dave',
      }),
    );
    const budget = fw.quotas.set('dave', 250);
    const client: dgram.Socket = await resources.udpSocket();
    let replies = 0;
    client.on('message', () => {
      replies += 1;
    });
    const send = (): void => {
      client.send(Buffer.alloc(100), ports[0], V4);
    };
    send();
    await waitFor(() => replies === 1, 'the first reply');
    // 100 out + 100 back = 200 paid; 50 left: the next datagram is granted (one datagram of
    // overrun), its reply is not.
    send();
    await waitFor(() => budget.remaining === -50, 'the overrun datagram paid');
    send();
    const stats = (): number => fw.stats().find((rule) => rule.rule_id === 'u1')?.bytes_in ?? 0;
    await waitFor(() => stats() === 200, 'the forwarded bytes counted');
    assert.equal(replies, 1);
    assert.equal(stats(), 200, 'refused datagrams are neither forwarded nor counted');
  });
});
