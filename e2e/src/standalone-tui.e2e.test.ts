// The stats TUI in a real terminal: `portunus-standalone stats` runs inside a tmux pane (its own
// tmux server, fixed size) against a running standalone; the test presses keys with send-keys and
// reads the screen with capture-pane, waiting for text with deadlines. Needs tmux (.ci/run
// installs it).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, afterEach, describe, it } from 'node:test';

import { ProcessGroup, STANDALONE_BIN, tempDirs, waitFor } from '@portunus/test-support';

import { heldConnection, startStandalone, tcpEcho } from './standalone.harness.js';
import { ask } from './targets.harness.js';

const dirs = tempDirs();
const group = new ProcessGroup();
const closers: (() => Promise<void>)[] = [];
const TMUX_SERVER = `portunus-tui-${process.pid}`;

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', TMUX_SERVER, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

function screen(): string {
  return tmux('capture-pane', '-p', '-t', 'tui');
}

async function waitForScreen(what: string, test: (text: string) => boolean): Promise<string> {
  let last = '';
  try {
    await waitFor(
      () => {
        last = screen();
        return test(last);
      },
      { what, timeoutMs: 10_000, intervalMs: 50 },
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; screen was:\n${last}`, { cause: error });
  }
  return last;
}

function sessionAlive(): boolean {
  try {
    tmux('has-session', '-t', 'tui');
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  try {
    tmux('kill-server');
  } catch {
    // already gone
  }
  await group.killAll();
  await Promise.all(closers.splice(0).map((close) => close()));
});
after(() => {
  dirs.cleanup();
});

describe('portunus-standalone stats (TUI in tmux)', () => {
  it('shows Overview, Detail and Errors and answers its keys', async () => {
    const echo = await tcpEcho();
    closers.push(echo.close);
    const dir = dirs.make('standalone-tui-');
    const sa = await startStandalone(
      group,
      dir,
      [
        '[stats]',
        'refresh_ms = 250',
        '[[rule]]',
        'name = "alpha"',
        'listen_port = 0',
        `target = "127.0.0.1:${echo.port}"`,
        '[[rule]]',
        'name = "beta"',
        'listen_port = 0',
        // Nothing listens on port 1: every connection is an upstream connect failure.
        'target = "127.0.0.1:1"',
      ].join('\n'),
    );
    assert.equal(await ask(sa.port('alpha'), 'hello', 5), 'hello');

    tmux(
      'new-session',
      '-d',
      '-s',
      'tui',
      '-x',
      '100',
      '-y',
      '30',
      `${process.execPath} ${STANDALONE_BIN} stats --socket ${sa.socketPath}`,
    );
    const overview = await waitForScreen(
      'the Overview with both rules and alpha’s connection',
      (text) =>
        text.includes('[Overview]') && /alpha\s.*\s1\s+0\s*$/m.test(text) && /beta\s/.test(text),
    );
    assert.match(overview, /NAME\s+PROTO\s+LISTEN\s+IN\/s\s+OUT\/s\s+CONNS\s+TOTAL\s+FLOWS/);
    assert.match(overview, new RegExp(`alpha\\s+tcp\\s+\\[::\\]:${sa.port('alpha')}`));

    // Filter to beta: alpha disappears.
    tmux('send-keys', '-t', 'tui', '/', 'b', 'e', 't', 'Enter');
    await waitForScreen(
      'the filter to apply',
      (text) => text.includes('filter: bet') && !/^alpha\s/m.test(text) && /^beta\s/m.test(text),
    );

    // Detail of the selected (only) rule, beta: its target and totals.
    tmux('send-keys', '-t', 'tui', 'Tab');
    await waitForScreen(
      'the Detail tab of beta',
      (text) =>
        text.includes('[Detail]') &&
        text.includes('rule beta') &&
        text.includes('127.0.0.1:1') &&
        /in\/s\s+[▁-█ ]+/.test(text),
    );

    // A failing connection through beta shows on the Errors tab.
    const failing = await heldConnection(sa.port('beta'));
    await failing.closed;
    tmux('send-keys', '-t', 'tui', 'Tab');
    await waitForScreen(
      'beta’s connect failure on the Errors tab',
      (text) => text.includes('[Errors]') && /beta\s+upstream_connect_failed\s+1/.test(text),
    );

    // Back (←) to Detail, clear the filter, select alpha with j/k.
    tmux('send-keys', '-t', 'tui', 'Left', '/', 'BSpace', 'BSpace', 'BSpace', 'Enter', 'j', 'k');
    await waitForScreen(
      'the Detail of alpha with its totals',
      (text) =>
        text.includes('[Detail]') &&
        text.includes('rule alpha') &&
        text.includes('in 5 B  out 5 B  conns 0 active / 1 total'),
    );

    tmux('send-keys', '-t', 'tui', 'p');
    await waitForScreen('PAUSED in the header', (text) => text.includes('PAUSED'));
    tmux('send-keys', '-t', 'tui', '?');
    await waitForScreen('the help', (text) => text.includes('p          pause / resume'));
    tmux('send-keys', '-t', 'tui', 'q');
    await waitFor(() => !sessionAlive(), { what: 'the TUI to quit on q', timeoutMs: 10_000 });
  });

  it('refuses to start without a terminal (exit 2)', async () => {
    const result = await group.run(STANDALONE_BIN, ['stats', '--socket', '/nonexistent.sock']);
    assert.equal(result.code, 2);
    assert.ok(result.stderr.includes('standalone_tui_unavailable'), result.stderr);
  });
});
