// portunus-standalone as an operator runs it: the built binary, a portunus.toml in a temp dir,
// real loopback targets. Proves the exit codes (0 / 2 naming every key path / 1), TCP, UDP, DNS,
// multi-target failover with PROXY v2, SIGHUP reload (unchanged rules keep their connections, an
// invalid file is refused), the stats socket (0600, many readers, --once with names and counters)
// and the drained stop on SIGTERM and SIGINT.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';

import { ProcessGroup, STANDALONE_BIN, tempDirs, waitFor } from '@portunus/test-support';

import {
  heldConnection,
  isRefused,
  startStandalone,
  statsReader,
  tcpEcho,
  udpAsk,
  udpEcho,
} from './standalone.harness.js';
import { ask, proxyTarget } from './targets.harness.js';

const dirs = tempDirs();
const group = new ProcessGroup();
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  await group.killAll();
  await Promise.all(closers.splice(0).map((close) => close()));
});
after(() => {
  dirs.cleanup();
});

function writeConfig(text: string): { dir: string; file: string } {
  const dir = dirs.make('standalone-');
  const file = path.join(dir, 'portunus.toml');
  fs.writeFileSync(file, text);
  return { dir, file };
}

describe('portunus-standalone: config and exit codes', () => {
  it('--check prints ok and exits 0 for a valid file, found through $PORTUNUS_STANDALONE_CONFIG', async () => {
    const { file } = writeConfig(
      '[[rule]]\nname = "a"\nlisten_port = 8080\ntarget = "127.0.0.1:80"\n',
    );
    const result = await group.run(STANDALONE_BIN, ['--check'], {
      env: { PORTUNUS_STANDALONE_CONFIG: file },
      cwd: path.dirname(file),
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'ok\n');
  });

  it('exits 2 naming every problem with its key path', async () => {
    const { file } = writeConfig(
      [
        '[global]',
        'log_levle = "info"',
        '[stats]',
        'refresh_ms = 100',
        '[[rule]]',
        'name = "web"',
        'listen_ports = "8000-8009"',
        'target = "10.0.0.1:9000-9004"',
        '[[rule]]',
        'name = "web"',
        'listen_port = 53',
        'protocol = "udp"',
        'targets = [{ host = "bad_host", port = 53 }]',
        '[[rule]]',
        'name = "dns"',
        'listen_port = 5353',
        'protocol = "udp"',
        'targets = [{ host = "10.0.0.2", port = 53, proxy_protocol = "v1" }]',
      ].join('\n'),
    );
    const result = await group.run(STANDALONE_BIN, ['--config', file, '--check']);
    assert.equal(result.code, 2, result.stderr);
    for (const key of [
      'global.log_levle: unknown key',
      'stats.refresh_ms: must be an integer in 250..5000',
      'rule[0]: ',
      'rule[1].name: "web" is already rule[0]',
      'rule[2].targets[0].proxy_protocol: v1 is only valid on tcp rules',
    ]) {
      assert.ok(result.stderr.includes(key), `${key} in\n${result.stderr}`);
    }
    const event = result.events.find((line) => line.event === 'standalone.config_invalid');
    assert.ok(event, 'standalone.config_invalid logged');
    assert.equal((event['problems'] as unknown[]).length, 5);
  });

  it('exits 2 when no config file is found, naming where it looked', async () => {
    const dir = dirs.make('standalone-empty-');
    const result = await group.run(STANDALONE_BIN, [], {
      cwd: dir,
      env: { PORTUNUS_STANDALONE_CONFIG: '' },
    });
    assert.equal(result.code, 2);
    assert.ok(result.stderr.includes(path.join(dir, 'portunus.toml')), result.stderr);
    assert.ok(result.events.some((line) => line.event === 'standalone.config_missing'));
  });

  it('exits 1 when a rule cannot bind (port held by another process)', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '::', resolve));
    closers.push(
      () =>
        new Promise((resolve) => {
          holder.close(() => {
            resolve();
          });
        }),
    );
    const port = (holder.address() as net.AddressInfo).port;
    const { file } = writeConfig(
      `[[rule]]\nname = "taken"\nlisten_port = ${port}\ntarget = "127.0.0.1:9"\n`,
    );
    const child = group.node(STANDALONE_BIN, ['--config', file, '--no-stats']);
    assert.equal(await child.exited(), 1, child.stderr());
    assert.ok(child.stderr().includes('standalone_activation_failed'), child.stderr());
  });
});

describe('portunus-standalone: forwarding', () => {
  it('forwards TCP, UDP, a DNS-named target and fails over to a PROXY v2 target', async () => {
    const tcp = await tcpEcho();
    const udp = await udpEcho();
    const proxied = await proxyTarget('backup');
    closers.push(tcp.close, udp.close, proxied.close);
    const dir = dirs.make('standalone-fwd-');
    const sa = await startStandalone(
      group,
      dir,
      [
        '[[rule]]',
        'name = "tcp-echo"',
        'listen_port = 0',
        `target = "127.0.0.1:${tcp.port}"`,
        '[[rule]]',
        'name = "udp-echo"',
        'protocol = "udp"',
        'listen_port = 0',
        `target = "127.0.0.1:${udp.port}"`,
        '[[rule]]',
        'name = "by-name"',
        'listen_port = 0',
        `target = "localhost:${tcp.port}"`,
        '[[rule]]',
        'name = "failover"',
        'listen_port = 0',
        // Port 1 on loopback refuses (nothing unprivileged listens there): the primary is down.
        `targets = [{ host = "127.0.0.1", port = 1, priority = 0 }, { host = "127.0.0.1", port = ${proxied.port}, priority = 1, proxy_protocol = "v2" }]`,
      ].join('\n'),
    );
    assert.equal(await ask(sa.port('tcp-echo'), 'hello tcp', 9), 'hello tcp');
    assert.equal(await udpAsk(sa.port('udp-echo'), 'hello udp'), 'hello udp');
    assert.equal(await ask(sa.port('by-name'), 'by name', 7), 'by name');
    assert.equal(await ask(sa.port('failover'), 'fo', 'backup:fo'.length), 'backup:fo');
    assert.equal(proxied.headers[0]?.version, 'v2');
    assert.equal(proxied.headers[0].source, '127.0.0.1');
  });
});

describe('portunus-standalone: SIGHUP reload', () => {
  it('keeps unchanged rules and their connections, applies the difference, refuses a bad file', async () => {
    const first = await tcpEcho();
    const second = await tcpEcho();
    closers.push(first.close, second.close);
    const dir = dirs.make('standalone-reload-');
    const keep = `[[rule]]\nname = "keep"\nlisten_port = 0\ntarget = "127.0.0.1:${first.port}"\n`;
    const sa = await startStandalone(
      group,
      dir,
      `${keep}[[rule]]\nname = "drop"\nlisten_port = 0\ntarget = "127.0.0.1:${first.port}"\n`,
    );
    const keepPort = sa.port('keep');
    const dropPort = sa.port('drop');
    const held = await heldConnection(keepPort);
    assert.equal(await held.roundTrip('before'), 'before');

    fs.writeFileSync(
      sa.configPath,
      `${keep}[[rule]]\nname = "new"\nlisten_port = 0\ntarget = "127.0.0.1:${second.port}"\n`,
    );
    sa.process.kill('SIGHUP');
    const reloaded = await sa.process.waitForEvent('standalone.reloaded');
    assert.deepEqual(reloaded['unchanged'], ['keep']);
    assert.deepEqual(reloaded['added'], ['new']);
    assert.deepEqual(reloaded['removed'], ['drop']);
    const rules = reloaded['rules'] as { name: string; ports: number[] }[];
    assert.deepEqual(rules.find((r) => r.name === 'keep')?.ports, [keepPort]);
    const newPort = rules.find((r) => r.name === 'new')?.ports[0] ?? 0;
    assert.equal(await held.roundTrip('after'), 'after', 'the open connection survived');
    assert.equal(await ask(newPort, 'new rule', 8), 'new rule');
    assert.ok(await isRefused(dropPort), 'the removed rule stopped listening');

    fs.writeFileSync(sa.configPath, `${keep}[[rule]]\nname = "broken"\nlisten_port = 70000\n`);
    sa.process.kill('SIGHUP');
    const refused = await sa.process.waitForEvent('standalone.reload_refused');
    assert.ok(JSON.stringify(refused['problems']).includes('rule[1].listen_port'));
    assert.equal(await held.roundTrip('still'), 'still');
    assert.equal(await ask(newPort, 'kept', 4), 'kept', 'the running set stayed');
    held.end();
  });
});

describe('portunus-standalone: SIGHUP reload of UDP tunables', () => {
  it('restarts a UDP rule whose udp_max_flows changed, so the new cap applies', async () => {
    const echo = await udpEcho();
    closers.push(echo.close);
    const dir = dirs.make('standalone-udp-reload-');
    const rule = (flows: number): string =>
      `[[rule]]\nname = "u"\nprotocol = "udp"\nlisten_port = 0\nudp_max_flows = ${flows}\ntarget = "127.0.0.1:${echo.port}"\n`;
    const sa = await startStandalone(group, dir, rule(1));
    const port = sa.port('u');
    assert.equal(await udpAsk(port, 'first'), 'first');
    // A second source address:port is a second flow: over the cap of 1, dropped.
    const second = udpAsk(port, 'second', 1_000).catch(() => 'no answer');
    await sa.process.waitForEvent('rule.udp_flow_dropped_overflow');
    assert.equal(await second, 'no answer');

    fs.writeFileSync(sa.configPath, rule(2).replace('listen_port = 0', `listen_port = ${port}`));
    sa.process.kill('SIGHUP');
    const reloaded = await sa.process.waitForEvent('standalone.reloaded');
    assert.deepEqual(reloaded['replaced'], ['u']);
    assert.equal(await udpAsk(port, 'one'), 'one');
    assert.equal(await udpAsk(port, 'two'), 'two', 'two flows fit under the new cap');
  });
});

describe('portunus-standalone: stats socket and shutdown', () => {
  it('serves Hello then Snapshots to many readers (mode 0600); stats --once names rules and counts', async () => {
    const echo = await tcpEcho();
    closers.push(echo.close);
    const dir = dirs.make('standalone-stats-');
    const sa = await startStandalone(
      group,
      dir,
      `[stats]\nrefresh_ms = 250\n[[rule]]\nname = "counted"\nlisten_port = 0\ntarget = "127.0.0.1:${echo.port}"\n`,
      { env: { PORTUNUS_STANDALONE_STATS_LOG_MS: '200' } },
    );
    assert.equal(fs.statSync(sa.socketPath).mode & 0o777, 0o600);
    // A reader that never reads must not stop the others or the data plane.
    const stuck = net.connect(sa.socketPath);
    stuck.pause();
    const readers = await Promise.all([statsReader(sa.socketPath), statsReader(sa.socketPath)]);
    const payload = 'x'.repeat(4096);
    assert.equal(await ask(sa.port('counted'), payload, payload.length), payload);
    for (const reader of readers) {
      await waitFor(
        () =>
          reader.lines.some(
            (line) =>
              Array.isArray(line['r']) &&
              (line['r'] as { in: number; conns_total: number }[])[0]?.in === payload.length,
          ),
        { what: 'a snapshot counting the bytes', timeoutMs: 10_000 },
      );
      const hello = reader.lines[0]!;
      assert.equal(hello['v'], 1);
      assert.equal(hello['refresh_ms'], 250);
      const [rule] = hello['rules'] as {
        name: string;
        proto: string;
        listen: string;
        splice_capable: boolean;
      }[];
      assert.equal(rule?.name, 'counted');
      assert.equal(rule.proto, 'tcp');
      assert.equal(rule.listen, `[::]:${sa.port('counted')}`);
      // A TCP rule splices unless the run turned the fast path off (or, outside CI, the addon is
      // not built: PORTUNUS_REQUIRE_SPLICE says it must be).
      if (process.env['PORTUNUS_DISABLE_SPLICE'] !== undefined) {
        assert.equal(rule.splice_capable, false);
      } else if (process.env['PORTUNUS_REQUIRE_SPLICE'] !== undefined) {
        assert.equal(rule.splice_capable, true);
      }
      const snapshot = reader.lines.at(-1)!;
      for (const key of ['t_ms', 'uptime_ms', 'seq', 'process', 'r'])
        assert.ok(key in snapshot, key);
      const proc = snapshot['process'] as { fd_open: number; fd_limit: number; rss_bytes: number };
      assert.ok(proc.fd_open > 0 && proc.rss_bytes > 0, JSON.stringify(proc));
      reader.socket.destroy();
    }
    stuck.destroy();

    const once = await group.run(STANDALONE_BIN, ['stats', '--socket', sa.socketPath, '--once']);
    assert.equal(once.code, 0, once.stderr);
    const doc = JSON.parse(once.stdout) as {
      v: number;
      rules: { name: string; stats: { in: number; out: number; conns_total: number } }[];
    };
    assert.equal(doc.v, 1);
    assert.equal(doc.rules[0]?.name, 'counted');
    assert.equal(doc.rules[0].stats.in, payload.length);
    assert.equal(doc.rules[0].stats.out, payload.length);
    assert.equal(doc.rules[0].stats.conns_total, 1);

    const logged = await sa.process.waitForEvent('standalone.stats', {
      where: (line) => line['rule'] === 'counted' && line['in'] === payload.length,
    });
    assert.equal(logged['conns_total'], 1);
  });

  it('stats --once exits 2 when no daemon listens on the socket', async () => {
    const dir = dirs.make('standalone-nosock-');
    const result = await group.run(STANDALONE_BIN, [
      'stats',
      '--socket',
      path.join(dir, 'absent.sock'),
      '--once',
    ]);
    assert.equal(result.code, 2);
    assert.ok(result.stderr.includes('standalone_stats_unavailable'), result.stderr);
  });

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal} drains open connections, then exits 0`, async () => {
      const echo = await tcpEcho();
      closers.push(echo.close);
      const dir = dirs.make('standalone-stop-');
      const sa = await startStandalone(
        group,
        dir,
        `[global]\nshutdown_drain_secs = 20\n[[rule]]\nname = "r"\nlisten_port = 0\ntarget = "127.0.0.1:${echo.port}"\n`,
      );
      const held = await heldConnection(sa.port('r'));
      assert.equal(await held.roundTrip('ping'), 'ping');
      sa.process.kill(signal);
      await sa.process.waitForEvent('shutdown.signal');
      await waitFor(async () => isRefused(sa.port('r')), { what: 'listener closed' });
      assert.equal(await held.roundTrip('still open'), 'still open', 'in-flight connection drains');
      assert.equal(sa.process.child.exitCode, null, 'waits for the open connection');
      held.end();
      assert.equal(await sa.process.exited(), 0, sa.process.stderr());
      assert.ok(!fs.existsSync(sa.socketPath), 'stats socket removed');
    });
  }
});

before(() => {
  assert.ok(fs.existsSync(STANDALONE_BIN), `build first: ${STANDALONE_BIN}`);
});
