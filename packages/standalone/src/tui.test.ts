// Proves the TUI model without a terminal: rates from consecutive snapshots, pause, sort,
// filter editing, tab and selection keys, arrow-key splitting, and the rendered Errors tab.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { Hello, Snapshot, SnapshotRule } from './stats-protocol.js';
import { TuiState, render, sparkline, splitKeys } from './tui.js';

const hello: Hello = {
  v: 1,
  daemon_version: '0.1.0',
  daemon_started_at_ms: 0,
  refresh_ms: 1000,
  rules: ['alpha', 'beta'].map((name, i) => ({
    id: String(i),
    name,
    proto: 'tcp',
    listen: `[::]:${8000 + i}`,
    targets: [{ host: '127.0.0.1', port: 9, priority: 0, proxy_protocol: null }],
    splice_capable: false,
    udp_max_flows: 1024,
  })),
};

function rule(id: string, bytesIn: number, failed = 0): SnapshotRule {
  return {
    id,
    in: bytesIn,
    out: 0,
    conns_active: 0,
    conns_total: 0,
    datagrams_in: 0,
    datagrams_out: 0,
    flows_active: 0,
    target_failovers_total: 0,
    err: {
      port_in_use: 0,
      upstream_connect_failed: failed,
      conn_errors: 0,
      dns_failures: 0,
      addflow_dropped: 0,
    },
  };
}

function snapshot(seq: number, alphaIn: number, betaIn: number, failed = 0): Snapshot {
  return {
    t_ms: seq * 1000,
    uptime_ms: seq * 1000,
    seq,
    process: { fd_open: 10, fd_limit: 1024, rss_bytes: 1 },
    r: [rule('0', alphaIn), rule('1', betaIn, failed)],
  };
}

describe('TuiState', () => {
  it('computes per-second rates and sorts by them', () => {
    const state = new TuiState();
    state.onHello(hello);
    state.onSnapshot(snapshot(1, 0, 0));
    state.onSnapshot(snapshot(2, 1000, 5000));
    assert.deepEqual(
      state.rows().map((r) => [r.rule.name, r.inRate]),
      [
        ['alpha', 1000],
        ['beta', 5000],
      ],
    );
    state.key('s'); // sort by in rate, highest first
    assert.deepEqual(
      state.rows().map((r) => r.rule.name),
      ['beta', 'alpha'],
    );
    state.key('r');
    assert.deepEqual(
      state.rows().map((r) => r.rule.name),
      ['alpha', 'beta'],
    );
  });

  it('ignores snapshots while paused', () => {
    const state = new TuiState();
    state.onHello(hello);
    state.onSnapshot(snapshot(1, 0, 0));
    state.key('p');
    state.onSnapshot(snapshot(2, 99, 0));
    assert.equal(state.latest?.seq, 1);
    state.key('p');
    state.onSnapshot(snapshot(3, 99, 0));
    assert.equal(state.latest.seq, 3);
  });

  it('edits the filter, moves between tabs and rows, quits on q', () => {
    const state = new TuiState();
    state.onHello(hello);
    for (const key of ['/', 'b', 'e', '\x7f', 'e', '\r']) state.key(key);
    assert.equal(state.filter, 'be');
    assert.deepEqual(
      state.rows().map((r) => r.rule.name),
      ['beta'],
    );
    state.key('\t');
    assert.equal(state.tab, 1);
    state.key('\x1b[D');
    state.key('\x1b[D');
    assert.equal(state.tab, 2);
    state.filter = '';
    state.key('j');
    state.key('j');
    assert.equal(state.selected, 1);
    state.key('k');
    assert.equal(state.selected, 0);
    state.key('q');
    assert.equal(state.quit, true);
  });

  it('renders only non-zero counters on the Errors tab', () => {
    const state = new TuiState();
    state.onHello(hello);
    state.onSnapshot(snapshot(1, 0, 0, 3));
    state.tab = 2;
    const text = render(state, 80, 12).join('\n');
    assert.match(text, /beta\s+upstream_connect_failed\s+3/);
    assert.doesNotMatch(text, /alpha/);
    assert.equal(render(state, 80, 12).length, 12);
  });
});

describe('terminal helpers', () => {
  it('keeps arrow sequences whole when several keys arrive at once', () => {
    assert.deepEqual(splitKeys('j\x1b[Ak\x1b'), ['j', '\x1b[A', 'k', '\x1b']);
  });

  it('scales a sparkline to its maximum', () => {
    assert.equal(sparkline([0, 4, 8], 3), '▁▄█');
    assert.equal(sparkline([], 2), '  ');
  });
});
