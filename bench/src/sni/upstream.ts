/**
 * The TLS upstream of the SNI benchmark, in a process of its own so its handshakes do not share
 * the load generator's event loop: `node upstream.js <common-name>` serves a TLS echo on
 * 127.0.0.1 under a fresh self-signed certificate for that name and prints one JSON ready line
 * with its port; SIGTERM ends it. Uses test-support's TLS endpoints only.
 */
import { selfSignedCertificate, tlsEchoServer } from '@portunus/test-support';

const name = process.argv[2] ?? 'upstream.bench';
const server = await tlsEchoServer(await selfSignedCertificate(name));
console.log(JSON.stringify({ event: 'bench.sni_upstream_ready', port: server.port }));
// Closing the server (and its connections) empties the event loop, which ends the process.
process.on('SIGTERM', () => {
  void server.close();
});
