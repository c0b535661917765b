/**
 * One load-generator process of the memory section: `node idle-clients.js PORT COUNT INFLIGHT
 * TIMEOUT_MS [--close]`. Opens COUNT TCP connections to 127.0.0.1:PORT with at most INFLIGHT
 * connects at a time, sends nothing, and prints a done line with how many are open and how many
 * failed. With --close it closes them all right away (the warm-up); otherwise it holds them
 * until SIGTERM. Bounded by COUNT and by TIMEOUT_MS.
 */
import net from 'node:net';

const [portArg, countArg, inflightArg, timeoutArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
const inflight = Number(inflightArg);
const timeoutMs = Number(timeoutArg);
const closeAfter = process.argv.includes('--close');
if (![port, count, inflight, timeoutMs].every((n) => Number.isInteger(n) && n > 0)) {
  throw new Error('usage: node idle-clients.js PORT COUNT INFLIGHT TIMEOUT_MS [--close]');
}

const sockets: net.Socket[] = [];
let started = 0;
let open = 0;
let failed = 0;
let settled = 0;
const deadline = Date.now() + timeoutMs;

await new Promise<void>((resolve) => {
  const next = (): void => {
    if (settled === count || Date.now() > deadline) {
      resolve();
      return;
    }
    while (started < count && started - settled < inflight) {
      started++;
      const socket = net.connect({ port, host: '127.0.0.1' });
      let connected = false;
      socket.once('connect', () => {
        connected = true;
        open++;
        sockets.push(socket);
        settled++;
        next();
      });
      socket.once('error', () => {
        if (connected) return;
        failed++;
        settled++;
        next();
      });
    }
  };
  next();
  setTimeout(resolve, timeoutMs).unref();
});
// Connections that fail later (a reset while idle) must not crash the holder.
for (const socket of sockets) socket.on('error', () => undefined);
if (closeAfter) {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => {
            resolve();
          });
          socket.end();
        }),
    ),
  );
}
console.log(JSON.stringify({ event: 'bench.clients_done', open, failed, closed: closeAfter }));
// Held sockets keep the process alive until SIGTERM destroys them; then it ends by itself.
process.once('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
});
