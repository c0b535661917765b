/**
 * The target of the memory section: `node idle-sink.js`, a TCP server on 127.0.0.1:0 that
 * accepts connections and holds them without sending a byte; a connection the far side ends is
 * closed (so a forwarder's half-open pair can finish). Prints its port in a ready line, and on SIGUSR2 a status line with how many connections it holds.
 */
import net from 'node:net';

let open = 0;
const sockets = new Set<net.Socket>();
const server = net.createServer((socket) => {
  open++;
  sockets.add(socket);
  socket.on('error', () => undefined);
  socket.on('end', () => {
    socket.destroy();
  });
  socket.resume();
  socket.on('close', () => {
    open--;
    sockets.delete(socket);
  });
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(JSON.stringify({ event: 'bench.sink_ready', port }));
});
let statusSeq = 0;
process.on('SIGUSR2', () => {
  statusSeq++;
  console.log(JSON.stringify({ event: 'bench.sink_status', seq: statusSeq, open }));
});
process.once('SIGTERM', () => {
  for (const socket of sockets) socket.destroy();
  server.close();
});
