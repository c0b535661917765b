/**
 * The full-screen stats TUI of `portunus-standalone stats` (reference §12): tabs Overview
 * (per-rule rates, connections, flows), Detail (60 s sparklines, totals, targets with health) and
 * Errors (non-zero failure counters); keys q, ?, Tab/←/→/h/l, ↑/↓/j/k, p pause, s sort, r reverse,
 * / filter. A thin layer over ANSI escapes rather than a library: the non-React terminal
 * libraries on npm are either unmaintained (blessed, last release 2015) or large for six
 * screens of text (terminal-kit), and edge packages must stay free of React (so no ink). The
 * model (`TuiState`, `render`) is pure and unit-tested; `runTui` only wires the socket, the
 * keyboard and the screen. Depends on node:net (via stats-command) and the protocol shapes.
 */
import type net from 'node:net';

import { connectStats } from './stats-reader.js';
import type { Hello, HelloRule, Snapshot, SnapshotRule } from './stats-protocol.js';

export const TABS = ['Overview', 'Detail', 'Errors'] as const;
export const SORTS = ['name', 'in', 'out', 'conns'] as const;
const HISTORY_MS = 60_000;
const SPARK = '▁▂▃▄▅▆▇█';

interface Sample {
  t: number;
  inRate: number;
  outRate: number;
}

export class TuiState {
  hello: Hello | undefined;
  latest: Snapshot | undefined;
  private previous: Snapshot | undefined;
  readonly history = new Map<string, Sample[]>();
  tab = 0;
  selected = 0;
  paused = false;
  sort: (typeof SORTS)[number] = 'name';
  reverse = false;
  filter = '';
  editingFilter = false;
  showHelp = false;
  status = 'connecting…';
  quit = false;

  onHello(hello: Hello): void {
    this.hello = hello;
    this.status = 'connected';
  }

  onSnapshot(snapshot: Snapshot): void {
    if (this.paused) return;
    const before = this.previous;
    if (before) {
      const seconds = Math.max((snapshot.t_ms - before.t_ms) / 1000, 0.001);
      const old = new Map(before.r.map((entry) => [entry.id, entry]));
      for (const entry of snapshot.r) {
        const prior = old.get(entry.id);
        if (!prior) continue;
        const samples = this.history.get(entry.id) ?? [];
        samples.push({
          t: snapshot.t_ms,
          inRate: Math.max(0, entry.in - prior.in) / seconds,
          outRate: Math.max(0, entry.out - prior.out) / seconds,
        });
        while (samples.length > 0 && samples[0]!.t < snapshot.t_ms - HISTORY_MS) samples.shift();
        this.history.set(entry.id, samples);
      }
    }
    this.previous = snapshot;
    this.latest = snapshot;
  }

  /** The rules shown: filtered by name, sorted; each with its latest counters. */
  rows(): { rule: HelloRule; stats: SnapshotRule | undefined; inRate: number; outRate: number }[] {
    const counters = new Map((this.latest?.r ?? []).map((entry) => [entry.id, entry]));
    const needle = this.filter.toLowerCase();
    const rows = (this.hello?.rules ?? [])
      .filter((rule) => rule.name.toLowerCase().includes(needle))
      .map((rule) => {
        const last = this.history.get(rule.id)?.at(-1);
        return {
          rule,
          stats: counters.get(rule.id),
          inRate: last?.inRate ?? 0,
          outRate: last?.outRate ?? 0,
        };
      });
    const key = (row: (typeof rows)[number]): number | string => {
      if (this.sort === 'in') return -row.inRate;
      if (this.sort === 'out') return -row.outRate;
      if (this.sort === 'conns')
        return -((row.stats?.conns_active ?? 0) + (row.stats?.flows_active ?? 0));
      return row.rule.name;
    };
    rows.sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      const order = x < y ? -1 : x > y ? 1 : a.rule.name.localeCompare(b.rule.name);
      return this.reverse ? -order : order;
    });
    return rows;
  }

  /** Applies one key press (as the terminal sends it). */
  key(input: string): void {
    if (this.editingFilter) {
      if (input === '\r' || input === '\n' || input === '\x1b') this.editingFilter = false;
      else if (input === '\x7f' || input === '\b') this.filter = this.filter.slice(0, -1);
      else if (/^[\x20-\x7e]+$/.test(input)) this.filter += input;
      this.selected = 0;
      return;
    }
    const count = this.rows().length;
    switch (input) {
      case 'q':
      case '\x03':
        this.quit = true;
        break;
      case '?':
        this.showHelp = !this.showHelp;
        break;
      case '\t':
      case '\x1b[C':
      case 'l':
        this.tab = (this.tab + 1) % TABS.length;
        break;
      case '\x1b[Z':
      case '\x1b[D':
      case 'h':
        this.tab = (this.tab + TABS.length - 1) % TABS.length;
        break;
      case '\x1b[A':
      case 'k':
        this.selected = Math.max(0, this.selected - 1);
        break;
      case '\x1b[B':
      case 'j':
        this.selected = Math.min(Math.max(count - 1, 0), this.selected + 1);
        break;
      case 'p':
        this.paused = !this.paused;
        break;
      case 's':
        this.sort = SORTS[(SORTS.indexOf(this.sort) + 1) % SORTS.length]!;
        break;
      case 'r':
        this.reverse = !this.reverse;
        break;
      case '/':
        this.editingFilter = true;
        break;
      case '\x1b':
        this.showHelp = false;
        break;
      default:
        break;
    }
  }
}

export function formatBytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = value;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? scaled.toFixed(0) : scaled.toFixed(1)} ${units[unit]}`;
}

export function sparkline(values: readonly number[], width: number): string {
  const tail = values.slice(-width);
  const max = Math.max(...tail, 0);
  const line = tail
    .map((value) =>
      max === 0 ? SPARK[0]! : SPARK[Math.min(7, Math.floor((value / max) * 7.999))]!,
    )
    .join('');
  return line.padStart(width, ' ');
}

function uptime(ms: number): string {
  const secs = Math.floor(ms / 1000);
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(secs / 3600))}:${pad(Math.floor(secs / 60) % 60)}:${pad(secs % 60)}`;
}

const fit = (text: string, width: number): string =>
  text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);

/** The screen as plain lines (no escapes except reverse video on the selected row and tab). */
export function render(state: TuiState, columns: number, lines: number): string[] {
  const out: string[] = [];
  const snap = state.latest;
  const hello = state.hello;
  const tabs = TABS.map((name, i) => (i === state.tab ? `[${name}]` : ` ${name} `)).join(' ');
  out.push(
    fit(
      `portunus-standalone ${hello?.daemon_version ?? '?'}  up ${uptime(snap?.uptime_ms ?? 0)}  ` +
        `rules ${hello?.rules.length ?? 0}  ${state.paused ? 'PAUSED  ' : ''}${state.status}`,
      columns,
    ),
  );
  out.push(fit(tabs, columns));
  out.push('');
  if (state.showHelp) {
    out.push(
      ...[
        'keys',
        '  q          quit',
        '  ?          this help (Esc closes)',
        '  Tab → l    next tab        ← h  previous tab',
        '  ↑ k ↓ j    select a rule',
        '  p          pause / resume the display',
        '  s          sort: name, in rate, out rate, connections;  r  reverse',
        '  /          filter rules by name (Enter or Esc ends)',
      ].map((line) => fit(line, columns)),
    );
  } else {
    const rows = state.rows();
    state.selected = Math.min(state.selected, Math.max(rows.length - 1, 0));
    if (state.tab === 0) out.push(...overview(state, rows, columns));
    else if (state.tab === 1) out.push(...detail(state, rows, columns));
    else out.push(...errors(rows, columns));
  }
  const process = snap?.process;
  const footer =
    (state.editingFilter ? `filter: ${state.filter}▏` : `filter: ${state.filter || '(none)'}`) +
    `  sort: ${state.sort}${state.reverse ? ' ↑' : ''}` +
    (process
      ? `  fds ${process.fd_open}/${process.fd_limit}  rss ${formatBytes(process.rss_bytes)}`
      : '') +
    '  ? help  q quit';
  while (out.length < lines - 1) out.push('');
  out.length = Math.max(lines - 1, 0);
  out.push(fit(footer, columns));
  return out;
}

type Row = ReturnType<TuiState['rows']>[number];

function overview(state: TuiState, rows: Row[], columns: number): string[] {
  const header = `${'NAME'.padEnd(20)} ${'PROTO'.padEnd(5)} ${'LISTEN'.padEnd(18)} ${'IN/s'.padStart(11)} ${'OUT/s'.padStart(11)} ${'CONNS'.padStart(6)} ${'TOTAL'.padStart(7)} ${'FLOWS'.padStart(6)}`;
  const out = [fit(header, columns)];
  if (rows.length === 0) out.push(state.hello ? '  (no rules match)' : '  waiting for the daemon…');
  rows.forEach((row, i) => {
    const s = row.stats;
    const line =
      `${fit(row.rule.name, 20)} ${row.rule.proto.padEnd(5)} ${fit(row.rule.listen, 18)} ` +
      `${formatBytes(row.inRate).padStart(9)}/s ${formatBytes(row.outRate).padStart(9)}/s ` +
      `${String(s?.conns_active ?? 0).padStart(6)} ${String(s?.conns_total ?? 0).padStart(7)} ` +
      String(s?.flows_active ?? 0).padStart(6);
    out.push(i === state.selected ? `\x1b[7m${fit(line, columns)}\x1b[0m` : fit(line, columns));
  });
  return out;
}

function detail(state: TuiState, rows: Row[], columns: number): string[] {
  const row = rows[state.selected];
  if (!row) return ['  no rule selected'];
  const s = row.stats;
  const samples = state.history.get(row.rule.id) ?? [];
  const width = Math.max(10, Math.min(60, columns - 14));
  const out = [
    fit(
      `rule ${row.rule.name}  (${row.rule.proto} ${row.rule.listen}, id ${row.rule.id})`,
      columns,
    ),
    '',
    fit(
      `in/s   ${sparkline(
        samples.map((x) => x.inRate),
        width,
      )} ${formatBytes(row.inRate)}/s`,
      columns,
    ),
    fit(
      `out/s  ${sparkline(
        samples.map((x) => x.outRate),
        width,
      )} ${formatBytes(row.outRate)}/s`,
      columns,
    ),
    fit(
      `       last ${Math.round((samples.length * (state.hello?.refresh_ms ?? 1000)) / 1000)} s`,
      columns,
    ),
    '',
    fit(
      `totals  in ${formatBytes(s?.in ?? 0)}  out ${formatBytes(s?.out ?? 0)}  conns ${s?.conns_active ?? 0} active / ${s?.conns_total ?? 0} total`,
      columns,
    ),
    fit(
      `        datagrams ${s?.datagrams_in ?? 0} in / ${s?.datagrams_out ?? 0} out  flows ${s?.flows_active ?? 0} of ${row.rule.udp_max_flows}  failovers ${s?.target_failovers_total ?? 0}`,
      columns,
    ),
    '',
    fit('targets', columns),
  ];
  const health = new Map((s?.targets ?? []).map((t) => [`${t.host}:${t.port}`, t]));
  for (const target of row.rule.targets) {
    const live = health.get(`${target.host}:${target.port}`);
    const state = live
      ? `${live.health}${live.consecutive_failures > 0 ? ` (${live.consecutive_failures} failures)` : ''}`
      : 'single target (no failover)';
    out.push(
      fit(
        `  ${`${target.host}:${target.port}`.padEnd(28)} prio ${String(target.priority).padEnd(4)} ` +
          `proxy ${(target.proxy_protocol ?? '-').padEnd(3)} ${state}`,
        columns,
      ),
    );
  }
  return out;
}

function errors(rows: Row[], columns: number): string[] {
  const out = [fit(`${'RULE'.padEnd(20)} ${'COUNTER'.padEnd(26)} VALUE`, columns)];
  for (const row of rows) {
    for (const [name, value] of Object.entries(row.stats?.err ?? {})) {
      if (value > 0)
        out.push(fit(`${fit(row.rule.name, 20)} ${name.padEnd(26)} ${value}`, columns));
    }
  }
  if (out.length === 1) out.push('  no failures counted');
  return out;
}

const ESC = '\u001b';

/** Splits one read into keys, keeping `ESC [ X` arrow sequences whole. */
export function splitKeys(chunk: string): string[] {
  const keys: string[] = [];
  for (let i = 0; i < chunk.length; i += 1) {
    if (chunk[i] === ESC && chunk[i + 1] === '[' && i + 2 < chunk.length) {
      keys.push(chunk.slice(i, i + 3));
      i += 2;
    } else {
      keys.push(chunk[i]!);
    }
  }
  return keys;
}

export interface TuiOptions {
  socketPath: string;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
}

/** Runs until `q`; the screen is restored on every way out. */
export async function runTui(options: TuiOptions): Promise<number> {
  const { stdin, stdout } = options;
  const state = new TuiState();
  const draw = (): void => {
    const screen = render(state, stdout.columns || 80, stdout.rows || 24);
    stdout.write(`\x1b[H${screen.map((line) => `${line}\x1b[K`).join('\r\n')}\x1b[J`);
  };
  let finish: (() => void) | undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const socket: net.Socket = await connectStats(options.socketPath, {
    onHello: (hello) => {
      state.onHello(hello);
      draw();
    },
    onSnapshot: (snapshot) => {
      state.onSnapshot(snapshot);
      draw();
    },
    onClose: (reason) => {
      state.status = `disconnected: ${reason}`;
      draw();
    },
  });
  stdout.write('\x1b[?1049h\x1b[?25l');
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  const onKey = (chunk: string): void => {
    // Several keys may arrive in one read; escape sequences stay whole.
    for (const key of splitKeys(chunk)) state.key(key);
    if (state.quit) finish?.();
    else draw();
  };
  const onResize = (): void => {
    draw();
  };
  stdin.on('data', onKey);
  stdout.on('resize', onResize);
  stdin.resume();
  draw();
  try {
    await finished;
  } finally {
    stdin.off('data', onKey);
    stdout.off('resize', onResize);
    stdin.setRawMode(false);
    stdin.pause();
    stdout.write('\x1b[?25h\x1b[?1049l');
    socket.destroy();
  }
  return 0;
}
