/**
 * The fast path when the addon cannot be loaded (docs/fast-path.md, "Fallback"): every
 * connection runs the JavaScript copy with real bytes ('one' comes back as 'one', not twice), and
 * `proxy.splice_unsupported_fallback` is logged once with the reason, not per connection. Its own
 * file: a failed load is remembered for the whole process. Skipped when splice is disabled (then
 * nothing is loaded and nothing is reported).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';

import { FORWARDER_EVENTS, simpleRule, spliceStats } from '../index.js';
import { V4, recordingLogger, roundTrip, tcpEcho, testResources } from '../net.harness.js';
import { spliceTestHooks } from './splice.js';

const resources = testResources();

const skip = process.env['PORTUNUS_DISABLE_SPLICE'] !== undefined ? 'splice disabled' : false;

describe('splice addon missing', { skip }, () => {
  it('copies in JavaScript and says why once', async () => {
    spliceTestHooks.loadError = 'Cannot find module portunus_splice.node';
    const echo: net.Server = tcpEcho();
    const target = await resources.listen(echo);
    const logger = recordingLogger();
    const forwarder = resources.forwarder({ logger });
    const { ports } = await forwarder.activate(
      simpleRule({
        ruleId: 'm',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: target,
      }),
    );
    for (const text of ['one', 'two', 'three']) {
      assert.equal((await roundTrip(ports[0]!, Buffer.from(text))).toString(), text);
    }
    assert.equal(spliceStats(), undefined, 'the addon was never loaded');
    const fallbacks = logger.lines.filter(
      (l) => l.event === FORWARDER_EVENTS.spliceUnsupportedFallback,
    );
    assert.equal(fallbacks.length, 1);
    const expected = process.platform === 'linux' ? 'addon_missing' : 'platform';
    assert.equal(fallbacks[0]!.fields['reason'], expected);
  });
});
