/**
 * The connect stage through a real Forwarder on loopback: multi-target dispatch by priority,
 * passive health (3 failures → failed, traffic moves on; all failed → the top one is still tried
 * first), recovery through the active TCP probe, DNS targets resolved by a real DNS server the
 * test controls (a failed name drops that connection and counts, never fails the rule), and the
 * per-target counters. Waits on conditions with deadlines; every socket is closed in `after`.
 */
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import { FakeDnsServer, waitFor as waitUntil } from '@portunus/test-support';

import { systemDnsBackend } from '../dns/resolver.js';
import { FORWARDER_EVENTS } from '../events.js';
import {
  V4,
  closeUdp,
  closedPort,
  recordingLogger,
  roundTrip,
  tcpServer,
  testResources,
  udpEcho,
  udpSocket,
  waitFor,
} from '../net.harness.js';
import type { ForwarderOptions } from '../rule-runtime.js';
import type { RuleSpec, TargetSpec } from '../rule-spec.js';

// Registered first, so its `after` closes the Forwarders before the DNS server goes away.
const resources = testResources();
let dns: FakeDnsServer;
before(async () => {
  dns = await FakeDnsServer.start();
});
after(async () => {
  await dns.close();
});

/** A TCP target that answers every connection with its name, then echoes. */
async function namedTarget(name: string, port = 0): Promise<{ port: number; server: net.Server }> {
  const server = tcpServer((socket) => {
    socket.write(`${name}:`);
    socket.pipe(socket);
  });
  const bound = await resources.listen(server, port);
  return { port: bound, server };
}

function target(host: string, port: number, priority: number): TargetSpec {
  return { host, port, portEnd: null, priority, proxyProtocol: null };
}

function rule(ruleId: string, targets: TargetSpec[], extra: Partial<RuleSpec> = {}): RuleSpec {
  return {
    ruleId,
    protocol: 'tcp',
    listenPort: 0,
    listenPortEnd: null,
    targets,
    preferIpv6: false,
    healthCheckIntervalSecs: null,
    ownerId: null,
    sniPattern: null,
    rateLimit: null,
    ...extra,
  };
}

function newForwarder(extra: ForwarderOptions = {}) {
  const logger = recordingLogger();
  const dialled: number[] = [];
  const forwarder = resources.forwarder({
    logger,
    listenHost: V4,
    resolver: { backend: systemDnsBackend({ servers: [dns.server], hostsPath: '/nonexistent' }) },
    ...extra,
    tcp: {
      dial: (options) => {
        dialled.push(options.port);
        return net.connect(options);
      },
      ...extra.tcp,
    },
  });
  return { forwarder, logger, dialled };
}

async function ask(port: number): Promise<string> {
  return (await roundTrip(port, Buffer.from('hi'))).toString();
}

/** A connection that the forwarder drops: it closes (or resets) without a byte. */
function dropped(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: V4 });
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      resolve(bytes === 0);
    });
    socket.write('x');
  });
}

describe('multi-target failover', () => {
  it('skips a refusing target, marks it failed after 3 failures, then goes straight on', async () => {
    const dead = await closedPort();
    const b = await namedTarget('b');
    const { forwarder, logger, dialled } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('f1', [target(V4, b.port, 5), target(V4, dead, 1)]),
    );
    const port = ports[0]!;
    for (let i = 0; i < 3; i++) assert.equal(await ask(port), 'b:hi');
    let stats = forwarder.ruleStats('f1')!;
    assert.equal(stats.connect_failures, 0, 'no client saw the failed connects');
    assert.equal(stats.target_failovers_total, 1);
    const [second, first] = stats.targets;
    assert.equal(first?.health, 'failed');
    assert.equal(first.consecutive_failures, 3);
    assert.ok(first.last_failure_at_unix_ms > 0);
    assert.equal(second?.health, 'healthy');
    assert.equal(second.connections_accepted, 3);
    assert.ok(logger.lines.some((l) => l.event === FORWARDER_EVENTS.targetHealthChanged));

    dialled.length = 0;
    assert.equal(await ask(port), 'b:hi');
    assert.deepEqual(
      dialled,
      [b.port],
      'the failed target is not dialled while another is healthy',
    );
    stats = forwarder.ruleStats('f1')!;
    assert.equal(stats.targets[1]?.consecutive_failures, 3);
    await waitFor(() => forwarder.ruleStats('f1')!.targets[0]!.bytes_in === 8, 'per-target bytes');
    assert.equal(forwarder.ruleStats('f1')!.targets[0]!.bytes_out, 16);
  });

  it('still tries the top-priority target first when every target has failed', async () => {
    const top = await closedPort();
    const low = await closedPort();
    const { forwarder, dialled } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('f2', [target(V4, low, 2), target(V4, top, 1)]),
    );
    for (let i = 0; i < 3; i++) assert.equal(await dropped(ports[0]!), true);
    const stats = forwarder.ruleStats('f2')!;
    assert.deepEqual(
      stats.targets.map((t) => t.health),
      ['failed', 'failed'],
    );
    assert.equal(stats.connect_failures, 3);
    assert.equal(stats.conn_errors, 0);
    dialled.length = 0;
    assert.equal(await dropped(ports[0]!), true);
    assert.deepEqual(dialled, [top, low]);
  });

  it('brings a failed target back through the active probe, and traffic follows', async () => {
    const primaryPort = await closedPort();
    const backup = await namedTarget('backup');
    const { forwarder, logger } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('f3', [target(V4, primaryPort, 0), target(V4, backup.port, 1)], {
        healthCheckIntervalSecs: 1,
      }),
    );
    for (let i = 0; i < 3; i++) assert.equal(await ask(ports[0]!), 'backup:hi');
    assert.equal(forwarder.ruleStats('f3')!.targets[0]!.health, 'failed');
    await namedTarget('primary', primaryPort);
    await waitFor(
      () => forwarder.ruleStats('f3')!.targets[0]!.health === 'healthy',
      'recovery',
      10_000,
    );
    assert.ok(logger.lines.some((l) => l.event === FORWARDER_EVENTS.targetProbeOk));
    assert.equal(await ask(ports[0]!), 'primary:hi');
    assert.equal(forwarder.ruleStats('f3')!.target_failovers_total, 2);
  });
});

describe('DNS targets', () => {
  it('resolves a target name through the DNS server and caches it', async () => {
    const t = await namedTarget('named');
    dns.set('app.portunus.test', { a: [V4], ttl: 60 });
    const { forwarder } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('d1', [target('app.portunus.test', t.port, 0)]),
    );
    assert.equal(await ask(ports[0]!), 'named:hi');
    assert.equal(await ask(ports[0]!), 'named:hi');
    assert.equal(dns.count('app.portunus.test'), 1);
    assert.equal(forwarder.ruleStats('d1')!.dns_failures, 0);
  });

  it('drops the connection of a name that does not resolve, counts it, keeps the rule', async () => {
    const t = await namedTarget('fallback');
    dns.set('missing.portunus.test', { rcode: 'nxdomain' });
    const { forwarder, logger } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('d2', [target('missing.portunus.test', t.port, 0)]),
    );
    assert.equal(await dropped(ports[0]!), true);
    const stats = forwarder.ruleStats('d2')!;
    assert.equal(stats.dns_failures, 1);
    assert.equal(stats.connect_failures, 1);
    assert.ok(forwarder.has('d2'));
    const line = logger.lines.find((l) => l.event === FORWARDER_EVENTS.dnsFailed);
    assert.equal(line?.fields['reason'], 'nxdomain');
    // A second target takes over when the first name fails.
    await forwarder.apply(
      rule('d2', [target('missing.portunus.test', t.port, 0), target(V4, t.port, 1)], {
        listenPort: ports[0]!,
      }),
    );
    assert.equal(await ask(ports[0]!), 'fallback:hi');
    assert.equal(forwarder.ruleStats('d2')!.dns_failures, 2, 'cumulative across the replace');
  });
});

describe('UDP targets', () => {
  async function udpClient(): Promise<dgram.Socket> {
    const socket = await udpSocket();
    resources.defer(() => closeUdp(socket));
    return socket;
  }

  it('drops the first datagrams of a flow whose name does not resolve, and counts it', async () => {
    const echo = await udpEcho();
    resources.defer(() => closeUdp(echo));
    dns.set('nowhere.udp.test', { rcode: 'nxdomain' });
    dns.set('somewhere.udp.test', { a: [V4] });
    const { forwarder, logger } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('u1', [target('nowhere.udp.test', echo.address().port, 0)], { protocol: 'udp' }),
    );
    const client = await udpClient();
    client.send('lost', ports[0], V4);
    await waitFor(() => forwarder.ruleStats('u1')!.dns_failures === 1, 'dns failure counted');
    await waitFor(() => forwarder.ruleStats('u1')!.active_flows === 0, 'flow dropped');
    assert.ok(logger.lines.some((l) => l.event === FORWARDER_EVENTS.udpDnsFailed));
    assert.ok(forwarder.has('u1'), 'the rule keeps running');
    // With a second target whose name resolves, the next flow goes there.
    await forwarder.apply(
      rule(
        'u1',
        [
          target('nowhere.udp.test', echo.address().port, 0),
          target('somewhere.udp.test', echo.address().port, 1),
        ],
        { protocol: 'udp', listenPort: ports[0]! },
      ),
    );
    const reply = new Promise<string>((resolve) => {
      client.once('message', (msg: Buffer) => {
        resolve(msg.toString());
      });
    });
    client.send('found', ports[0], V4);
    assert.equal(await reply, 'found');
  });

  it('moves new flows off a target that answers with ICMP unreachable', async () => {
    const echo = await udpEcho();
    resources.defer(() => closeUdp(echo));
    const deadSocket = await udpSocket();
    const dead = deadSocket.address().port;
    await closeUdp(deadSocket);
    const { forwarder } = newForwarder();
    const { ports } = await forwarder.activate(
      rule('u2', [target(V4, dead, 0), target(V4, echo.address().port, 1)], { protocol: 'udp' }),
    );
    const client = await udpClient();
    let answered = false;
    client.on('message', () => (answered = true));
    // Each datagram to the dead target draws an ICMP error that evicts the flow and counts a
    // failure; after three the target is failed and the next flow goes to the echo.
    await waitUntil(
      () => {
        if (!answered) client.send('x', ports[0], V4);
        return answered;
      },
      { what: 'a reply through the second target', intervalMs: 10 },
    );
    const stats = forwarder.ruleStats('u2')!;
    assert.equal(stats.targets[0]?.health, 'failed');
    assert.equal(stats.target_failovers_total, 1);
  });
});
