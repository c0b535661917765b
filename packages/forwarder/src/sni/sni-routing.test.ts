/**
 * Shared SNI ports end to end over loopback: real node:tls upstreams with distinct self-signed
 * certificates and real TLS clients with a server name, so which upstream answered is read from
 * the certificate it presented. Covers exact, wildcard (one label; not the apex, not two labels)
 * and fallback routes, no SNI, a miss without fallback, the PROXY header before the replayed
 * hello, a silent and a trickling client under the peek deadline, the in-flight cap, the byte
 * cap, garbage, the edge's refusals, and members added, replaced and removed while another
 * member's connection stays open. Peek limits are injected small so nothing waits seconds.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { before, describe, it } from 'node:test';

import {
  captureClientHello,
  freePort,
  selfSignedCertificate,
  tlsAsk,
  tlsEchoServer,
  type TestCertificate,
} from '@portunus/test-support';

import {
  FORWARDER_EVENTS,
  Forwarder,
  RuleActivationError,
  parseClientHello,
  parseProxyHeader,
  simpleRule,
  type RuleSpec,
  type SniOptions,
} from '../index.js';
import {
  V4,
  once,
  recordingLogger,
  tcpEcho,
  tcpServer,
  testResources,
  waitFor,
} from '../net.harness.js';

const resources = testResources();

const names = [
  'exact.example.com',
  'wild.example.com',
  'fallback.example.com',
  'extra.example.com',
];
const upstreams = new Map<string, number>();
let certs: TestCertificate[];

before(async () => {
  certs = await Promise.all(names.map((name) => selfSignedCertificate(name)));
  for (const cert of certs) {
    const server = await tlsEchoServer(cert);
    resources.defer(server.close);
    upstreams.set(cert.commonName, server.port);
  }
});

function upstream(name: string): number {
  return upstreams.get(name)!;
}

function newForwarder(sni: SniOptions = {}, logger = recordingLogger()) {
  const forwarder = resources.forwarder({ logger, listenHost: V4, sni });
  return { forwarder, logger };
}

function sniRule(ruleId: string, port: number, pattern: string | null, to: string): RuleSpec {
  return simpleRule({
    ruleId,
    protocol: 'tcp',
    listenPort: port,
    targetHost: V4,
    targetPort: upstream(to),
    sniPattern: pattern,
  });
}

/** A group of exact + wildcard + fallback on one port; resolves the port. */
async function standardGroup(forwarder: Forwarder): Promise<number> {
  const { ports } = await forwarder.activate(sniRule('exact', 0, 'a.example.com', names[0]!));
  const port = ports[0]!;
  await forwarder.activate(sniRule('wild', port, '*.svc.example.com', names[1]!));
  await forwarder.activate(sniRule('fallback', port, null, names[2]!));
  return port;
}

/** A TLS connection that stays open; `ask` round-trips on it. */
async function openTls(port: number, servername: string) {
  const socket = tls.connect({ host: V4, port, servername, rejectUnauthorized: false });
  resources.defer(() => {
    socket.destroy();
  });
  await once(socket, 'secureConnect');
  return {
    commonName: String(socket.getPeerCertificate().subject.CN),
    async ask(text: string): Promise<string> {
      const got = once<Buffer>(socket, 'data');
      socket.write(text);
      return String(await got);
    },
    socket,
  };
}

/** A raw upstream that records everything it receives. */
async function recordingUpstream(): Promise<{ port: number; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  const server = tcpServer((socket) => socket.on('data', (chunk: Buffer) => chunks.push(chunk)));
  const port = await resources.listen(server);
  return { port, received: () => Buffer.concat(chunks) };
}

function events(logger: ReturnType<typeof recordingLogger>, event: string) {
  return logger.lines.filter((line) => line.event === event);
}

describe('SNI routing', () => {
  it('routes exact, single-label wildcard and fallback by the presented certificate', async () => {
    const { forwarder, logger } = newForwarder();
    const port = await standardGroup(forwarder);
    const cases: [string | undefined, string][] = [
      ['a.example.com', names[0]!],
      ['A.Example.COM', names[0]!],
      ['x.svc.example.com', names[1]!],
      ['svc.example.com', names[2]!], // the apex is not the wildcard's
      ['a.b.svc.example.com', names[2]!], // two labels are not either
      ['other.example.org', names[2]!],
      [undefined, names[2]!], // no SNI
    ];
    for (const [servername, expected] of cases) {
      const answer = await tlsAsk(port, servername, `hello ${servername ?? ''}`);
      assert.equal(answer.commonName, expected, `servername ${servername ?? '(none)'}`);
      assert.equal(answer.echo, `hello ${servername ?? ''}`);
    }
    const stats = new Map(forwarder.stats().map((s) => [s.rule_id, s]));
    assert.equal(stats.get('exact')?.sni_route_exact_total, 2);
    assert.equal(stats.get('wild')?.sni_route_wildcard_total, 1);
    assert.equal(stats.get('fallback')?.sni_route_fallback_total, 4);
    assert.equal(stats.get('exact')?.ports[0]?.listen_port, port);
    assert.ok((stats.get('exact')?.bytes_in ?? 0) > 0, 'the replayed hello counts as bytes in');
    const [listener] = forwarder.sniListenerStats();
    assert.ok(listener);
    assert.equal(listener.listen_port, port);
    assert.equal(listener.client_hello_peek_count, cases.length);
    assert.equal(
      listener.client_hello_peek_bucket_counts.reduce((a, b) => a + b, 0),
      cases.length,
    );
    assert.equal(listener.client_hello_peek_bucket_counts.length, 16);
    assert.equal(listener.sni_route_miss_total, 0);
    assert.equal(events(logger, FORWARDER_EVENTS.sniGroupMemberAdded).length, 3);
    assert.equal(events(logger, FORWARDER_EVENTS.sniListenerBound).length, 1);
    assert.ok(
      events(logger, FORWARDER_EVENTS.sniRouted).some((l) => l.fields.match === 'wildcard'),
    );
  });

  it('drops and counts a miss when nothing matches and there is no fallback', async () => {
    const { forwarder, logger } = newForwarder();
    const { ports } = await forwarder.activate(sniRule('only', 0, 'a.example.com', names[0]!));
    const port = ports[0]!;
    await assert.rejects(tlsAsk(port, 'b.example.com'));
    await assert.rejects(tlsAsk(port, undefined));
    assert.equal((await tlsAsk(port, 'a.example.com')).commonName, names[0]);
    const [listener] = forwarder.sniListenerStats();
    assert.equal(listener?.sni_route_miss_total, 2);
    assert.equal(events(logger, FORWARDER_EVENTS.sniNoMatch).length, 1);
    assert.equal(events(logger, FORWARDER_EVENTS.noSni)[0]?.fields.action, 'dropped');
  });

  it('writes the PROXY header first, then the replayed hello byte for byte', async () => {
    const { forwarder } = newForwarder();
    const raw = await recordingUpstream();
    const rule = simpleRule({
      ruleId: 'proxied',
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: raw.port,
      sniPattern: 'p.example.com',
      proxyProtocol: 'v1',
    });
    const port = (await forwarder.activate(rule)).ports[0]!;
    const hello = await captureClientHello('p.example.com');
    const client = net.connect({ host: V4, port });
    resources.defer(() => {
      client.destroy();
    });
    client.write(hello);
    await waitFor(() => raw.received().length >= hello.length + 20, 'hello upstream');
    const bytes = raw.received();
    const header = parseProxyHeader(bytes);
    assert.ok(header);
    assert.equal(header.version, 'v1');
    assert.equal(header.endpoints.destinationPort, port);
    assert.deepEqual(bytes.subarray(header.length), hello);
    const replayed = parseClientHello(bytes.subarray(header.length));
    assert.equal(replayed.kind === 'sni' && replayed.name, 'p.example.com');
  });

  it('passes a hello that trickles in one byte per write intact', async () => {
    const { forwarder } = newForwarder();
    const raw = await recordingUpstream();
    const rule = simpleRule({
      ruleId: 'trickle',
      protocol: 'tcp',
      listenPort: 0,
      targetHost: V4,
      targetPort: raw.port,
      sniPattern: 't.example.com',
    });
    const port = (await forwarder.activate(rule)).ports[0]!;
    const hello = await captureClientHello('t.example.com');
    const client = net.connect({ host: V4, port, noDelay: true });
    resources.defer(() => {
      client.destroy();
    });
    await once(client, 'connect');
    for (const byte of hello) {
      await new Promise<void>((resolve) => {
        client.write(Buffer.from([byte]), () => {
          resolve();
        });
      });
    }
    client.write('after');
    await waitFor(() => raw.received().length >= hello.length + 5, 'trickled hello upstream');
    assert.deepEqual(raw.received(), Buffer.concat([hello, Buffer.from('after')]));
    assert.equal(forwarder.ruleStats('trickle')?.sni_route_exact_total, 1);
  });

  it('times out a silent client without blocking the next one, and a slow one in total', async () => {
    const { forwarder, logger } = newForwarder({ peekTimeoutMs: 300 });
    const port = await standardGroup(forwarder);
    const silent = net.connect({ host: V4, port });
    resources.defer(() => {
      silent.destroy();
    });
    silent.on('error', () => undefined);
    await once(silent, 'connect');
    await waitFor(() => forwarder.sniListenerStats()[0]?.peeks_in_flight === 1, 'silent peeking');
    // The silent client holds a peek, not the port.
    assert.equal((await tlsAsk(port, 'a.example.com')).commonName, names[0]);
    await once(silent, 'close', 5_000);
    // A client that keeps sending, but too slowly, hits the same deadline: it is a total.
    const hello = await captureClientHello('a.example.com');
    const slow = net.connect({ host: V4, port });
    slow.on('error', () => undefined);
    resources.defer(() => {
      slow.destroy();
    });
    let sent = 0;
    const ticker = setInterval(() => {
      if (sent < hello.length && !slow.destroyed) slow.write(hello.subarray(sent, ++sent));
    }, 20);
    resources.defer(() => {
      clearInterval(ticker);
    });
    await once(slow, 'close', 5_000);
    clearInterval(ticker);
    assert.ok(sent < hello.length, 'the slow client was cut before it finished');
    assert.equal(events(logger, FORWARDER_EVENTS.clientHelloTimeout).length, 2);
    const [listener] = forwarder.sniListenerStats();
    assert.ok(listener);
    assert.equal(listener.client_hello_parse_failures_total, 2);
    assert.equal(listener.peeks_in_flight, 0);
  });

  it('drops connections beyond the in-flight peek cap and recovers', async () => {
    const { forwarder, logger } = newForwarder({ maxPeeksInFlight: 2, peekTimeoutMs: 10_000 });
    const port = await standardGroup(forwarder);
    const silent = [net.connect({ host: V4, port }), net.connect({ host: V4, port })];
    for (const socket of silent) {
      socket.on('error', () => undefined);
      resources.defer(() => {
        socket.destroy();
      });
    }
    await waitFor(() => forwarder.sniListenerStats()[0]?.peeks_in_flight === 2, 'two peeks');
    await assert.rejects(tlsAsk(port, 'a.example.com'));
    assert.equal(forwarder.sniListenerStats()[0]?.peek_capacity_drops_total, 1);
    assert.equal(events(logger, FORWARDER_EVENTS.sniPeekCapacity).length, 1);
    for (const socket of silent) socket.destroy();
    await waitFor(() => forwarder.sniListenerStats()[0]?.peeks_in_flight === 0, 'peeks freed');
    assert.equal((await tlsAsk(port, 'a.example.com')).commonName, names[0]);
  });

  it('fails garbage and hellos over the byte cap as parse failures', async () => {
    const { forwarder, logger } = newForwarder({ maxPeekBytes: 64 });
    const port = await standardGroup(forwarder);
    const garbage = net.connect({ host: V4, port });
    garbage.on('error', () => undefined);
    garbage.write('GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n');
    await once(garbage, 'close');
    // node's hello is several hundred bytes: over a 64-byte cap it is never complete.
    await assert.rejects(tlsAsk(port, 'a.example.com'));
    const failed = events(logger, FORWARDER_EVENTS.parseFailed).map((l) => l.fields.reason);
    assert.deepEqual(failed, ['not_handshake', 'size_cap']);
    assert.equal(forwarder.sniListenerStats()[0]?.client_hello_parse_failures_total, 2);
  });

  it('refuses what the server refuses on a shared port', async () => {
    const { forwarder } = newForwarder();
    const port = await standardGroup(forwarder);
    const refused = async (rule: RuleSpec, reason: string) => {
      await assert.rejects(forwarder.activate(rule), (error: unknown) => {
        assert.ok(error instanceof RuleActivationError);
        assert.equal(error.reason, reason);
        assert.equal(error.port, port);
        return true;
      });
    };
    await refused(
      sniRule('dup', port, 'A.example.com'.toLowerCase(), names[3]!),
      'conflict.sni_route_duplicate',
    );
    await refused(sniRule('fb2', port, null, names[3]!), 'conflict.sni_fallback_duplicate');
    await refused(
      {
        ...sniRule('range', port - 1, null, names[3]!),
        listenPortEnd: port + 1,
        targets: [{ host: V4, port: 20000, portEnd: 20002, priority: 0, proxyProtocol: null }],
      },
      'conflict.legacy_to_sni_unsupported',
    );
    // A plain port refuses SNI members.
    const plainTarget = tcpEcho();
    const echoPort = await resources.listen(plainTarget);
    const plain = await forwarder.activate(
      simpleRule({
        ruleId: 'plain',
        protocol: 'tcp',
        listenPort: 0,
        targetHost: V4,
        targetPort: echoPort,
      }),
    );
    await assert.rejects(
      forwarder.activate(sniRule('onplain', plain.ports[0]!, 'a.example.com', names[0]!)),
      {
        reason: 'conflict.legacy_to_sni_unsupported',
      },
    );
    await assert.rejects(
      forwarder.apply({ ...forwarder.spec('plain')!, sniPattern: 'x.example.com' }),
      { reason: 'conflict.legacy_to_sni_unsupported' },
    );
    // Nothing changed: the group still routes as before.
    assert.equal((await tlsAsk(port, 'a.example.com')).commonName, names[0]);
    assert.deepEqual(forwarder.ruleIds().sort(), ['exact', 'fallback', 'plain', 'wild']);
  });

  it('adds, replaces and removes members while another member keeps its connection', async () => {
    const { forwarder, logger } = newForwarder();
    const port = await standardGroup(forwarder);
    const kept = await openTls(port, 'a.example.com');
    assert.equal(kept.commonName, names[0]);
    assert.equal(await kept.ask('one'), 'one');

    await forwarder.activate(sniRule('extra', port, 'e.example.com', names[3]!));
    assert.equal((await tlsAsk(port, 'e.example.com')).commonName, names[3]);
    assert.equal(await kept.ask('two'), 'two');

    // Replace the wildcard member's pattern and target; the kept member is untouched.
    await forwarder.apply(sniRule('wild', port, '*.new.example.com', names[3]!));
    assert.equal((await tlsAsk(port, 'x.new.example.com')).commonName, names[3]);
    assert.equal(
      (await tlsAsk(port, 'x.svc.example.com')).commonName,
      names[2],
      'old pattern gone',
    );
    assert.equal(await kept.ask('three'), 'three');

    // Replace the kept connection's own rule: its open connection keeps its upstream.
    await forwarder.apply(sniRule('exact', port, 'a.example.com', names[3]!));
    assert.equal((await tlsAsk(port, 'a.example.com')).commonName, names[3]);
    assert.equal(await kept.ask('four'), 'four');

    await forwarder.remove('fallback');
    await assert.rejects(tlsAsk(port, 'nothing.example.org'));
    await forwarder.remove('extra');
    await forwarder.remove('wild');
    assert.equal(await kept.ask('five'), 'five');
    assert.equal(events(logger, FORWARDER_EVENTS.sniGroupMemberRemoved).length, 3);
    assert.equal(events(logger, FORWARDER_EVENTS.sniListenerUnbound).length, 0);

    // The last member closes the port; its connection drains (here: is cut at the deadline).
    const closed = once(kept.socket, 'close');
    await forwarder.remove('exact', { drainMs: 0 });
    await closed;
    assert.equal(events(logger, FORWARDER_EVENTS.sniListenerUnbound).length, 1);
    const probe = net.connect({ host: V4, port });
    const refusal = await once<NodeJS.ErrnoException>(probe, 'error');
    assert.equal(refusal.code, 'ECONNREFUSED');
    probe.destroy();
    assert.deepEqual(forwarder.sniListenerStats(), []);
  });

  it('moves a rule between a plain port and an SNI port without losing its counters', async () => {
    const { forwarder } = newForwarder();
    const port = await standardGroup(forwarder);
    await tlsAsk(port, 'x.svc.example.com');
    // Off the shared port onto a port of its own (with its own pattern: a new group).
    const moved = await freePort();
    await forwarder.apply(sniRule('wild', moved, '*.svc.example.com', names[1]!));
    assert.equal(forwarder.spec('wild')!.listenPort, moved);
    assert.equal((await tlsAsk(moved, 'y.svc.example.com')).commonName, names[1]);
    assert.equal((await tlsAsk(port, 'y.svc.example.com')).commonName, names[2]);
    assert.equal(forwarder.ruleStats('wild')?.sni_route_wildcard_total, 2);
    assert.equal(forwarder.sniListenerStats().length, 2);
  });
});

describe('SNI routing with rule policies', () => {
  // The gate runs after the route is chosen (tcp/listener.ts `forward`), so each member of a
  // shared port keeps its own source lists and caps; the refusal is an RST before any dial.
  it("refuses by the chosen member's source list and concurrency cap, not its neighbours'", async () => {
    const { forwarder } = newForwarder();
    const { ports } = await forwarder.activate({
      ...sniRule('denied', 0, 'a.example.com', names[0]!),
      deniedSources: ['127.0.0.0/8', '::1/128'],
    });
    const port = ports[0]!;
    await forwarder.activate({
      ...sniRule('capped', port, '*.svc.example.com', names[1]!),
      rateLimit: { concurrentConnections: 1 },
    });
    await forwarder.activate(sniRule('fallback', port, null, names[2]!));

    await assert.rejects(tlsAsk(port, 'a.example.com'), /ECONNRESET|closed before|socket/i);
    assert.equal((await tlsAsk(port, 'other.example.org')).commonName, names[2]);
    const held = await openTls(port, 'x.svc.example.com');
    assert.equal(held.commonName, names[1]);
    await assert.rejects(tlsAsk(port, 'y.svc.example.com'), /ECONNRESET|closed before|socket/i);
    assert.equal(await held.ask('still'), 'still');

    const stats = new Map(forwarder.stats().map((s) => [s.rule_id, s]));
    assert.equal(stats.get('denied')?.source_denied, 1);
    assert.equal(stats.get('denied')?.bytes_in, 0, 'refused before any dial');
    assert.equal(stats.get('capped')?.rate_limit?.rejects.conn_concurrent, 1);
    assert.equal(stats.get('fallback')?.source_denied, 0);
    held.socket.destroy();
  });
});
