// Proves the whole product path with real processes: enroll a client with the printed URI, push
// TCP, UDP and range rules and move bytes through the edge, 1,000 UDP sources kept apart, a busy
// local port failing the rule as port_in_use, offline pushes refused, rules replayed after a client
// kill and after a server restart, revocation stopping the client for good, a wrong pin and an
// impostor certificate refused by `enroll` and by the daemon, used and expired codes refused, and
// byte counters within 1 KiB of what was sent.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { CLIENT_BIN, type RunningProcess } from '@portunus/test-support';

import {
  FleetHarness,
  countEvents,
  freePort,
  freePortRun,
  nextEvent,
  tcpEcho,
  tcpRoundTrip,
  udpEcho,
  udpRoundTrip,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import { listenersOf } from './harness.js';

const h = new FleetHarness();
let server: FleetServer;
let bundle: string;
let client: RunningProcess;
let tcpTarget: Awaited<ReturnType<typeof tcpEcho>>;
let udpTarget: Awaited<ReturnType<typeof udpEcho>>;

interface PushAnswer {
  rule_id: number;
  status: string;
}

async function push(body: Record<string, unknown>) {
  return server.http.request<PushAnswer>('POST', '/v1/rules', {
    auth: server.auth,
    body: { client: 'edge-1', target_host: '127.0.0.1', ...body },
  });
}

async function stats(ruleId: number, perPort = false) {
  const answer = await server.http.request<
    Record<string, number> & { per_port?: Record<string, number>[] }
  >('GET', `/v1/rules/${ruleId}/stats${perPort ? '?per_port=true' : ''}`, { auth: server.auth });
  return answer.status === 200 ? answer.body : undefined;
}

before(async () => {
  tcpTarget = await tcpEcho();
  udpTarget = await udpEcho();
  server = await h.fleetServer();
  bundle = await h.enroll(server, 'edge-1');
  client = await h.daemon(bundle);
});

after(async () => {
  await h.close();
  await tcpTarget.close();
  await udpTarget.close();
});

describe('enrollment', () => {
  it('writes a 0600 bundle naming the client, the pin and the endpoint', async () => {
    assert.equal(fs.statSync(bundle).mode & 0o777, 0o600);
    const content = JSON.parse(fs.readFileSync(bundle, 'utf8')) as Record<string, unknown>;
    assert.equal(content['version'], 1);
    assert.equal(content['client_name'], 'edge-1');
    assert.match(String(content['server_cert_sha256']), /^[0-9a-f]{64}$/);
    assert.equal(content['server_endpoint'], `127.0.0.1:${server.controlPort}`);
    const clients = await server.http.request<
      { client_name: string; connected: boolean; remote_addr: string | null }[]
    >('GET', '/v1/clients', { auth: server.auth });
    assert.deepEqual(
      clients.body.map((c) => [c.client_name, c.connected]),
      [['edge-1', true]],
    );
    // The live stream's peer, as the server's socket saw it (it once said "unknown").
    assert.match(String(clients.body[0]?.remote_addr), /^127\.0\.0\.1:\d+$/);
  });

  it('refuses a used code and an expired code, each by name, with exit 1', async () => {
    const uri = await h.enrollmentUri(server, 'once');
    const out = path.join(h.dirs.make(), 'b.json');
    assert.equal((await h.clientCli(['enroll', uri, '--out', out])).code, 0);
    const used = await h.clientCli(['enroll', uri, '--out', `${out}.2`]);
    assert.equal(used.code, 1);
    assert.match(used.stderr, /enrollment_used/);
    const expiring = await h.enrollmentUri(server, 'late', 1);
    const issued = Date.now();
    await waitUntil(() => Date.now() > issued + 1_100, 'the code to expire');
    const expired = await h.clientCli(['enroll', expiring, '--out', `${out}.3`]);
    assert.equal(expired.code, 1);
    assert.match(expired.stderr, /enrollment_expired/);
    assert.equal(fs.existsSync(`${out}.3`), false);
  });

  it('refuses a wrong pin and an impostor certificate (same names, other key)', async () => {
    const uri = await h.enrollmentUri(server, 'pinned');
    const wrongPin = uri.replace(
      /pin=sha256:([0-9a-f])/,
      (_m, c: string) => `pin=sha256:${c === '0' ? '1' : '0'}`,
    );
    const wrong = await h.clientCli([
      'enroll',
      wrongPin,
      '--out',
      path.join(h.dirs.make(), 'x.json'),
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /pin_mismatch/);
    const impostor = await h.fleetServer();
    const redirected = uri.replace(`:${server.controlPort}/`, `:${impostor.controlPort}/`);
    const fooled = await h.clientCli([
      'enroll',
      redirected,
      '--out',
      path.join(h.dirs.make(), 'y.json'),
    ]);
    assert.equal(fooled.code, 1);
    assert.match(fooled.stderr, /pin_mismatch/);
    // Neither refusal sent the code anywhere: it is still good on the real server.
    const kept = await h.clientCli(['enroll', uri, '--out', path.join(h.dirs.make(), 'z.json')]);
    assert.equal(kept.code, 0, kept.stderr);

    // The daemon too: the real bundle pointed at the impostor, and the real server under a wrong
    // pin, never connect; both keep retrying (not terminal).
    const content = JSON.parse(fs.readFileSync(bundle, 'utf8')) as Record<string, unknown>;
    const pin = String(content['server_cert_sha256']);
    const forgeries = [
      { ...content, server_endpoint: `127.0.0.1:${impostor.controlPort}` },
      { ...content, server_cert_sha256: `${pin[0] === '0' ? '1' : '0'}${pin.slice(1)}` },
    ];
    for (const forgery of forgeries) {
      const forged = path.join(h.dirs.make(), 'forged.json');
      fs.writeFileSync(forged, JSON.stringify(forgery), { mode: 0o600 });
      const daemon = h.processes.node(CLIENT_BIN, [
        '--bundle',
        forged,
        '--reconnect-max-delay-secs',
        '1',
      ]);
      await daemon.waitForEvent('control.connect_failed', {
        timeoutMs: 30_000,
        where: () => countEvents(daemon, 'control.connect_failed') >= 2,
      });
      assert.equal(countEvents(daemon, 'control.connected'), 0);
      assert.match(daemon.stderr(), /pin/);
      daemon.kill('SIGKILL');
    }
    assert.equal(countEvents(impostor.process, 'client.connected'), 0);
    impostor.process.kill('SIGTERM');
  });
  it('self-enrolls a daemon from PORTUNUS_ENROLL_URI on first boot, then keeps its bundle', async () => {
    const home = h.dirs.make();
    const env = {
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, 'config'),
      PORTUNUS_CLIENT_BUNDLE: '',
    };
    const uri = await h.enrollmentUri(server, 'first-boot');
    const first = h.processes.node(CLIENT_BIN, [], { env: { ...env, PORTUNUS_ENROLL_URI: uri } });
    await first.waitForEvent('control.connected', { timeoutMs: 30_000 });
    const written = path.join(home, 'config', 'portunus', 'client.bundle.json');
    assert.equal(fs.statSync(written).mode & 0o777, 0o600);
    first.kill('SIGTERM');
    assert.equal(await first.exited(), 0);
    // The URI is single-use, so a second boot connects only because the bundle now wins.
    const second = h.processes.node(CLIENT_BIN, [], { env: { ...env, PORTUNUS_ENROLL_URI: uri } });
    await second.waitForEvent('control.connected', { timeoutMs: 30_000 });
    assert.equal(countEvents(second, 'client.self_bootstrap'), 0);
    second.kill('SIGTERM');
    assert.equal(await second.exited(), 0);
  });
});

describe('forwarding', () => {
  let tcpRule: number;
  let tcpPort: number;

  it('forwards TCP through the edge and counts the bytes within 1 KiB', async () => {
    tcpPort = await freePort();
    const answer = await push({ listen_port: tcpPort, target_port: tcpTarget.port });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    assert.equal(answer.body.status, 'Active');
    tcpRule = answer.body.rule_id;
    const payload = crypto.randomBytes(256 * 1024);
    const echoed = await tcpRoundTrip(tcpPort, payload);
    assert.ok(echoed.equals(payload));
    const counted = await waitUntil(async () => {
      const s = await stats(tcpRule);
      return s && s['bytes_in']! >= payload.length && s['bytes_out']! >= payload.length
        ? s
        : undefined;
    }, 'stats with the bytes sent');
    assert.ok(Math.abs(counted['bytes_in']! - payload.length) <= 1024);
    assert.ok(Math.abs(counted['bytes_out']! - payload.length) <= 1024);
    const metrics = await (
      await fetch(`http://${listenersOf(server.process).metrics}/metrics`)
    ).text();
    assert.ok(
      metrics.includes(
        `portunus_rule_bytes_in_total{client="edge-1",rule="${tcpRule}",owner="_legacy"}`,
      ),
      metrics,
    );
    assert.match(metrics, /^portunus_clients_connected 1$/m);
  });

  it("forwards UDP on the TCP rule's port number and keeps 1,000 sources apart", async () => {
    // TCP and UDP rules may share a port number (freePort found it free for both).
    const udpPort = tcpPort;
    const answer = await push({
      listen_port: udpPort,
      protocol: 'udp',
      target_port: udpTarget.port,
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
    const reply = await udpRoundTrip(udpPort, Buffer.from('hello'));
    assert.equal(reply.toString(), 'hello');
    const viaTcp = await tcpRoundTrip(tcpPort, Buffer.from('tcp too'));
    assert.equal(viaTcp.toString(), 'tcp too');

    const sockets = await Promise.all(
      Array.from({ length: 1000 }, () => {
        const socket = dgram.createSocket('udp4');
        return new Promise<dgram.Socket>((resolve) =>
          socket.bind(0, '127.0.0.1', () => {
            resolve(socket);
          }),
        );
      }),
    );
    try {
      const answers = new Map<number, string[]>();
      sockets.forEach((socket, index) => {
        answers.set(index, []);
        socket.on('message', (message) => answers.get(index)!.push(message.toString()));
      });
      const missing = () => [...answers].filter(([, got]) => got.length === 0).map(([i]) => i);
      // Datagrams may be lost on a busy box: resend to the sources still waiting, a bounded number of times.
      for (let round = 0; round < 10 && missing().length > 0; round++) {
        for (const index of missing())
          sockets[index]!.send(`source-${index}`, udpPort, '127.0.0.1');
        await waitUntil(() => missing().length === 0, 'answers', 1_000).catch(() => undefined);
      }
      assert.deepEqual(missing(), []);
      for (const [index, got] of answers) {
        assert.ok(
          got.every((text) => text === `source-${index}`),
          `source ${index} got ${got.join(',')}`,
        );
      }
    } finally {
      for (const socket of sockets) socket.close();
    }
  });

  it('forwards a port range at the same offset and reports per-port stats', async () => {
    const listen = await freePortRun(3);
    const targets = await freePortRun(3);
    const echoes = await Promise.all(
      [0, 1, 2].map(async (offset) => {
        const echo = net.createServer((socket) => {
          socket.on('error', () => undefined);
          socket.end(`port-${offset}`);
        });
        await new Promise<void>((resolve) => echo.listen(targets + offset, '127.0.0.1', resolve));
        return echo;
      }),
    );
    try {
      const answer = await push({
        listen_port: listen,
        listen_port_end: listen + 2,
        target_port: targets,
        target_port_end: targets + 2,
      });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      for (const offset of [0, 1, 2]) {
        const got = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(listen + offset, '127.0.0.1');
          let text = '';
          socket.on('data', (chunk) => (text += chunk.toString()));
          socket.on('end', () => {
            resolve(text);
          });
          socket.on('error', reject);
        });
        assert.equal(got, `port-${offset}`);
      }
      const perPort = await waitUntil(async () => {
        const s = await stats(answer.body.rule_id, true);
        return s?.per_port?.length === 3 ? s.per_port : undefined;
      }, 'per-port stats');
      assert.deepEqual(
        perPort.map((p) => p['listen_port']),
        [listen, listen + 1, listen + 2],
      );
    } finally {
      for (const echo of echoes) echo.close();
    }
  });

  it('fails a rule whose port is busy on the edge as port_in_use, which then blocks the port', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '0.0.0.0', resolve));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      const answer = await push({ listen_port: port, target_port: tcpTarget.port });
      assert.equal(answer.status, 422);
      assert.equal(answer.errorCode, 'activation_failed');
      const rules = await server.http.request<
        { listen_port: number; state: { kind: string; reason?: string } }[]
      >('GET', '/v1/rules', { auth: server.auth });
      const failed = rules.body.find((rule) => rule.listen_port === port);
      assert.deepEqual(failed?.state, { kind: 'failed', reason: 'port_in_use' });
      const again = await push({ listen_port: port, target_port: tcpTarget.port });
      assert.equal(again.status, 409);
      assert.equal(again.errorCode, 'port_in_use');
    } finally {
      busy.close();
    }
  });

  it('drives the same path with the rule CLI: push-rule, list-rules, rule-stats, remove-rule', async () => {
    const cli = (args: string[]) =>
      h.run([...args, '--http-endpoint', server.http.hostPort], {
        env: { PORTUNUS_OPERATOR_TOKEN: server.auth.bearer },
      });
    const port = await freePort();
    const pushed = await cli(['push-rule', 'edge-1', String(port), `127.0.0.1:${tcpTarget.port}`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const ruleId = pushed.stdout.trim();
    assert.match(ruleId, /^\d+$/);
    const listed = await cli(['list-rules', '--client', 'edge-1']);
    assert.match(
      listed.stdout,
      new RegExp(
        // SNI/PROXY, CAPS and SOURCES are `-` for a plain rule without caps or source lists.
        `^${ruleId}\\s+edge-1\\s+${port}\\s+127\\.0\\.0\\.1:${tcpTarget.port}\\s+-/-\\s+-\\s+-\\s+active$`,
        'm',
      ),
    );
    const payload = crypto.randomBytes(10_000);
    assert.ok((await tcpRoundTrip(port, payload)).equals(payload));
    const line = await waitUntil(async () => {
      const result = await cli(['rule-stats', ruleId]);
      return result.stdout.includes(`bytes_in=${payload.length} `) ? result.stdout : undefined;
    }, 'rule-stats to count the bytes');
    assert.match(line, new RegExp(`^rule_id=${ruleId} client=edge-1 protocol=tcp `));
    const busy = await cli(['push-rule', 'edge-1', String(port), `127.0.0.1:${tcpTarget.port}`]);
    assert.equal(busy.code, 3, 'port_in_use exits 3');
    // A port busy on the edge itself: the operator sees the catalogued line, no gRPC status text.
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '0.0.0.0', resolve));
    try {
      const edgePort = (blocker.address() as net.AddressInfo).port;
      const clash = await cli([
        'push-rule',
        'edge-1',
        String(edgePort),
        `127.0.0.1:${tcpTarget.port}`,
      ]);
      assert.equal(clash.code, 6, clash.stderr);
      const plain = clash.stderr.split('\n').filter((text) => text !== '' && !text.startsWith('{'));
      assert.deepEqual(plain, [
        `error: activation_failed: client edge-1 could not activate rule ${Number(ruleId) + 1}: port_in_use`,
      ]);
      assert.doesNotMatch(clash.stderr, /grpc|\b\d+ [A-Z_]+: |UNAVAILABLE|INTERNAL/i);
    } finally {
      blocker.close();
    }
    assert.equal((await cli(['remove-rule', ruleId])).code, 0);
    const missing = await cli(['rule-stats', ruleId]);
    assert.equal(missing.code, 5);
  });

  it('replays the rules to a killed and restarted client; traffic resumes within 5 s', async () => {
    client.kill('SIGKILL');
    await client.exited();
    client = await h.daemon(bundle);
    const payload = Buffer.from('after restart');
    const echoed = await waitUntil(
      () => tcpRoundTrip(tcpPort, payload, 1_000),
      'traffic after restart',
      5_000,
    );
    assert.ok(echoed.equals(payload));
  });

  it('replays the rules after a server restart on the same control port', async () => {
    const seen = countEvents(client, 'control.connected');
    server = await h.restartServer(server);
    await nextEvent(client, 'control.connected', seen);
    const payload = Buffer.from('after server restart');
    const echoed = await waitUntil(
      () => tcpRoundTrip(tcpPort, payload, 1_000),
      'traffic after server restart',
      5_000,
    );
    assert.ok(echoed.equals(payload));
  });

  it('removes a rule on the edge when it is deleted', async () => {
    const answer = await server.http.request('DELETE', `/v1/rules/${tcpRule}`, {
      auth: server.auth,
    });
    assert.equal(answer.status, 204);
    await waitUntil(
      () =>
        tcpRoundTrip(tcpPort, Buffer.from('x'), 500).then(
          () => false,
          () => true,
        ),
      'the listener to close',
      10_000,
    );
  });

  it('refuses a push to an offline client and stores nothing', async () => {
    client.kill('SIGTERM');
    assert.equal(await client.exited(), 0);
    await waitUntil(async () => {
      const list = await server.http.request<{ connected: boolean }[]>('GET', '/v1/clients', {
        auth: server.auth,
      });
      return list.body.every((c) => !c.connected);
    }, 'the client to show as disconnected');
    const before = await server.http.request<unknown[]>('GET', '/v1/rules', { auth: server.auth });
    const answer = await push({ listen_port: await freePort(), target_port: tcpTarget.port });
    assert.equal(answer.status, 422);
    assert.equal(answer.errorCode, 'client_not_connected');
    const afterList = await server.http.request<unknown[]>('GET', '/v1/rules', {
      auth: server.auth,
    });
    assert.equal(afterList.body.length, before.body.length);
  });

  it('stops a revoked client for good', async () => {
    client = await h.daemon(bundle);
    const clients = await server.http.request<{ client_id: string; client_name: string }[]>(
      'GET',
      '/v1/clients',
      {
        auth: server.auth,
      },
    );
    const edge = clients.body.find((c) => c.client_name === 'edge-1');
    assert.ok(edge);
    const revoked = await server.http.request('POST', `/v1/clients/${edge.client_id}/revoke`, {
      auth: server.auth,
    });
    assert.equal(revoked.status, 204);
    await client.waitForEvent('control.terminal', { timeoutMs: 10_000 });
    const attempts = countEvents(client, 'control.connecting');
    // A later enrollment-free reconnect never happens: the daemon idles until signalled.
    await waitUntil(async () => {
      const list = await server.http.request<{ connected: boolean }[]>('GET', '/v1/clients', {
        auth: server.auth,
      });
      return list.body.every((c) => !c.connected);
    }, 'the revoked client to be offline');
    assert.equal(countEvents(client, 'control.connecting'), attempts);
    client.kill('SIGTERM');
    assert.equal(await client.exited(), 0);
  });
});
