/**
 * Native accept when things go wrong (docs/fast-path.md, "Native accept"), over real loopback
 * sockets: a process out of descriptors pauses its native accepts instead of spinning on a
 * listener that stays ready (proven in a child under `ulimit -n`, by the addon's wake-ups per
 * pause), logs `rule.accept_error` and serves the connections that waited in the backlog once
 * descriptors are free again; a native pair whose upstream resets mid-stream is counted and
 * logged as `rule.conn_error`, as the JavaScript copy logs its own. Skipped where the addon is
 * not built or PORTUNUS_DISABLE_SPLICE is set.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import net from 'node:net';
import { describe, it } from 'node:test';

import { ProcessGroup, type LogLine } from '@portunus/test-support';

import { FORWARDER_EVENTS, simpleRule } from '../index.js';
import {
  V4,
  recordingLogger,
  roundTrip,
  tcpEcho,
  tcpServer,
  testResources,
  waitFor,
} from '../net.harness.js';

const resources = testResources();
const processes = new ProcessGroup();
resources.defer(() => processes.killAll());

const CHILD = fileURLToPath(new URL('./native-accept-emfile.child.js', import.meta.url));
/** Enough for node and the forwarder to start; the child fills the rest on demand. */
const FD_LIMIT = 256;

const enabled =
  process.env['PORTUNUS_DISABLE_SPLICE'] === undefined && process.platform === 'linux';

describe('native accept faults', { skip: enabled ? false : 'splice is disabled here' }, () => {
  it('pauses accepts while out of descriptors, then serves the connections that waited', async (t) => {
    const echoPort = await resources.listen(tcpEcho());
    const child = processes.spawn('sh', [
      '-c',
      `ulimit -n ${FD_LIMIT} && exec "$0" "$@"`,
      process.execPath,
      CHILD,
      String(echoPort),
    ]);
    const ready = await child.waitForEvent('test.ready');
    const port = ready['port'] as number;
    const native = child.events.some(
      (l) => l.event === FORWARDER_EVENTS.spliceSelected && l['accept'] === 'native',
    );
    if (!native) {
      t.skip('the addon is not loaded here');
      return;
    }
    const first = Buffer.from('before the descriptors run out');
    assert.ok((await roundTrip(port, first)).equals(first));

    child.kill('SIGUSR2');
    const filled = await child.waitForEvent('test.filled');
    assert.equal(filled['code'], 'EMFILE');
    // The kernel completes these handshakes into the backlog; nobody can accept them yet.
    const payloads = [1, 2, 3].map((n) => Buffer.alloc(10_000 * n, n));
    const replies = payloads.map((payload) => roundTrip(port, payload));
    // Awaited below; until then a failure must not surface as an unhandled rejection.
    for (const reply of replies) reply.catch(() => undefined);

    const pauses = (): LogLine[] =>
      child.events.filter((l) => l.event === FORWARDER_EVENTS.acceptError);
    const warned = await child.waitForEvent(FORWARDER_EVENTS.acceptError, { timeoutMs: 8_000 });
    assert.equal(warned['level'], 'warn');
    assert.equal(warned['code'], 'EMFILE');
    assert.equal(warned['accept'], 'native');
    assert.equal(warned['paused_ms'], 100);
    // Each pause costs a worker a couple of wake-ups (the timer, the listener ready again); a
    // worker spinning on the ready listener would wake many thousands of times between pauses.
    await waitFor(() => pauses().length >= 8, 'eight accept pauses', 20_000);
    const seen = pauses();
    const [from, to] = [seen[1]!, seen[7]!];
    const wakeups = (to['wakeups'] as number) - (from['wakeups'] as number);
    assert.ok(wakeups <= 3 * 6 + 8, `${wakeups} wake-ups over 6 pauses`);
    assert.ok(
      seen.slice(1).every((l) => l['level'] === 'debug'),
      'one warning per errno, then debug',
    );

    child.kill('SIGHUP');
    await child.waitForEvent('test.freed');
    const echoed = await Promise.all(replies);
    echoed.forEach((reply, i) => {
      assert.ok(reply.equals(payloads[i]!), `connection ${i} that waited is served exactly`);
    });
  });

  it('logs a native pair whose upstream resets mid-stream as rule.conn_error', async (t) => {
    const logger = recordingLogger();
    const forwarder = resources.forwarder({ logger });
    // The target reads the first bytes, then resets the connection.
    const target = await resources.listen(
      tcpServer((socket) => {
        socket.once('data', () => socket.resetAndDestroy());
      }),
    );
    const rule = simpleRule({
      ruleId: 'reset',
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: target,
    });
    const port = (await forwarder.activate(rule)).ports[0]!;
    const native = logger.lines.some(
      (l) => l.event === FORWARDER_EVENTS.spliceSelected && l.fields['accept'] === 'native',
    );
    if (!native) {
      t.skip('the addon is not loaded here');
      return;
    }
    const client = resources.socket(net.connect({ port, host: V4 }));
    client.write('hello');
    await waitFor(() => forwarder.ruleStats('reset')!.conn_errors === 1, 'the error counted');
    const logged = () => logger.lines.find((l) => l.event === FORWARDER_EVENTS.connError);
    await waitFor(() => logged() !== undefined, 'rule.conn_error logged');
    const line = logged()!;
    assert.equal(line.level, 'warn');
    assert.equal(line.fields['side'], 'upstream');
    assert.equal(line.fields['code'], 'ECONNRESET');
    assert.equal(line.fields['accept'], 'native');
    assert.equal(line.fields['target'], `${V4}:${target}`);
  });
});
