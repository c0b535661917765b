/**
 * The splice fast path over real loopback sockets (docs/fast-path.md): an uncapped connection is
 * handed to the addon (proxy.splice_selected once per rule, the addon's pair count grows) and
 * moves exact bytes both ways with half-close; bytes a server sends before the client speaks are
 * not lost in the hand-over; a reset on either side ends the pair as one conn_error and ends
 * the other side; a capped rule never splices; removal stops the listener at once and the drain
 * deadline ends spliced pairs. Skipped where the addon is not built or PORTUNUS_DISABLE_SPLICE is
 * set (the JavaScript copy is what runs there, and the listener tests cover it).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';

import { FORWARDER_EVENTS, Forwarder, simpleRule, spliceStats } from '../index.js';
import {
  V4,
  dialRefused,
  once,
  pattern,
  roundTrip,
  tcpEcho,
  tcpServer,
  testResources,
  waitFor,
} from '../net.harness.js';

const resources = testResources();

async function rule(forwarder: Forwarder, ruleId: string, target: number): Promise<number> {
  const { ports } = await forwarder.activate(
    simpleRule({ ruleId, protocol: 'tcp', listenPort: 0, targetHost: V4, targetPort: target }),
  );
  return ports[0]!;
}

/** Whether this process splices: probed with one connection through a throwaway rule. */
async function splicing(): Promise<boolean> {
  if (process.env['PORTUNUS_DISABLE_SPLICE'] !== undefined) return false;
  const { forwarder } = resources.loggedForwarder();
  const port = await rule(forwarder, 'probe', await resources.listen(tcpEcho()));
  await roundTrip(port, Buffer.from('probe'));
  return (spliceStats()?.pairs ?? 0) > 0;
}

const enabled = await splicing();

// CI sets PORTUNUS_REQUIRE_SPLICE=1 (.ci/run): there a missing addon must fail the suite instead of
// quietly running the JavaScript copy twice.
describe('splice addon where it is required', () => {
  it(
    'is built and splices',
    {
      skip:
        process.env['PORTUNUS_REQUIRE_SPLICE'] !== '1' ||
        process.env['PORTUNUS_DISABLE_SPLICE'] !== undefined,
    },
    () => {
      assert.equal(
        enabled,
        true,
        'the addon did not build or load: see packages/forwarder/native/build.mjs',
      );
    },
  );
});

describe('splice fast path', { skip: enabled ? false : 'splice is not available here' }, () => {
  it('moves exact bytes both ways and announces itself once per rule', async () => {
    const { forwarder, logger } = resources.loggedForwarder();
    const port = await rule(forwarder, 'bulk', await resources.listen(tcpEcho()));
    const before = spliceStats()!.pairs;
    const payload = pattern(3 * 1024 * 1024 + 17, 5);
    const replies = await Promise.all([roundTrip(port, payload), roundTrip(port, payload)]);
    for (const reply of replies) assert.ok(reply.equals(payload), 'byte-exact echo');
    assert.equal(spliceStats()!.pairs, before + 2);
    await waitFor(() => forwarder.ruleStats('bulk')!.active_connections === 0, 'pairs done');
    const stats = forwarder.ruleStats('bulk')!;
    assert.equal(stats.bytes_in, 2 * payload.length);
    assert.equal(stats.bytes_out, 2 * payload.length);
    assert.equal(stats.conn_errors, 0);
    assert.equal(stats.targets[0]!.bytes_in, 2 * payload.length);
    const selected = logger.lines.filter((l) => l.event === FORWARDER_EVENTS.spliceSelected);
    assert.equal(selected.length, 1);
    assert.equal(selected[0]!.fields['rule_id'], 'bulk');
  });

  it('shows live byte counts of an open pair and keeps the half-close', async () => {
    const { forwarder } = resources.loggedForwarder();
    const target = await resources.listen(
      tcpServer((socket) => {
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('end', () => socket.end(`got:${Buffer.concat(chunks).toString()}`));
      }),
    );
    const port = await rule(forwarder, 'half', target);
    const client = resources.socket(net.connect({ port, host: V4, allowHalfOpen: true }));
    await once(client, 'connect');
    client.write('hello');
    await waitFor(() => forwarder.ruleStats('half')!.bytes_in === 5, 'live bytes_in');
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = once(client, 'end');
    client.end();
    await ended;
    assert.equal(Buffer.concat(chunks).toString(), 'got:hello');
  });

  it('delivers what a server sends before the client speaks', async () => {
    const { forwarder } = resources.loggedForwarder();
    const target = await resources.listen(
      tcpServer((socket) => {
        socket.write('220 banner\r\n');
        socket.on('data', (chunk: Buffer) => socket.end(`echo:${chunk.toString()}`));
      }),
    );
    const port = await rule(forwarder, 'banner', target);
    const client = resources.socket(net.connect({ port, host: V4 }));
    let got = '';
    client.on('data', (chunk: Buffer) => {
      got += chunk.toString();
      if (got === '220 banner\r\n') client.write('hi');
    });
    await once(client, 'end');
    assert.equal(got, '220 banner\r\necho:hi');
  });

  for (const side of ['client', 'upstream'] as const) {
    it(`ends the pair as one conn_error when the ${side} resets`, async () => {
      const { forwarder } = resources.loggedForwarder();
      let upstream: net.Socket | undefined;
      let upstreamEnded = false;
      const target = await resources.listen(
        tcpServer((socket) => {
          upstream = socket;
          socket.on('error', () => undefined);
          // A FIN, or the reset's close: either way the other side was ended (the target
          // allows half-open sockets, so a FIN alone does not close it).
          socket.on('end', () => (upstreamEnded = true));
          socket.on('close', () => (upstreamEnded = true));
          socket.on('data', (chunk: Buffer) => socket.write(chunk));
        }),
      );
      const listenPort = await rule(forwarder, `rst-${side}`, target);
      const client = resources.socket(net.connect({ port: listenPort, host: V4 }));
      const clientClosed = once(client, 'close');
      client.write('ping');
      await once(client, 'data');
      if (side === 'client') client.resetAndDestroy();
      else upstream!.resetAndDestroy();
      await clientClosed;
      await waitFor(() => upstreamEnded, 'the upstream was ended too');
      await waitFor(
        () => forwarder.ruleStats(`rst-${side}`)!.active_connections === 0,
        'pair released',
      );
      const stats = forwarder.ruleStats(`rst-${side}`)!;
      assert.equal(stats.conn_errors, 1);
      assert.equal(stats.bytes_in, 4);
      assert.equal(stats.bytes_out, 4);
    });
  }

  it('keeps a capped rule on the JavaScript copy', async () => {
    const { forwarder } = resources.loggedForwarder();
    const target = await resources.listen(tcpEcho());
    const before = spliceStats()!.pairs;
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'capped',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
        rateLimit: { bandwidthInBps: 64 * 1024 * 1024 },
      }),
    );
    const reply = await roundTrip(ports[0]!, Buffer.from('one'));
    assert.equal(reply.toString(), 'one');
    assert.equal(spliceStats()!.pairs, before);
  });

  it('stops accepting at once on removal and ends spliced pairs at the drain deadline', async () => {
    const { forwarder, logger } = resources.loggedForwarder();
    const port = await rule(forwarder, 'drain', await resources.listen(tcpEcho()));
    const client = resources.socket(net.connect({ port, host: V4 }));
    client.write('x');
    await once(client, 'data');
    const closed = once(client, 'close');
    const removal = forwarder.remove('drain', { drainMs: 50 });
    // The listener is closed before the drain ends: a new dial is refused.
    const refused = await dialRefused(port);
    assert.equal(refused, true, 'no new connection during the drain');
    await removal;
    await closed;
    const deadline = logger.lines.find((l) => l.event === FORWARDER_EVENTS.connDrainDeadline);
    assert.equal(deadline?.fields['destroyed'], 1);
  });
});
