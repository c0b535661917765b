/**
 * The fallback HTTP target of the connection-rate section when nginx is not installed:
 * `node http-target.js`, a plain node:http server on 127.0.0.1:0 answering every request with
 * 200 "hello\n" (the body nginx is configured with). Prints its port in a ready line.
 */
import http from 'node:http';

const BODY = Buffer.from('hello\n');
const server = http.createServer({ keepAliveTimeout: 60_000 }, (_request, response) => {
  response.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
  response.end(BODY);
});
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  console.log(JSON.stringify({ event: 'bench.http_ready', port }));
});
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close();
});
