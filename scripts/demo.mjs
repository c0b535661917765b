// `npm run demo`: the whole product path on one machine, with the built binaries. Starts a server
// on a temp data dir (server.toml carries an operator token), enrolls a client with the printed
// command, starts a local TCP and UDP echo target, pushes a TCP and a UDP rule with the CLI,
// sends traffic through both, prints what `rule-stats` counted, and stops everything.
/* global fetch, Buffer, setTimeout, clearTimeout -- Node globals the lint config does not list */
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const root = path.resolve(import.meta.dirname, '..');
const SERVER = path.join(root, 'packages/server/dist/bin/portunus-server.js');
const CLIENT = path.join(root, 'packages/client/dist/bin/portunus-client.js');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-demo-'));
const dataDir = path.join(work, 'data');
const token = crypto.randomBytes(32).toString('base64url');
const children = [];

function say(text) {
  process.stdout.write(`\n== ${text}\n`);
}

/** Starts a binary and resolves with its first JSON log line whose event is `event`. */
function start(script, args, event) {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${path.basename(script)}: no ${event} in 60 s`)),
      60_000,
    );
    readline.createInterface({ input: child.stderr }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const parsed = JSON.parse(line);
      if (parsed.event === event) {
        clearTimeout(timer);
        resolve({ child, line: parsed });
      }
    });
    child.on('exit', (code) => reject(new Error(`${path.basename(script)} exited ${code}`)));
  });
}

function run(script, args) {
  const result = spawnSync(process.execPath, [script, ...args], {
    encoding: 'utf8',
    env: { ...process.env, PORTUNUS_OPERATOR_TOKEN: token },
  });
  if (result.status !== 0) throw new Error(`${args[0]} exited ${result.status}: ${result.stderr}`);
  return result.stdout.trim();
}

async function listen(server, host = '127.0.0.1') {
  await new Promise((resolve) => server.listen(0, host, resolve));
  return server.address().port;
}

async function freePort() {
  const probe = net.createServer();
  const port = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function main() {
  say(`server on ${dataDir}`);
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${token}"\n`, {
    mode: 0o600,
  });
  const { line: listening } = await start(
    SERVER,
    [
      '--data-dir',
      dataDir,
      'serve',
      '--control-listen',
      '127.0.0.1:0',
      '--operator-http-listen',
      '127.0.0.1:0',
      '--metrics-listen',
      '127.0.0.1:0',
    ],
    'server.listening',
  );
  const http = listening.listeners.operator_http;
  console.log(`control ${listening.listeners.control}, operator HTTP ${http}`);

  say('enroll a client');
  const enrollment = await fetch(`http://${http}/v1/client-enrollments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'demo-edge' }),
  }).then((response) => response.json());
  console.log(enrollment.command);
  const bundle = path.join(work, 'client.bundle.json');
  console.log(`bundle written to ${run(CLIENT, ['enroll', enrollment.uri, '--out', bundle])}`);
  await start(
    CLIENT,
    ['--bundle', bundle, '--stats-report-interval-secs', '1'],
    'control.connected',
  );
  console.log('client connected');

  say('echo targets');
  const tcpEcho = net.createServer((socket) => socket.pipe(socket));
  const tcpTarget = await listen(tcpEcho);
  const udpEcho = dgram.createSocket('udp4');
  udpEcho.on('message', (message, remote) => udpEcho.send(message, remote.port, remote.address));
  await new Promise((resolve) => udpEcho.bind(0, '127.0.0.1', resolve));
  const udpTarget = udpEcho.address().port;
  console.log(`tcp echo 127.0.0.1:${tcpTarget}, udp echo 127.0.0.1:${udpTarget}`);

  say('push a TCP and a UDP rule');
  const endpoint = ['--http-endpoint', http];
  const tcpPort = await freePort();
  const udpPort = await freePort();
  const tcpRule = run(SERVER, [
    'push-rule',
    'demo-edge',
    String(tcpPort),
    `127.0.0.1:${tcpTarget}`,
    ...endpoint,
  ]);
  const udpRule = run(SERVER, [
    'push-rule',
    'demo-edge',
    String(udpPort),
    `127.0.0.1:${udpTarget}`,
    '--protocol',
    'udp',
    ...endpoint,
  ]);
  console.log(run(SERVER, ['list-rules', ...endpoint]));

  say('traffic');
  const payload = crypto.randomBytes(64 * 1024);
  const echoed = await new Promise((resolve, reject) => {
    const socket = net.connect(tcpPort, '127.0.0.1');
    const chunks = [];
    let size = 0;
    socket.on('data', (chunk) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= payload.length) socket.end();
    });
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.write(payload);
  });
  console.log(
    `tcp: sent ${payload.length} bytes through :${tcpPort}, echoed ${echoed.length}, equal=${echoed.equals(payload)}`,
  );
  const udp = dgram.createSocket('udp4');
  const answers = [];
  udp.on('message', (message) => answers.push(message));
  for (let i = 0; i < 10; i++) udp.send(Buffer.alloc(100, i), udpPort, '127.0.0.1');
  await waitFor(() => answers.length >= 10, 'udp answers');
  udp.close();
  console.log(
    `udp: sent 10 datagrams of 100 bytes through :${udpPort}, got ${answers.length} back`,
  );

  say('rule-stats');
  await waitFor(
    () => statsLine(tcpRule, endpoint).includes(`bytes_in=${payload.length}`),
    'tcp stats',
  );
  await waitFor(() => statsLine(udpRule, endpoint).includes('datagrams_in=10'), 'udp stats');
  console.log(statsLine(tcpRule, endpoint));
  console.log(statsLine(udpRule, endpoint));
  tcpEcho.close();
  udpEcho.close();
}

function statsLine(ruleId, endpoint) {
  const result = spawnSync(process.execPath, [SERVER, 'rule-stats', ruleId, ...endpoint], {
    encoding: 'utf8',
    env: { ...process.env, PORTUNUS_OPERATOR_TOKEN: token },
  });
  return result.status === 0 ? result.stdout.trim() : '';
}

async function waitFor(check, what) {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`demo: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let status = 0;
try {
  await main();
  say('done');
} catch (error) {
  console.error(`demo failed: ${error.message}`);
  status = 1;
} finally {
  for (const child of children.reverse()) child.kill('SIGTERM');
  await Promise.all(
    children.map((child) =>
      child.exitCode === null ? new Promise((resolve) => child.on('exit', resolve)) : undefined,
    ),
  );
  fs.rmSync(work, { recursive: true, force: true });
}
process.exit(status);
