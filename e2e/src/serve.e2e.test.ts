// Proves `portunus-server serve` end to end with the real binary: the boot sequence and its
// events, one process per data dir (exit 75, also right after a SIGKILL), the filesystem and
// schema refusals (exit 78), config validation (exit 2), data dir resolution and clean shutdown.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import Database from 'better-sqlite3';

import { parseListenAddress } from '@portunus/server';
import { loadMigrations } from '@portunus/store';
import { REPO_ROOT } from '@portunus/test-support';

import { EPHEMERAL_LISTENER_ENV, Harness, eventNames, fileMode } from './harness.js';

const harness = new Harness();

after(() => harness.close());

describe('serve', () => {
  it('boots in order, creates a private data dir and stops cleanly on SIGTERM and SIGINT', async () => {
    const dataDir = harness.newDataDir();
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      const server = await harness.serve(dataDir);
      const listening = await server.waitForEvent('server.listening');
      assert.equal(listening['data_dir'], dataDir);
      assert.equal(listening['schema_version'], loadMigrations().length);
      server.kill(signal);
      assert.equal(await server.exited(), 0);
      const names = eventNames({ events: server.events });
      const order = [
        'startup.filesystem_checked',
        'store.locked',
        'store.opened',
        'store.ready',
        'server.listening',
        'shutdown.signal',
        'store.closed',
        'server.stopped',
      ];
      const positions = order.map((event) => names.indexOf(event));
      assert.ok(
        positions.every((position) => position >= 0),
        `missing events in ${names.join(',')}`,
      );
      assert.deepEqual(
        [...positions].sort((a, b) => a - b),
        positions,
        names.join(','),
      );
    }
    assert.equal(fileMode(dataDir), 0o700);
    assert.equal(fileMode(path.join(dataDir, 'state.db')), 0o600);
    assert.equal(fileMode(path.join(dataDir, 'state.db.lock')), 0o600);
    // closed cleanly: the WAL was checkpointed away
    assert.equal(fs.existsSync(path.join(dataDir, 'state.db-wal')), false);
  });

  it('drains for shutdown_drain_timeout_secs on SIGTERM, then cuts a request still in flight', async () => {
    const dataDir = harness.newDataDir();
    fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, 'server.toml'), 'shutdown_drain_timeout_secs = 1\n');
    const server = await harness.serve(dataDir);
    const listening = await server.waitForEvent('server.listening');
    const operator = parseListenAddress(
      String((listening['listeners'] as Record<string, string>)['operator_http']),
    );
    assert.ok(operator);
    // A request whose body never finishes: it stays in flight until the operator listener's own
    // 30 s request timeout, far past the 1 s drain. The server answers it early (503, no
    // superadmin yet) while the body is still owed; that answer says the request has arrived.
    const socket = net.connect(operator.port, operator.host);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) =>
      socket.once('connect', () => {
        resolve();
      }),
    );
    const answered = new Promise<string>((resolve) =>
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk.toString('latin1'));
      }),
    );
    socket.write(
      'POST /v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"user',
    );
    assert.match(await answered, /^HTTP\/1\.1 \d{3} /);
    const closedByServer = new Promise<void>((resolve) =>
      socket.once('close', () => {
        resolve();
      }),
    );
    server.kill('SIGTERM');
    const cut = await server.waitForEvent('server.drain_timeout');
    assert.equal(cut['listener'], 'operator_http');
    assert.equal(cut['timeout_ms'], 1000);
    await closedByServer;
    assert.equal(await server.exited(), 0);
    assert.ok(eventNames({ events: server.events }).includes('server.stopped'));
  });

  it('refuses a second serve on the same data dir with store_in_use (75), and reopens at once after SIGKILL', async () => {
    const dataDir = harness.newDataDir();
    const first = await harness.serve(dataDir);
    const second = await harness.cli(['--data-dir', dataDir, 'serve']);
    assert.equal(second.code, 75);
    assert.ok(eventNames(second).includes('startup.store_in_use'));
    assert.match(second.stderr, /error: store_in_use: .*state\.db\.lock/);
    first.kill('SIGKILL');
    await first.exited();
    const third = await harness.serve(dataDir);
    third.kill('SIGTERM');
    assert.equal(await third.exited(), 0);
  });

  it('refuses offline commands while serve holds the data dir', async () => {
    const dataDir = harness.newDataDir();
    const server = await harness.serve(dataDir);
    const backupFile = path.join(harness.dirs.make(), 'b.db');
    assert.equal(
      (await harness.cli(['--data-dir', dataDir, 'backup', '--out', backupFile])).code,
      0,
    );
    const other = harness.newDataDir();
    for (const args of [
      ['reset', '--confirm'],
      ['audit', 'prune', '--before', '2026-01-01T00:00:00Z'],
      ['restore', '--in', backupFile, '--force'],
    ]) {
      const result = await harness.cli(['--data-dir', dataDir, ...args]);
      assert.equal(result.code, 75, `${args.join(' ')}: ${result.stderr}`);
      assert.ok(eventNames(result).includes('startup.store_in_use'));
    }
    assert.ok(fs.existsSync(path.join(dataDir, 'state.db')));
    assert.equal(fs.existsSync(other), false);
    server.kill('SIGTERM');
    assert.equal(await server.exited(), 0);
  });

  it(
    'refuses a tmpfs data dir with unsupported_filesystem (78)',
    { skip: !fs.existsSync('/dev/shm') },
    async () => {
      const dataDir = fs.mkdtempSync('/dev/shm/portunus-e2e-');
      try {
        const result = await harness.cli(['--data-dir', dataDir, 'serve']);
        assert.equal(result.code, 78);
        const event = result.events.find(
          (line) => line['event'] === 'startup.unsupported_filesystem',
        );
        assert.equal(event?.['fs'], 'tmpfs');
        assert.equal(event['path'], dataDir);
        assert.match(
          result.stderr,
          /error: unsupported_filesystem: .*tmpfs.*local writable filesystem/,
        );
        assert.equal(fs.existsSync(path.join(dataDir, 'state.db')), false);
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );

  it('refuses a schema newer than the binary with schema_version_too_new (78) and changes nothing', async () => {
    const dataDir = harness.newDataDir();
    const server = await harness.serve(dataDir);
    server.kill('SIGTERM');
    await server.exited();
    const dbFile = path.join(dataDir, 'state.db');
    const db = new Database(dbFile);
    db.prepare("INSERT INTO schema_migrations VALUES (999, 'future', ?, 0)").run('f'.repeat(64));
    db.close();
    const before = fs.readFileSync(dbFile);
    const result = await harness.cli(['--data-dir', dataDir, 'serve']);
    assert.equal(result.code, 78);
    const event = result.events.find((line) => line['event'] === 'startup.schema_version_too_new');
    assert.equal(event?.['on_disk'], 999);
    assert.equal(event['binary_supports'], loadMigrations().length);
    assert.deepEqual(fs.readFileSync(dbFile), before);
  });

  it('refuses an edited migration history with exit 70', async () => {
    const dataDir = harness.newDataDir();
    const server = await harness.serve(dataDir);
    server.kill('SIGTERM');
    await server.exited();
    const db = new Database(path.join(dataDir, 'state.db'));
    db.prepare('UPDATE schema_migrations SET checksum = ? WHERE version = 1').run('0'.repeat(64));
    db.close();
    const result = await harness.cli(['--data-dir', dataDir, 'serve']);
    assert.equal(result.code, 70);
    assert.ok(eventNames(result).includes('store.migration_checksum_mismatch'));
  });

  it('refuses a state.db that is not SQLite with exit 7 and leaves it alone', async () => {
    const dataDir = harness.newDataDir();
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'state.db'), 'my notes, not a database\n');
    const result = await harness.cli(['--data-dir', dataDir, 'serve']);
    assert.equal(result.code, 7);
    assert.equal(
      fs.readFileSync(path.join(dataDir, 'state.db'), 'utf8'),
      'my notes, not a database\n',
    );
  });

  it('rejects unknown server.toml keys by name with exit 2 before opening the store', async () => {
    const dataDir = harness.newDataDir();
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(
      path.join(dataDir, 'server.toml'),
      'operator_http_listen = "127.0.0.1:0"\nbogus_key = 1\n',
    );
    const result = await harness.cli(['--data-dir', dataDir, 'serve']);
    assert.equal(result.code, 2);
    assert.ok(eventNames(result).includes('config.invalid'));
    assert.match(result.stderr, /error: config_invalid: .*unknown key "bogus_key"/);
    assert.equal(fs.existsSync(path.join(dataDir, 'state.db')), false);
  });

  it('resolves the data dir from STATE_DIRECTORY, XDG_STATE_HOME and HOME in that order', async () => {
    const base = harness.dirs.make();
    const cases: [Record<string, string | undefined>, string][] = [
      [
        {
          STATE_DIRECTORY: `${base}/sd:${base}/ignored`,
          XDG_STATE_HOME: `${base}/xdg`,
          HOME: `${base}/home`,
        },
        `${base}/sd`,
      ],
      [
        { STATE_DIRECTORY: undefined, XDG_STATE_HOME: `${base}/xdg`, HOME: `${base}/home` },
        `${base}/xdg/portunus`,
      ],
      [
        { STATE_DIRECTORY: undefined, XDG_STATE_HOME: '', HOME: `${base}/home` },
        `${base}/home/.local/state/portunus`,
      ],
    ];
    for (const [env, expected] of cases) {
      const server = harness.processes.node(
        (await import('@portunus/test-support')).SERVER_BIN,
        ['serve'],
        { env: { ...env, ...EPHEMERAL_LISTENER_ENV } },
      );
      const listening = await server.waitForEvent('server.listening');
      assert.equal(listening['data_dir'], expected);
      server.kill('SIGTERM');
      assert.equal(await server.exited(), 0);
      assert.ok(fs.existsSync(path.join(expected, 'state.db')));
    }
  });

  it('answers --help through npx from the repo root and exits 2 on a usage error', async () => {
    const help = harness.processes.spawn('npx', ['--no-install', 'portunus-server', '--help'], {
      cwd: REPO_ROOT,
    });
    assert.equal(await help.exited(), 0);
    for (const command of ['serve', 'backup', 'restore', 'reset', 'audit']) {
      assert.match(help.stdout(), new RegExp(`\\b${command}\\b`));
    }
    const usage = await harness.cli(['backup']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /error: usage_error: required option '--out <path>' not specified/);
    const unknown = await harness.cli(['frobnicate']);
    assert.equal(unknown.code, 2);
  });
});
