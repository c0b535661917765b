/**
 * Native accept over real loopback sockets (docs/fast-path.md, "Native accept"): a rule with no
 * gate at all has its listening socket served by the splice addon, which accepts, dials and
 * splices with no JavaScript per connection. Proven here: exact bytes both ways over many short
 * connections with the counts in the rule's stats, a deny list pushed live refuses the next
 * connection while a pair already open keeps going (handed back and spliced again), removal
 * stops accepts at once and the drain deadline ends open pairs, a failed dial closes the client
 * and moves the connect-failure counters, and PORTUNUS_DISABLE_SPLICE keeps accepting in
 * JavaScript. Skipped where the addon
 * is not built or PORTUNUS_DISABLE_SPLICE is set for the whole run.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';

import { FORWARDER_EVENTS, simpleRule, spliceStats } from '../index.js';
import {
  V4,
  closedPort,
  dialRefused,
  once,
  pattern,
  recordingLogger,
  roundTrip,
  tcpEcho,
  testResources,
  waitFor,
} from '../net.harness.js';

const resources = testResources();

function spec(ruleId: string, target: number, deniedSources: string[] = []) {
  return simpleRule({
    ruleId,
    protocol: 'tcp',
    listenPort: 0,
    targetHost: V4,
    targetPort: target,
    deniedSources,
  });
}

function nativeSelected(logger: ReturnType<typeof recordingLogger>, ruleId: string): boolean {
  return logger.lines.some(
    (l) =>
      l.event === FORWARDER_EVENTS.spliceSelected &&
      l.fields['rule_id'] === ruleId &&
      l.fields['accept'] === 'native',
  );
}

/** Resolves true when the connection ends without a byte (refused, reset or closed). */
function refusedWithoutData(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: V4 });
    let got = 0;
    socket.on('data', (chunk: Buffer) => (got += chunk.length));
    socket.on('error', () => undefined);
    socket.on('connect', () => socket.write('ping'));
    socket.on('close', () => {
      resolve(got === 0);
    });
  });
}

const enabled =
  process.env['PORTUNUS_DISABLE_SPLICE'] === undefined && process.platform === 'linux';

describe('native accept', { skip: enabled ? false : 'splice is disabled here' }, () => {
  it('moves exact bytes both ways for many short connections and counts them', async (t) => {
    const { forwarder, logger } = resources.loggedForwarder();
    const port = (await forwarder.activate(spec('churn', await resources.listen(tcpEcho()))))
      .ports[0]!;
    if (!nativeSelected(logger, 'churn')) {
      t.skip('the addon is not loaded here');
      return;
    }
    const before = spliceStats()!.pairs;
    const count = 120;
    let bytes = 0;
    for (let batch = 0; batch < count; batch += 8) {
      const sizes = Array.from({ length: 8 }, (_, i) => 1 + (((batch + i) * 977) % 70_000));
      const payloads = sizes.map((size, i) => pattern(size, batch + i));
      const replies = await Promise.all(payloads.map((p) => roundTrip(port, p)));
      replies.forEach((reply, i) => {
        assert.ok(reply.equals(payloads[i]!), 'byte-exact echo');
      });
      bytes += sizes.reduce((a, b) => a + b, 0);
    }
    assert.equal(spliceStats()!.pairs, before + count, 'every connection was spliced natively');
    await waitFor(() => forwarder.ruleStats('churn')!.active_connections === 0, 'pairs done');
    const stats = forwarder.ruleStats('churn')!;
    assert.equal(stats.bytes_in, bytes);
    assert.equal(stats.bytes_out, bytes);
    assert.equal(stats.conn_errors, 0);
    assert.equal(stats.connect_failures, 0);
    assert.equal(stats.targets[0]!.bytes_in, bytes);
  });

  it('moves new connections to JavaScript when a deny list arrives; open pairs go on', async () => {
    const { forwarder, logger } = resources.loggedForwarder();
    const target = await resources.listen(tcpEcho());
    const port = (await forwarder.activate(spec('gate', target))).ports[0]!;
    assert.ok(nativeSelected(logger, 'gate'));
    const open = net.connect({ port, host: V4 });
    open.on('error', () => undefined);
    resources.defer(() => Promise.resolve(open.destroy()));
    open.write('a');
    await once(open, 'data');
    const bytesBefore = forwarder.ruleStats('gate')!.bytes_in;
    const pairsBefore = spliceStats()!.pairs;
    await forwarder.apply(spec('gate', target, ['127.0.0.0/8']));
    assert.equal(await refusedWithoutData(port), true, 'the deny list refuses the next one');
    assert.ok(forwarder.ruleStats('gate')!.source_denied >= 1);
    // The natively accepted pair keeps moving bytes, and they still reach the rule's stats.
    open.write('bc');
    const reply = await once<Buffer>(open, 'data');
    assert.equal(reply.toString(), 'bc');
    await waitFor(
      () => forwarder.ruleStats('gate')!.bytes_in === bytesBefore + 2,
      'bytes of the open native pair',
    );
    // Handed back for the gate, and spliced again by JavaScript: a deny list caps no bandwidth.
    assert.equal(spliceStats()!.pairs, pairsBefore + 1, 'the handed-back pair is spliced again');
    assert.equal(forwarder.ruleStats('gate')!.active_connections, 1);
    // The gate goes away again: accepts return to the addon on the same port.
    await forwarder.apply(spec('gate', target));
    const echoed = await roundTrip(port, Buffer.from('again'));
    assert.equal(echoed.toString(), 'again');
  });

  it('stops accepting at once on removal and ends open pairs at the drain deadline', async () => {
    const { forwarder, logger } = resources.loggedForwarder();
    const port = (await forwarder.activate(spec('drain', await resources.listen(tcpEcho()))))
      .ports[0]!;
    assert.ok(nativeSelected(logger, 'drain'));
    const client = net.connect({ port, host: V4 });
    client.on('error', () => undefined);
    client.write('x');
    await once(client, 'data');
    const closed = once(client, 'close');
    const removal = forwarder.remove('drain', { drainMs: 50 });
    const refused = await dialRefused(port);
    assert.equal(refused, true, 'no new connection during the drain');
    await removal;
    await closed;
    const deadline = logger.lines.find((l) => l.event === FORWARDER_EVENTS.connDrainDeadline);
    assert.equal(deadline?.fields['destroyed'], 1);
  });

  it('closes the client and counts a connect failure when the target refuses', async () => {
    const { forwarder, logger } = resources.loggedForwarder();
    const port = (await forwarder.activate(spec('dead', await closedPort()))).ports[0]!;
    assert.ok(nativeSelected(logger, 'dead'));
    assert.equal(await refusedWithoutData(port), true);
    assert.equal(await refusedWithoutData(port), true);
    await waitFor(() => forwarder.ruleStats('dead')!.connect_failures === 2, 'connect_failures');
    const stats = forwarder.ruleStats('dead')!;
    assert.equal(stats.active_connections, 0);
    const failed = logger.lines.filter(
      (l) => l.event === FORWARDER_EVENTS.connErrorAllTargetsFailed,
    );
    assert.equal(failed.length, 1, 'one event per error class');
    assert.equal(failed[0]!.fields['code'], 'all_targets_failed');
    assert.equal(failed[0]!.fields['cause'], 'ECONNREFUSED');
    const dial = logger.lines.find((l) => l.event === FORWARDER_EVENTS.targetDialFailed);
    assert.equal(dial?.fields['code'], 'ECONNREFUSED');
  });

  it('keeps accepting in JavaScript under PORTUNUS_DISABLE_SPLICE=1', async () => {
    process.env['PORTUNUS_DISABLE_SPLICE'] = '1';
    try {
      const { forwarder, logger } = resources.loggedForwarder();
      const port = (await forwarder.activate(spec('js', await resources.listen(tcpEcho()))))
        .ports[0]!;
      const before = spliceStats()?.pairs ?? 0;
      const reply = await roundTrip(port, Buffer.from('plain'));
      assert.equal(reply.toString(), 'plain');
      assert.equal(nativeSelected(logger, 'js'), false);
      assert.equal(spliceStats()?.pairs ?? 0, before);
      await waitFor(() => forwarder.ruleStats('js')!.bytes_in === 5, 'counted in JS');
    } finally {
      delete process.env['PORTUNUS_DISABLE_SPLICE'];
    }
  });
});
