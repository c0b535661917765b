/**
 * PROXY protocol: the header bytes against the spec's own examples (v1 text; v2 signature,
 * version/command, family/transport, length and addresses), then through a real Forwarder on
 * loopback — TCP v1 and v2 headers arrive before any client byte and carry the client's real
 * address, the header is not counted as client bytes; UDP v2 puts a DGRAM header in front of
 * every datagram while replies come back bare. Every socket is closed in `after`.
 */
import assert from 'node:assert/strict';
import type dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';

import {
  V4,
  closeUdp,
  once,
  recordingLogger,
  tcpServer,
  testResources,
  udpSocket,
  waitFor,
} from '../net.harness.js';
import { Forwarder } from '../rule-runtime.js';
import { simpleRule, type ProxyProtocolVersion } from '../rule-spec.js';
import {
  PROXY_V2_SIGNATURE,
  parseProxyHeader,
  proxyV1Header,
  proxyV2Header,
  unmapIpv4,
} from './header.js';

const resources = testResources();

const ends = {
  sourceAddress: '192.0.2.1',
  sourcePort: 56324,
  destinationAddress: '198.51.100.2',
  destinationPort: 443,
};

describe('PROXY headers', () => {
  it('writes v1 lines for IPv4, IPv4-mapped and IPv6 peers', () => {
    assert.equal(proxyV1Header(ends).toString(), 'PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n');
    const mapped = {
      ...ends,
      sourceAddress: '::ffff:192.0.2.1',
      destinationAddress: '::ffff:10.0.0.1',
    };
    assert.equal(proxyV1Header(mapped).toString(), 'PROXY TCP4 192.0.2.1 10.0.0.1 56324 443\r\n');
    const six = { ...ends, sourceAddress: '2001:db8::1', destinationAddress: '2001:db8::2' };
    assert.equal(proxyV1Header(six).toString(), 'PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n');
    assert.equal(unmapIpv4('::ffff:127.0.0.1'), '127.0.0.1');
  });

  it('writes v2 headers: 28 bytes for IPv4, 52 for IPv6, STREAM or DGRAM', () => {
    const tcp4 = proxyV2Header(ends, 'tcp');
    assert.equal(tcp4.length, 28);
    assert.ok(tcp4.subarray(0, 12).equals(PROXY_V2_SIGNATURE));
    assert.equal(tcp4[12], 0x21);
    assert.equal(tcp4[13], 0x11);
    assert.equal(tcp4.readUInt16BE(14), 12);
    assert.deepEqual([...tcp4.subarray(16, 20)], [192, 0, 2, 1]);
    assert.equal(tcp4.readUInt16BE(24), 56324);
    assert.equal(proxyV2Header(ends, 'udp')[13], 0x12);
    const six = { ...ends, sourceAddress: '2001:db8::1', destinationAddress: '::ffff:10.0.0.1' };
    const udp6 = proxyV2Header(six, 'udp');
    assert.equal(udp6.length, 52);
    assert.equal(udp6[13], 0x22);
    const parsed = parseProxyHeader(udp6);
    assert.equal(parsed?.endpoints.sourceAddress, '2001:db8:0:0:0:0:0:1');
    assert.equal(parsed.endpoints.destinationAddress, '0:0:0:0:0:ffff:a00:1');
    assert.equal(parsed.endpoints.destinationPort, 443);
  });
});

/** A TCP target that records the first bytes of each connection and echoes the rest. */
async function proxyAwareTarget(): Promise<{ port: number; received: Buffer[] }> {
  const received: Buffer[] = [];
  const server = tcpServer((socket) => {
    let buffered = Buffer.alloc(0);
    let parsed = false;
    socket.on('data', (chunk: Buffer) => {
      if (parsed) {
        socket.write(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const header = parseProxyHeader(buffered);
      if (!header) return;
      parsed = true;
      received.push(buffered.subarray(0, header.length));
      socket.write(buffered.subarray(header.length));
    });
    socket.on('end', () => socket.end());
  });
  const port = await resources.listen(server);
  return { port, received };
}

async function forwarderFor(
  protocol: 'tcp' | 'udp',
  targetPort: number,
  proxyProtocol: ProxyProtocolVersion,
): Promise<{ forwarder: Forwarder; port: number }> {
  const forwarder = resources.forwarder({ logger: recordingLogger(), listenHost: V4 });
  const { ports } = await forwarder.activate(
    simpleRule({
      ruleId: `${protocol}-${proxyProtocol}`,
      protocol,
      listenPort: 0,
      targetHost: V4,
      targetPort,
      proxyProtocol,
    }),
  );
  return { forwarder, port: ports[0]! };
}

for (const version of ['v1', 'v2'] as const) {
  describe(`PROXY ${version} on TCP`, () => {
    it('sends the client address before any client byte and counts only client bytes', async () => {
      const target = await proxyAwareTarget();
      const { forwarder, port } = await forwarderFor('tcp', target.port, version);
      const client = net.connect({ port, host: V4, allowHalfOpen: true });
      await once(client, 'connect');
      const clientPort = client.localPort;
      const chunks: Buffer[] = [];
      client.on('data', (chunk: Buffer) => chunks.push(chunk));
      const ended = once(client, 'end');
      client.end('hello');
      await ended;
      client.destroy();
      assert.equal(Buffer.concat(chunks).toString(), 'hello');
      const header = parseProxyHeader(target.received[0]!);
      assert.equal(header?.version, version);
      assert.equal(header.family, 'ipv4');
      assert.equal(header.endpoints.sourceAddress, '127.0.0.1');
      assert.equal(header.endpoints.sourcePort, clientPort);
      assert.equal(header.endpoints.destinationPort, port);
      await waitFor(
        () => forwarder.ruleStats(`tcp-${version}`)!.active_connections === 0,
        'closed',
      );
      assert.equal(forwarder.ruleStats(`tcp-${version}`)!.bytes_in, 5);
    });
  });
}

describe('PROXY v2 on UDP', () => {
  it('puts a DGRAM header with the client address in front of every datagram', async () => {
    const target = await udpSocket();
    resources.defer(() => closeUdp(target));
    const seen: Buffer[] = [];
    target.on('message', (msg, rinfo) => {
      seen.push(msg);
      const header = parseProxyHeader(msg);
      target.send(msg.subarray(header?.length ?? 0), rinfo.port, rinfo.address);
    });
    const { forwarder, port } = await forwarderFor('udp', target.address().port, 'v2');
    const client: dgram.Socket = await udpSocket();
    resources.defer(() => closeUdp(client));
    for (const text of ['one', 'two', 'three']) {
      const reply = once<Buffer>(client, 'message');
      client.send(text, port, V4);
      assert.equal((await reply).toString(), text, 'the reply comes back without a header');
    }
    assert.equal(seen.length, 3);
    for (const [i, msg] of seen.entries()) {
      const header = parseProxyHeader(msg);
      assert.equal(header?.version, 'v2');
      assert.equal(header.transport, 'udp');
      assert.equal(header.endpoints.sourceAddress, '127.0.0.1');
      assert.equal(header.endpoints.sourcePort, client.address().port);
      assert.equal(header.endpoints.destinationPort, port);
      assert.equal(msg.subarray(header.length).toString(), ['one', 'two', 'three'][i]);
    }
    assert.equal(forwarder.ruleStats('udp-v2')!.bytes_in, 11);
  });
});
