/**
 * The baseline of the operator benchmark, run as its own process like the real server: a bare
 * fastify 5 app with no plugins, hooks, auth, store or logging, on a loopback port the system
 * picks. `node bare-server.js <rules.json>` reads the body the real server answered to
 * GET /v1/rules and serves:
 *
 * - GET /bare/rules: that array, parsed once at start and serialized by fastify on every request,
 *   as a route with the data already in memory would;
 * - GET /bare/rules-raw: the same bytes, serialized once at start (the floor: no serialization);
 * - GET /bare/me: a small constant object shaped like GET /v1/users/me;
 * - POST /bare/grants: 201 echoing the parsed JSON body.
 *
 * It prints one JSON line `{"event":"bare.listening","address":"127.0.0.1:<port>",…}` on
 * stdout and closes on SIGTERM or SIGINT.
 */
import fs from 'node:fs';

import Fastify from 'fastify';

const [payloadFile] = process.argv.slice(2);
if (payloadFile === undefined) throw new Error('usage: node bare-server.js <rules.json>');
const rulesText = fs.readFileSync(payloadFile, 'utf8');
const rules = JSON.parse(rulesText) as unknown[];
const me = { user_id: 'bench-admin', role: 'superadmin', display_name: 'Bench admin' };

const app = Fastify({ logger: false });
app.get('/bare/rules', () => rules);
app.get('/bare/rules-raw', (_request, reply) =>
  reply.header('content-type', 'application/json; charset=utf-8').send(rulesText),
);
app.get('/bare/me', () => me);
app.post('/bare/grants', (request, reply) => reply.status(201).send(request.body));

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
if (address === null || typeof address === 'string') throw new Error('no TCP address');
process.stdout.write(
  `${JSON.stringify({
    event: 'bare.listening',
    address: `127.0.0.1:${address.port}`,
    pid: process.pid,
    fastify: app.version,
  })}\n`,
);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    void app.close();
  });
}
