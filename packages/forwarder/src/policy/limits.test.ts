// Proves caps and source lists on real loopback sockets: connection-rate and concurrency
// refusals arrive as ECONNRESET before any upstream dial (the target counts its accepts), an
// owner envelope shared by two rules binds first with its own reasons, a bandwidth cap parks the
// reader and never closes (a reader that stops reading, a transfer that completes byte-exact),
// UDP over budget and over flow rate is dropped and counted, source allow/deny lists hold for
// IPv4, IPv6 and the v4-mapped peers of a dual-stack listener, and live changes of caps and
// sources reach a running rule without dropping its open connections. Admission tests run on a
// frozen policy clock, so no refill can make them flaky; bandwidth tests use the real one and
// assert bytes and parked time, never durations.
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';

import { simpleRule, type RuleSpec } from '../index.js';
import {
  FakeClock,
  V4,
  closeUdp,
  once,
  recordingLogger,
  roundTrip,
  tcpServer,
  testResources,
  udpSocket,
  waitFor,
  withDeadline,
} from '../net.harness.js';

const resources = testResources();

function track(socket: net.Socket): void {
  resources.defer(() => Promise.resolve(socket.destroy()));
}

function newForwarder(options: { frozen?: boolean; dualStack?: boolean } = {}) {
  const logger = recordingLogger();
  const forwarder = resources.forwarder({
    logger,
    listenHost: options.dualStack ? '::' : V4,
    ...(options.frozen ? { policyClock: new FakeClock() } : {}),
  });
  return { forwarder, logger };
}

/** An echo target that counts the connections it accepted. */
async function countingEcho(): Promise<{ port: number; accepts: () => number }> {
  let accepts = 0;
  const server = tcpServer((socket) => {
    accepts++;
    socket.pipe(socket);
  });
  const port = await resources.listen(server);
  return { port, accepts: () => accepts };
}

function tcpRule(ruleId: string, targetPort: number, fields: Partial<RuleSpec> = {}): RuleSpec {
  return {
    ...simpleRule({ ruleId, protocol: 'tcp', listenPort: 0, targetHost: V4, targetPort }),
    ...fields,
  };
}

/** An open connection whose round trip through the forwarder has been proved. */
async function openEchoed(
  port: number,
  options: { host?: string; localAddress?: string } = {},
): Promise<net.Socket> {
  const socket = net.connect({ port, host: options.host ?? V4, ...options });
  track(socket);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const echoed = once<Buffer>(socket, 'data');
  socket.write('ping');
  assert.equal((await echoed).toString(), 'ping');
  return socket;
}

/** Resolves with how a fresh connection ended: 'reset' for ECONNRESET, else 'open'. */
async function outcome(
  port: number,
  options: { host?: string; localAddress?: string } = {},
): Promise<'reset' | 'open'> {
  const socket = net.connect({ port, host: options.host ?? V4, ...options });
  track(socket);
  const ended = new Promise<'reset' | 'open'>((resolve, reject) => {
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET') resolve('reset');
      else reject(error);
    });
    socket.on('data', () => {
      socket.destroy();
      resolve('open');
    });
    socket.on('connect', () => {
      socket.write('x');
    });
  });
  return withDeadline(ended, 'a reset or an echo');
}

describe('connection caps (TCP)', () => {
  it('refuses over the connection rate with an RST before any upstream dial', async () => {
    const target = await countingEcho();
    const { forwarder, logger } = newForwarder({ frozen: true });
    const { ports } = await forwarder.activate(
      tcpRule('rate', target.port, {
        rateLimit: { newConnectionsPerSec: 1, newConnectionsBurst: 2 },
      }),
    );
    assert.equal(await outcome(ports[0]!), 'open');
    assert.equal(await outcome(ports[0]!), 'open');
    assert.equal(await outcome(ports[0]!), 'reset');
    assert.equal(await outcome(ports[0]!), 'reset');
    assert.equal(target.accepts(), 2, 'refused connections never reached the target');
    const stats = forwarder.ruleStats('rate')!;
    assert.equal(stats.rate_limit!.rejects.conn_rate, 2);
    const events = logger.lines.filter((l) => l.event === 'rule.rate_limit_reject');
    assert.equal(events.length, 1, 'one event a second, the rest held back');
    assert.equal(events[0]!.level, 'debug');
    assert.equal(events[0]!.fields.reason, 'conn_rate');
  });

  it('refuses over concurrency, admits again after a close, and lowering it kills nothing', async () => {
    const target = await countingEcho();
    const { forwarder } = newForwarder({ frozen: true });
    const rule = tcpRule('conc', target.port, { rateLimit: { concurrentConnections: 2 } });
    const { ports } = await forwarder.activate(rule);
    const port = ports[0]!;
    const first = await openEchoed(port);
    const second = await openEchoed(port);
    assert.equal(await outcome(port), 'reset');
    assert.equal(target.accepts(), 2);
    // Lowered under two live connections: both keep working, nothing new gets in.
    await forwarder.apply({ ...rule, rateLimit: { concurrentConnections: 1 } });
    assert.equal(await outcome(port), 'reset');
    for (const socket of [first, second]) {
      const echoed = once<Buffer>(socket, 'data');
      socket.write('still');
      assert.equal((await echoed).toString(), 'still');
    }
    first.destroy();
    await waitFor(
      () => forwarder.ruleStats('conc')!.rate_limit!.active_connections === 1,
      'one left',
    );
    assert.equal(await outcome(port), 'reset', 'still at the lowered cap');
    second.destroy();
    await waitFor(() => forwarder.ruleStats('conc')!.active_connections === 0, 'all closed');
    assert.equal(await outcome(port), 'open');
    assert.equal(forwarder.ruleStats('conc')!.rate_limit!.rejects.conn_concurrent, 3);
  });

  it('an owner envelope shared by two rules binds first, with owner reasons', async () => {
    const target = await countingEcho();
    const { forwarder } = newForwarder({ frozen: true });
    forwarder.setOwnerRateLimit('u1', { concurrentConnections: 1 });
    const a = await forwarder.activate(
      tcpRule('a', target.port, { ownerId: 'u1', rateLimit: { concurrentConnections: 5 } }),
    );
    const b = await forwarder.activate(tcpRule('b', target.port, { ownerId: 'u1' }));
    const other = await forwarder.activate(tcpRule('c', target.port, { ownerId: 'u2' }));
    const held = await openEchoed(a.ports[0]!);
    assert.equal(await outcome(b.ports[0]!), 'reset');
    assert.equal(await outcome(a.ports[0]!), 'reset');
    assert.equal(await outcome(other.ports[0]!), 'open', 'another owner is not bound');
    assert.equal(target.accepts(), 2);
    assert.equal(forwarder.ruleStats('b')!.rate_limit!.rejects.owner_concurrent, 1);
    assert.equal(forwarder.ruleStats('a')!.rate_limit!.rejects.owner_concurrent, 1);
    assert.equal(forwarder.ruleStats('a')!.rate_limit!.rejects.conn_concurrent, 0);
    assert.equal(forwarder.ruleStats('c')!.rate_limit, null, 'uncapped: no rate-limit block');
    const [owner] = forwarder.ownerStats();
    assert.equal(owner!.owner_id, 'u1');
    assert.equal(owner!.stats.rejects.owner_concurrent, 2);
    assert.equal(owner!.stats.active_connections, 1);
    // A live owner SET with a higher cap lets the second rule in at once.
    forwarder.setOwnerRateLimit('u1', { concurrentConnections: 2 });
    assert.equal(await outcome(b.ports[0]!), 'open');
    held.destroy();
    // REMOVE drops the envelope; rules and counts stay.
    assert.equal(forwarder.removeOwnerRateLimit('u1'), true);
    assert.deepEqual(forwarder.ownerStats(), []);
    await forwarder.remove('a');
    await forwarder.remove('b');
    assert.deepEqual(forwarder.ownerIds().sort(), ['u2'], 'u1 collected with its last rule');
  });
});

/** A target that sends `size` bytes to every connection, then ends it. */
async function sender(payload: Buffer): Promise<number> {
  const server = tcpServer((socket) => {
    socket.end(payload);
  });
  const port = await resources.listen(server);
  return port;
}

/** A target that counts what it receives and answers with the count when the client ends. */
async function sink(): Promise<number> {
  const server = tcpServer((socket) => {
    let bytes = 0;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
    });
    socket.on('end', () => {
      socket.end(String(bytes));
    });
  });
  const port = await resources.listen(server);
  return port;
}

function pattern(size: number): Buffer {
  const buffer = Buffer.alloc(size);
  for (let i = 0; i < size; i++) buffer[i] = (i * 7 + 3) & 0xff;
  return buffer;
}

const PREFIX = Buffer.alloc(1024, 9);

describe('bandwidth caps (TCP)', () => {
  it('parks a capped transfer and completes it byte-exact, counting throttle time', async () => {
    const target = await sink();
    const { forwarder } = newForwarder();
    const { ports } = await forwarder.activate(
      tcpRule('in', target, {
        rateLimit: { bandwidthInBps: 1024 * 1024, bandwidthInBurst: 64 * 1024 },
      }),
    );
    const payload = pattern(512 * 1024);
    const reply = await roundTrip(ports[0]!, payload);
    assert.equal(reply.toString(), String(payload.length));
    await waitFor(() => forwarder.ruleStats('in')!.active_connections === 0, 'closed');
    const stats = forwarder.ruleStats('in')!;
    assert.equal(stats.bytes_in, payload.length);
    assert.ok(stats.rate_limit!.throttle_micros_in > 0, 'the reader was parked');
    assert.equal(stats.rate_limit!.throttle_micros_out, 0);
    assert.equal(stats.conn_errors, 0);
  });

  it('never closes a capped connection whose reader stops reading', async () => {
    const payload = pattern(1024 * 1024);
    const target = await sender(payload);
    const { forwarder } = newForwarder();
    const { ports } = await forwarder.activate(
      tcpRule('out', target, {
        rateLimit: { bandwidthOutBps: 2 * 1024 * 1024, bandwidthOutBurst: 32 * 1024 },
      }),
    );
    const socket = net.connect({ port: ports[0]!, host: V4 });
    track(socket);
    socket.pause();
    await once(socket, 'connect');
    // Parked for bandwidth, then held by back-pressure from a reader that reads nothing.
    await waitFor(
      () => forwarder.ruleStats('out')!.rate_limit!.throttle_micros_out > 0,
      'the upstream reader parked',
    );
    await waitFor(
      () => forwarder.ruleStats('out')!.bytes_out >= 64 * 1024,
      'bytes reached the client socket',
    );
    assert.equal(forwarder.ruleStats('out')!.active_connections, 1, 'still open');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const ended = once(socket, 'end', 10_000);
    socket.resume();
    await ended;
    assert.ok(Buffer.concat(chunks).equals(payload));
  });

  it('moves open connections between uncapped and capped live, both ways', async () => {
    const target = await sink();
    const { forwarder } = newForwarder();
    const rule = tcpRule('live', target);
    const { ports } = await forwarder.activate(rule);
    const socket = net.connect({ port: ports[0]!, host: V4, allowHalfOpen: true });
    track(socket);
    await once(socket, 'connect');
    // Bytes through first: the copy runs on the plain listeners before the cap arrives.
    socket.write(PREFIX);
    await waitFor(() => forwarder.ruleStats('live')!.bytes_in === PREFIX.length, 'copy running');
    // Uncapped -> capped: the open connection is metered from now on.
    await forwarder.apply({
      ...rule,
      rateLimit: { bandwidthInBps: 16 * 1024, bandwidthInBurst: 16 * 1024 },
    });
    const payload = pattern(256 * 1024);
    socket.write(payload);
    await waitFor(
      () => forwarder.ruleStats('live')!.rate_limit!.throttle_micros_in > 0,
      'the open connection parked under the new cap',
    );
    assert.ok(
      forwarder.ruleStats('live')!.bytes_in < PREFIX.length + payload.length,
      'held at the cap',
    );
    // Capped -> uncapped: the parked reader goes on at once and the transfer completes (at
    // 16 KiB/s the rest would take over ten seconds; the deadline below is five).
    await forwarder.apply(rule);
    const reply = once<Buffer>(socket, 'data', 5_000);
    socket.end();
    assert.equal((await reply).toString(), String(PREFIX.length + payload.length));
    assert.equal(forwarder.ruleStats('live')!.conn_errors, 0);
  });

  it('an owner bandwidth SET reaches that owner`s open connections', async () => {
    const target = await sink();
    const { forwarder } = newForwarder();
    const { ports } = await forwarder.activate(tcpRule('owned', target, { ownerId: 'u9' }));
    const socket = net.connect({ port: ports[0]!, host: V4, allowHalfOpen: true });
    track(socket);
    await once(socket, 'connect');
    // Bytes through first: the copy runs on the plain listeners before the cap arrives.
    socket.write(PREFIX);
    await waitFor(() => forwarder.ruleStats('owned')!.bytes_in === PREFIX.length, 'copy running');
    forwarder.setOwnerRateLimit('u9', { bandwidthInBps: 64 * 1024, bandwidthInBurst: 4096 });
    const size = 512 * 1024;
    socket.write(pattern(size));
    await waitFor(
      () => (forwarder.ownerStats()[0]?.stats.throttle_micros_in ?? 0) > 0,
      'parked on the owner envelope',
    );
    assert.ok(forwarder.ruleStats('owned')!.bytes_in < PREFIX.length + size, 'held at the cap');
    forwarder.removeOwnerRateLimit('u9');
    const reply = once<Buffer>(socket, 'data', 5_000);
    socket.end();
    assert.equal((await reply).toString(), String(PREFIX.length + size));
  });
});

describe('source lists (TCP)', () => {
  it('admits by allow list and refuses by deny list on a dual-stack listener', async () => {
    const target = await countingEcho();
    const { forwarder, logger } = newForwarder({ dualStack: true });
    const rule = tcpRule('src', target.port, {
      allowedSources: ['127.0.0.0/8', '::1/128'],
      deniedSources: ['127.0.0.2/32'],
    });
    const { ports } = await forwarder.activate(rule);
    const port = ports[0]!;
    // An IPv4 peer of a `::` listener shows as ::ffff:127.0.0.1; the v4 CIDR still matches it.
    assert.equal(await outcome(port), 'open');
    assert.equal(await outcome(port, { host: '::1' }), 'open');
    assert.equal(await outcome(port, { localAddress: '127.0.0.2' }), 'reset');
    assert.equal(target.accepts(), 2, 'the denied source never reached the target');
    const stats = forwarder.ruleStats('src')!;
    assert.equal(stats.source_denied, 1);
    assert.equal(stats.rate_limit, null, 'source lists alone are no caps');
    const denied = logger.lines.find((l) => l.event === 'rule.source_denied');
    assert.equal(denied?.level, 'debug');

    // Live edit: only ::1 now. The open v4 connection stays; a new v4 one is refused.
    const open = await openEchoed(port);
    await forwarder.apply({ ...rule, allowedSources: ['::1/128'], deniedSources: [] });
    assert.equal(await outcome(port), 'reset');
    assert.equal(await outcome(port, { host: '::1' }), 'open');
    const echoed = once<Buffer>(open, 'data');
    open.write('kept');
    assert.equal((await echoed).toString(), 'kept');
    assert.equal(forwarder.ruleStats('src')!.source_denied, 2);
  });

  it('refuses a definition with a bad CIDR and keeps the running one', async () => {
    const target = await countingEcho();
    const { forwarder } = newForwarder();
    const rule = tcpRule('bad', target.port);
    const { ports } = await forwarder.activate(rule);
    await assert.rejects(forwarder.apply({ ...rule, deniedSources: ['10.0.0.1/8'] }), {
      reason: 'source_list_invalid',
    });
    const tooMany = Array.from({ length: 65 }, (_, i) => `10.0.${i}.0/24`);
    await assert.rejects(forwarder.apply({ ...rule, allowedSources: tooMany }), {
      reason: 'source_list_invalid',
    });
    assert.equal(await outcome(ports[0]!), 'open');
    assert.deepEqual(forwarder.spec('bad')!.deniedSources, []);
  });
});

describe('UDP caps and source lists', () => {
  async function udpTarget(): Promise<{ port: number; received: () => number; close: () => void }> {
    const socket = await udpSocket();
    let received = 0;
    socket.on('message', (msg, rinfo) => {
      received++;
      socket.send(msg, rinfo.port, rinfo.address);
    });
    resources.defer(() => closeUdp(socket));
    return { port: socket.address().port, received: () => received, close: () => undefined };
  }

  async function client(host = V4): Promise<dgram.Socket> {
    const socket = await udpSocket(0, host);
    resources.defer(() => closeUdp(socket));
    return socket;
  }

  function udpRule(ruleId: string, targetPort: number, fields: Partial<RuleSpec>): RuleSpec {
    return {
      ...simpleRule({ ruleId, protocol: 'udp', listenPort: 0, targetHost: V4, targetPort }),
      ...fields,
    };
  }

  it('drops datagrams over the bandwidth cap and counts them', async () => {
    const target = await udpTarget();
    const { forwarder } = newForwarder({ frozen: true });
    const { ports } = await forwarder.activate(
      udpRule('ubw', target.port, { rateLimit: { bandwidthInBps: 10_000 } }),
    );
    const socket = await client();
    let replies = 0;
    socket.on('message', () => replies++);
    for (let i = 0; i < 30; i++) socket.send(Buffer.alloc(1000, i), ports[0], V4);
    await waitFor(() => forwarder.ruleStats('ubw')!.datagrams_in === 30, 'all arrived');
    await waitFor(() => replies === 10, 'ten echoed');
    const stats = forwarder.ruleStats('ubw')!;
    assert.equal(stats.rate_limit!.datagrams_dropped_in, 20, 'a frozen clock refills nothing');
    assert.equal(target.received(), 10);
  });

  it('refuses new flows over the flow rate and from denied sources, before any upstream', async () => {
    const target = await udpTarget();
    const { forwarder } = newForwarder({ frozen: true });
    const { ports } = await forwarder.activate(
      udpRule('uflow', target.port, {
        rateLimit: { newConnectionsPerSec: 1, newConnectionsBurst: 1 },
        deniedSources: ['127.0.0.2/32'],
      }),
    );
    const first = await client();
    const echoed = once(first, 'message');
    first.send('a', ports[0], V4);
    await echoed;
    const second = await client();
    second.send('b', ports[0], V4);
    const denied = await client('127.0.0.2');
    denied.send('c', ports[0], V4);
    await waitFor(() => forwarder.ruleStats('uflow')!.datagrams_in === 3, 'all arrived');
    const stats = forwarder.ruleStats('uflow')!;
    assert.equal(stats.rate_limit!.rejects.udp_flow_rate, 1);
    assert.equal(stats.source_denied, 1);
    assert.equal(stats.active_flows, 1);
    assert.equal(target.received(), 1, 'only the admitted flow reached the target');
  });
});
