// Proves server.toml's `log_format` with the real binary: "compact" turns every event into one
// `HH:MM:SS.mmm LEVEL event key=value` line (no JSON), with secrets still redacted by the JSON
// logger underneath; "json" (the default) keeps one JSON object per line. Waits on the lines
// themselves, never on sleeps.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { SERVER_BIN, waitFor } from '@portunus/test-support';

import { EPHEMERAL_LISTENERS, Harness, SLOW_STEP_MS } from './harness.js';

const harness = new Harness();
after(() => harness.close());

function dataDirWithFormat(format: string): string {
  const dir = harness.newDataDir();
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'server.toml'), `log_format = "${format}"\n`);
  return dir;
}

describe('server.toml log_format', () => {
  it('"compact" writes one readable line per event, "json" one JSON object', async () => {
    const compact = harness.processes.node(SERVER_BIN, [
      '--data-dir',
      dataDirWithFormat('compact'),
      'serve',
      ...EPHEMERAL_LISTENERS,
    ]);
    await waitFor(() => /\bINFO {2}server\.listening\b/.test(compact.stderr()), {
      what: 'a compact server.listening line',
      timeoutMs: SLOW_STEP_MS,
    });
    const lines = compact
      .stderr()
      .split('\n')
      .filter((line) => /^\d\d:\d\d:\d\d\.\d{3} /.test(line));
    const listening = lines.find((line) => line.includes('server.listening'))!;
    assert.match(listening, /listeners=\{"control":"127\.0\.0\.1:\d+","operator_http":/);
    assert.equal(compact.events.length, 0, 'no JSON line at all');
    // The first start prints the setup token's banner, never the token inside a log line.
    assert.ok(!lines.some((line) => /setup_token=[A-Za-z0-9_-]{20,}/.test(line)));
    compact.kill('SIGTERM');
    assert.equal(await compact.exited(SLOW_STEP_MS), 0, compact.stderr());

    const json = await harness.serve(dataDirWithFormat('json'));
    assert.ok(json.events.some((line) => line.event === 'server.listening'));
  });
});
