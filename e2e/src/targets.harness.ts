/**
 * Targets for the PROXY protocol end-to-end tests: a TCP server that reads a v1 or v2 header
 * (IPv4, which is what loopback gives), records it and echoes the rest after its name, and a
 * one-connection ask with a deadline. Written here from the spec rather than imported from the
 * forwarder, so the product's header code is checked by an independent reader. Tests only.
 */
import net from 'node:net';

export const V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

export interface SeenHeader {
  version: 'v1' | 'v2';
  source: string;
  sourcePort: number;
}

/** Reads a PROXY v1 or v2 header (IPv4 only, which is what loopback gives). */
function readHeader(data: Buffer): { header: SeenHeader; length: number } | undefined {
  if (data.length >= 16 && data.subarray(0, 12).equals(V2_SIGNATURE)) {
    const length = 16 + data.readUInt16BE(14);
    if (data.length < length) return undefined;
    const source = [...data.subarray(16, 20)].join('.');
    return { header: { version: 'v2', source, sourcePort: data.readUInt16BE(24) }, length };
  }
  const end = data.indexOf('\r\n');
  if (end < 0) return undefined;
  const [, , source = '', , sourcePort = '0'] = data.subarray(0, end).toString().split(' ');
  return { header: { version: 'v1', source, sourcePort: Number(sourcePort) }, length: end + 2 };
}

/** A TCP target that answers `<name>:` + the echo, after reading the PROXY header. */
export async function proxyTarget(
  name: string,
  port = 0,
): Promise<{ port: number; headers: SeenHeader[]; close: () => Promise<void> }> {
  const headers: SeenHeader[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = Buffer.alloc(0);
    let open = false;
    socket.on('data', (chunk: Buffer) => {
      if (open) {
        socket.write(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      const read = readHeader(buffered);
      if (!read) return;
      open = true;
      headers.push(read.header);
      socket.write(`${name}:`);
      socket.write(buffered.subarray(read.length));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = (): Promise<void> =>
    new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => {
        resolve();
      });
    });
  return { port: (server.address() as net.AddressInfo).port, headers, close };
}

/** Sends `text` on a new connection and resolves with the whole answer (until `expect` bytes). */
export function ask(port: number, text: string, expect: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no full answer on ${port}: ${JSON.stringify(answer)}`));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString();
      if (answer.length >= expect) {
        clearTimeout(timer);
        socket.end();
        resolve(answer);
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write(text);
  });
}
