/**
 * Ports for tests that must name a port up front (an edge listen port pushed in a rule, a range):
 * free on 127.0.0.1 for both TCP and UDP when looked at, drawn at random below Linux's ephemeral
 * range (32768-60999). A port 0 handed out by the kernel, and its neighbours, are ephemeral ports
 * that outgoing connections of other tests and processes take at any moment, so "bind 0, close,
 * reuse" loses races on a busy machine; a port below the range is taken only by an explicit bind.
 * Where a test can bind port 0 itself and read the port, it should. Depends on Node only.
 */
import dgram from 'node:dgram';
import net from 'node:net';

const LOW = 10_000;
const HIGH = 32_000;

function tcpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => {
      resolve(false);
    });
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      server.close(() => {
        resolve(true);
      });
    });
  });
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, '127.0.0.1', () => {
      socket.close(() => {
        resolve(true);
      });
    });
  });
}

/** `count` consecutive ports free for TCP and UDP on 127.0.0.1 right now. */
export async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const base = LOW + Math.floor(Math.random() * (HIGH - count - LOW));
    let ok = true;
    for (let port = base; port < base + count && ok; port++) {
      ok = (await tcpFree(port)) && (await udpFree(port));
    }
    if (ok) return base;
  }
  throw new Error(`no run of ${count} free ports found below the ephemeral range`);
}

/** One port free for TCP and UDP on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return freePortRun(1);
}
