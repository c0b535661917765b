/**
 * PROXY protocol headers (haproxy's proxy-protocol.txt, reference inventory §5.6): the v1 text
 * line and the v2 binary header that tell a target the real client address. TCP targets get one
 * header before any client byte; UDP targets with v2 get one in front of every datagram (there
 * is no stream to prefix once), with the DGRAM transport nibble. IPv4-mapped IPv6 addresses, as
 * a dual-stack listener reports IPv4 peers, are written as IPv4. Pure: builds buffers, no
 * sockets; depends only on node:net.
 */
import net from 'node:net';

import type { ProxyProtocolVersion } from '../rule-spec.js';

export interface ProxyEndpoints {
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
}

/** The 12-byte v2 signature. */
export const PROXY_V2_SIGNATURE = Buffer.from([
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a,
]);

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
export function unmapIpv4(address: string): string {
  return MAPPED_V4.exec(address)?.[1] ?? address;
}

/** Both ends in one family: IPv4 when both are (or map to) IPv4, else both as IPv6. */
function family(endpoints: ProxyEndpoints): { v4: boolean; src: string; dst: string } {
  const src = unmapIpv4(endpoints.sourceAddress);
  const dst = unmapIpv4(endpoints.destinationAddress);
  if (net.isIPv4(src) && net.isIPv4(dst)) return { v4: true, src, dst };
  const six = (address: string): string => (net.isIPv4(address) ? `::ffff:${address}` : address);
  return { v4: false, src: six(src), dst: six(dst) };
}

export function proxyV1Header(endpoints: ProxyEndpoints): Buffer {
  const { v4, src, dst } = family(endpoints);
  return Buffer.from(
    `PROXY ${v4 ? 'TCP4' : 'TCP6'} ${src} ${dst} ${endpoints.sourcePort} ${endpoints.destinationPort}\r\n`,
    'latin1',
  );
}

function ipv6Bytes(address: string): Buffer {
  // Expand `::` and a dotted IPv4 tail by hand; a zone id (`%eth0`) has no place on the wire.
  const [head = '', tail] = (address.split('%')[0] ?? '').split('::');
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const expand = (parts: string[]): string[] =>
    parts.flatMap((part) => {
      if (!part.includes('.')) return [part];
      const [a = 0, b = 0, c = 0, d = 0] = part.split('.').map(Number);
      return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
    });
  const h = expand(headParts);
  const t = expand(tailParts);
  const groups =
    tail === undefined ? h : [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}

/** A v2 PROXY header (command PROXY) for a TCP stream or a UDP datagram. */
export function proxyV2Header(endpoints: ProxyEndpoints, transport: 'tcp' | 'udp'): Buffer {
  const { v4, src, dst } = family(endpoints);
  const addressBytes = v4 ? 12 : 36;
  const header = Buffer.alloc(16 + addressBytes);
  PROXY_V2_SIGNATURE.copy(header, 0);
  header[12] = 0x21; // version 2, command PROXY
  header[13] = (v4 ? 0x10 : 0x20) | (transport === 'tcp' ? 0x01 : 0x02);
  header.writeUInt16BE(addressBytes, 14);
  if (v4) {
    Buffer.from(src.split('.').map(Number)).copy(header, 16);
    Buffer.from(dst.split('.').map(Number)).copy(header, 20);
    header.writeUInt16BE(endpoints.sourcePort, 24);
    header.writeUInt16BE(endpoints.destinationPort, 26);
  } else {
    ipv6Bytes(src).copy(header, 16);
    ipv6Bytes(dst).copy(header, 32);
    header.writeUInt16BE(endpoints.sourcePort, 48);
    header.writeUInt16BE(endpoints.destinationPort, 50);
  }
  return header;
}

export function proxyHeader(
  version: ProxyProtocolVersion,
  endpoints: ProxyEndpoints,
  transport: 'tcp' | 'udp',
): Buffer {
  return version === 'v1' ? proxyV1Header(endpoints) : proxyV2Header(endpoints, transport);
}

export interface ParsedProxyHeader {
  version: ProxyProtocolVersion;
  transport: 'tcp' | 'udp';
  family: 'ipv4' | 'ipv6';
  endpoints: ProxyEndpoints;
  /** Bytes the header took; the payload starts there. */
  length: number;
}

/**
 * Parses a header at the start of `data`, or returns undefined when there is none (or it is
 * incomplete). Used by tests and benchmark targets to check what a target receives.
 */
export function parseProxyHeader(data: Buffer): ParsedProxyHeader | undefined {
  if (data.length >= 16 && data.subarray(0, 12).equals(PROXY_V2_SIGNATURE)) {
    const length = 16 + data.readUInt16BE(14);
    if (data.length < length) return undefined;
    const fam = data[13]! >> 4;
    const transport = (data[13]! & 0x0f) === 0x02 ? 'udp' : 'tcp';
    if (fam === 1) {
      return {
        version: 'v2',
        transport,
        family: 'ipv4',
        endpoints: {
          sourceAddress: [...data.subarray(16, 20)].join('.'),
          destinationAddress: [...data.subarray(20, 24)].join('.'),
          sourcePort: data.readUInt16BE(24),
          destinationPort: data.readUInt16BE(26),
        },
        length,
      };
    }
    const v6 = (at: number): string =>
      Array.from({ length: 8 }, (_, i) => data.readUInt16BE(at + i * 2).toString(16)).join(':');
    return {
      version: 'v2',
      transport,
      family: 'ipv6',
      endpoints: {
        sourceAddress: v6(16),
        destinationAddress: v6(32),
        sourcePort: data.readUInt16BE(48),
        destinationPort: data.readUInt16BE(50),
      },
      length,
    };
  }
  const end = data.indexOf('\r\n');
  if (end < 0 || !data.subarray(0, 6).equals(Buffer.from('PROXY '))) return undefined;
  const [, proto, src, dst, sport, dport] = data.subarray(0, end).toString('latin1').split(' ');
  return {
    version: 'v1',
    transport: 'tcp',
    family: proto === 'TCP6' ? 'ipv6' : 'ipv4',
    endpoints: {
      sourceAddress: src ?? '',
      destinationAddress: dst ?? '',
      sourcePort: Number(sport),
      destinationPort: Number(dport),
    },
    length: end + 2,
  };
}
