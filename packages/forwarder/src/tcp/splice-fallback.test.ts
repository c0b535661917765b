/**
 * The fast path's fallback with real bytes (docs/fast-path.md, "Fallback"): when the kernel
 * refuses splice (EINVAL before a byte moved, forced through the addon's test seam) the very
 * connection goes on in the JavaScript copy with its descriptors handed back, byte-exact and with
 * one copy only ('one' comes back as 'one'); `proxy.splice_unsupported_fallback` is logged once
 * for the process and later connections skip the addon. Its own file: the refusal is remembered
 * for the whole process. Skipped where the addon is not built or splice is disabled.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';

import { FORWARDER_EVENTS, simpleRule, spliceStats } from '../index.js';
import { V4, once, recordingLogger, tcpEcho, testResources, waitFor } from '../net.harness.js';
import { spliceTestHooks } from './splice.js';

const resources = testResources();

/** Writes `text`, then collects until the echo has as many bytes, and a little longer. */
async function echoOf(port: number, text: string): Promise<string> {
  const socket = net.connect({ port, host: V4, allowHalfOpen: true });
  socket.on('error', () => undefined);
  let got = '';
  socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
  const ended = once(socket, 'end');
  socket.write(text);
  await waitFor(() => got.length >= text.length, 'the echo');
  // The half-close makes the echo end: anything sent twice arrives before the FIN.
  socket.end();
  await ended;
  socket.destroy();
  return got;
}

const skip =
  process.env['PORTUNUS_DISABLE_SPLICE'] !== undefined
    ? 'splice disabled'
    : process.platform !== 'linux'
      ? 'not Linux'
      : false;

describe('splice refused by the kernel', { skip }, () => {
  it('copies the same connection in JavaScript, once, and says so once', async () => {
    const echo = tcpEcho();
    const target = await resources.listen(echo);
    const logger = recordingLogger();
    const forwarder = resources.forwarder({ logger, listenHost: V4 });
    // Before the rule starts: a forced EINVAL also keeps its accepts in JavaScript, where the
    // hand-over this test is about happens.
    spliceTestHooks.forceEinval = true;
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'f',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    assert.equal(await echoOf(ports[0]!, 'one'), 'one');
    const stats = spliceStats();
    if (stats === undefined) {
      // No addon here: the JS copy ran from the start; the missing-addon test covers the event.
      return;
    }
    assert.equal(stats.pairs, 1, 'the first connection was handed over, then handed back');
    assert.equal(await echoOf(ports[0]!, 'two'), 'two');
    assert.equal(spliceStats()!.pairs, 1, 'later connections skip the addon');
    await waitFor(() => forwarder.ruleStats('f')!.active_connections === 0, 'closed');
    const rule = forwarder.ruleStats('f')!;
    assert.equal(rule.bytes_in, 6);
    assert.equal(rule.bytes_out, 6);
    assert.equal(rule.conn_errors, 0);
    const fallbacks = logger.lines.filter(
      (l) => l.event === FORWARDER_EVENTS.spliceUnsupportedFallback,
    );
    assert.equal(fallbacks.length, 1);
    assert.equal(fallbacks[0]!.fields['reason'], 'einval');
  });
});
