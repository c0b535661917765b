// Proves DNS targets, multi-target failover and PROXY protocol through the real product: a
// spawned server and an enrolled portunus-client pointed at a DNS server the test controls; a
// rule whose primary target is a name (PROXY v2) and whose backup is an IP (PROXY v1). Traffic
// reaches the primary with the client's real address in a v2 header; when the primary dies, new
// connections still succeed through the backup (failed connects are retried on the next target),
// the primary is reported failed in ?per_target, rule-stats --per-target and the rule JSON, and
// the 1 s active probe brings it back when it returns. Then a UDP rule sends PROXY v2 per
// datagram. Every process and socket is closed in `after`.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { FakeDnsServer, type RunningProcess } from '@portunus/test-support';

import {
  FleetHarness,
  freePort,
  udpRoundTrip,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import { V2_SIGNATURE, ask, proxyTarget } from './targets.harness.js';

const h = new FleetHarness();
let server: FleetServer;
let client: RunningProcess;
let dns: FakeDnsServer;
const closers: (() => Promise<void>)[] = [];

interface TargetStats {
  host: string;
  health: number;
  connections_accepted: number;
}
interface StatsBody {
  dns_failures: number;
  target_failovers_total: number;
  per_target: TargetStats[];
}

async function perTarget(ruleId: number): Promise<StatsBody | undefined> {
  const answer = await server.http.request<StatsBody>(
    'GET',
    `/v1/rules/${ruleId}/stats?per_target=true`,
    { auth: server.auth },
  );
  return answer.status === 200 ? answer.body : undefined;
}

before(async () => {
  dns = await FakeDnsServer.start();
  server = await h.fleetServer();
  const bundle = await h.enroll(server, 'edge-t');
  const hosts = path.join(h.dirs.make(), 'hosts');
  fs.writeFileSync(hosts, '# nothing here: names come from the test DNS server\n');
  client = await h.daemon(bundle, ['--dns-server', dns.server, '--hosts-file', hosts]);
});

after(async () => {
  await h.close();
  for (const close of closers.reverse()) await close();
  await dns.close();
});

describe('targets through the real product', () => {
  it('resolves, fails over, reports health, recovers by probe, and writes PROXY headers', async () => {
    let primary = await proxyTarget('primary');
    const primaryPort = primary.port;
    const backup = await proxyTarget('backup');
    closers.push(() => primary.close(), backup.close);
    dns.set('primary.e2e.test', { a: ['127.0.0.1'], ttl: 60 });
    const listenPort = await freePort();
    const pushed = await server.http.request<{ rule_id: number }>('POST', '/v1/rules', {
      auth: server.auth,
      body: {
        client: 'edge-t',
        listen_port: listenPort,
        targets: [
          { host: 'primary.e2e.test', port: primaryPort, priority: 0, proxy_protocol: 'v2' },
          { host: '127.0.0.1', port: backup.port, priority: 1, proxy_protocol: 'v1' },
        ],
        health_check_interval_secs: 1,
      },
    });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    const ruleId = pushed.body.rule_id;

    assert.equal(await ask(listenPort, 'hello', 'primary:hello'.length), 'primary:hello');
    assert.equal(primary.headers.at(0)?.version, 'v2');
    assert.equal(primary.headers.at(0)?.source, '127.0.0.1');
    assert.ok(dns.count('primary.e2e.test') >= 1, 'the name was resolved by the test DNS server');

    // The primary dies: every new connection still gets through, on the backup.
    await primary.close();
    for (let i = 0; i < 4; i++) {
      assert.equal(await ask(listenPort, `x${i}`, 'backup:x0'.length), `backup:x${i}`);
    }
    assert.equal(backup.headers.at(-1)?.version, 'v1');
    assert.equal(backup.headers.at(-1)?.source, '127.0.0.1');
    const failed = await waitUntil(async () => {
      const stats = await perTarget(ruleId);
      return stats?.per_target[0]?.health === 1 ? stats : undefined;
    }, 'the primary reported failed');
    assert.ok(failed.target_failovers_total >= 1);
    assert.equal(failed.dns_failures, 0);
    assert.equal(failed.per_target[1]?.health, 0);

    const cli = await h.run(
      ['rule-stats', String(ruleId), '--per-target', '--http-endpoint', server.http.hostPort],
      { env: { PORTUNUS_OPERATOR_TOKEN: server.auth.bearer } },
    );
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /primary\.e2e\.test:\d+\s+0\s+failed/);
    const rule = await server.http.request<{ targets: { health: { healthy: boolean } | null }[] }>(
      'GET',
      `/v1/rules/${ruleId}`,
      { auth: server.auth },
    );
    assert.deepEqual(
      rule.body.targets.map((t) => t.health?.healthy),
      [false, true],
    );

    // The primary returns on its port: the 1 s probe marks it healthy and traffic follows.
    primary = await proxyTarget('primary', primaryPort);
    await waitUntil(
      async () => (await ask(listenPort, 'back', 'primary:back'.length)) === 'primary:back',
      'traffic back on the primary',
    );
  });

  it('puts a PROXY v2 header in front of every datagram of a UDP rule', async () => {
    const target = dgram.createSocket('udp4');
    const seen: Buffer[] = [];
    target.on('message', (message, remote) => {
      seen.push(message);
      const length = message.subarray(0, 12).equals(V2_SIGNATURE)
        ? 16 + message.readUInt16BE(14)
        : 0;
      target.send(message.subarray(length), remote.port, remote.address);
    });
    await new Promise<void>((resolve) => target.bind(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise((resolve) => {
          target.close(() => {
            resolve();
          });
        }),
    );
    const listenPort = await freePort();
    const pushed = await server.http.request<{ rule_id: number }>('POST', '/v1/rules', {
      auth: server.auth,
      body: {
        client: 'edge-t',
        protocol: 'udp',
        listen_port: listenPort,
        targets: [{ host: '127.0.0.1', port: target.address().port, proxy_protocol: 'v2' }],
      },
    });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    const reply = await udpRoundTrip(listenPort, Buffer.from('ping'));
    assert.equal(reply.toString(), 'ping');
    const first = seen[0] ?? Buffer.alloc(0);
    assert.ok(first.subarray(0, 12).equals(V2_SIGNATURE));
    assert.equal(first[13], 0x12, 'IPv4 over DGRAM');
    assert.equal([...first.subarray(16, 20)].join('.'), '127.0.0.1');
    assert.equal(first.subarray(28).toString(), 'ping');
    assert.ok(client.events.some((line) => line.event === 'rule.activated'));
  });
});
