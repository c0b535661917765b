/**
 * A small authoritative DNS responder on UDP loopback for tests (tests only): each name gets A
 * and AAAA records with a TTL, NXDOMAIN, SERVFAIL, or silence (so the resolver times out), and
 * an answer can be held back until the test releases it (to prove single-flight). It records
 * every query, so tests count what reached the server. Speaks just enough of RFC 1035: one
 * question per query, answers with a compression pointer to it, EDNS records ignored. Depends
 * only on node:dgram and node:net.
 */
import dgram from 'node:dgram';
import net from 'node:net';

export interface DnsZoneEntry {
  a?: string[];
  aaaa?: string[];
  /** Seconds (default 60). */
  ttl?: number;
  rcode?: 'nxdomain' | 'servfail';
  /** Never answer: the client's attempt times out. */
  silent?: boolean;
  /** Answer only once this settles. */
  hold?: Promise<void>;
}

export interface DnsQuery {
  name: string;
  type: 'A' | 'AAAA' | number;
}

const TYPE_A = 1;
const TYPE_AAAA = 28;

function readName(msg: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = [];
  let at = start;
  while (at < msg.length) {
    const length = msg[at]!;
    if (length === 0) return { name: labels.join('.').toLowerCase(), end: at + 1 };
    labels.push(msg.subarray(at + 1, at + 1 + length).toString('latin1'));
    at += 1 + length;
  }
  throw new Error('truncated name');
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::')
    ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t]
    : h;
  const out = Buffer.alloc(16);
  groups.forEach((group, i) => out.writeUInt16BE(parseInt(group, 16), i * 2));
  return out;
}

export class FakeDnsServer {
  readonly queries: DnsQuery[] = [];
  private readonly zone = new Map<string, DnsZoneEntry>();

  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => {
      this.onQuery(msg, rinfo);
    });
  }

  static async start(host = '127.0.0.1'): Promise<FakeDnsServer> {
    const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new FakeDnsServer(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** `ip:port`, as `dns.Resolver.setServers` takes it. */
  get server(): string {
    return `${this.socket.address().address}:${this.port}`;
  }

  set(name: string, entry: DnsZoneEntry): void {
    this.zone.set(name.toLowerCase(), entry);
  }

  /** Queries that reached the server for `name` (any type). */
  count(name: string): number {
    return this.queries.filter((q) => q.name === name.toLowerCase()).length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.close(() => {
        resolve();
      });
    });
  }

  private onQuery(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12) return;
    let question: { name: string; end: number };
    try {
      question = readName(msg, 12);
    } catch {
      return;
    }
    const qtype = msg.readUInt16BE(question.end);
    const name = question.name;
    this.queries.push({
      name,
      type: qtype === TYPE_A ? 'A' : qtype === TYPE_AAAA ? 'AAAA' : qtype,
    });
    const entry = this.zone.get(name);
    if (entry?.silent) return;
    const reply = (): void => {
      const response = this.answer(msg, question.end + 4, qtype, entry);
      this.socket.send(response, rinfo.port, rinfo.address);
    };
    if (entry?.hold) void entry.hold.then(reply);
    else reply();
  }

  private answer(
    query: Buffer,
    questionEnd: number,
    qtype: number,
    entry: DnsZoneEntry | undefined,
  ): Buffer {
    const rcode = !entry || entry.rcode === 'nxdomain' ? 3 : entry.rcode === 'servfail' ? 2 : 0;
    const addresses =
      rcode !== 0
        ? []
        : qtype === TYPE_A
          ? (entry?.a ?? [])
          : qtype === TYPE_AAAA
            ? (entry?.aaaa ?? [])
            : [];
    const header = Buffer.alloc(12);
    query.copy(header, 0, 0, 2); // id
    header.writeUInt16BE(0x8180 | (query.readUInt16BE(2) & 0x0100) | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(addresses.length, 6);
    const records = addresses.map((address) => {
      const rdata =
        qtype === TYPE_A ? Buffer.from(address.split('.').map(Number)) : ipv6Bytes(address);
      const record = Buffer.alloc(12);
      record.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      record.writeUInt16BE(qtype, 2);
      record.writeUInt16BE(1, 4); // class IN
      record.writeUInt32BE(entry?.ttl ?? 60, 6);
      record.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([record, rdata]);
    });
    return Buffer.concat([header, query.subarray(12, questionEnd), ...records]);
  }
}
