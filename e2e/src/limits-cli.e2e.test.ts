// Proves rate limits and source lists from the operator's side with the real binaries: a served
// store, a real enrolled client and the `portunus-server` CLI. A bad --allow-source exits locally
// with validation.source_cidr_invalid and sends nothing; a rule whose deny list holds the
// loopback source runs but refuses that source before any dial, one whose allow list holds it
// forwards, and list-rules shows both lists and the caps in its CAPS and SOURCES columns (and the
// lists in the JSON); `owner-cap set|get|list|delete` round-trip an envelope on the connected
// client, and an empty `set` or an unknown client is refused with nothing stored.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ERROR_CATALOGUE } from '@portunus/core';

import net from 'node:net';

import {
  FleetHarness,
  freePort,
  tcpEcho,
  tcpRoundTrip,
  type FleetServer,
} from './fleet.harness.js';
import type { CliResult } from './harness.js';

const h = new FleetHarness();
let server: FleetServer;
let target: Awaited<ReturnType<typeof tcpEcho>>;

function cli(args: readonly string[]): Promise<CliResult> {
  return h.run([...args, '--http-endpoint', server.http.hostPort], {
    env: { PORTUNUS_OPERATOR_TOKEN: server.auth.bearer },
  });
}

function assertFails(result: CliResult, code: keyof typeof ERROR_CATALOGUE): void {
  assert.equal(result.code, ERROR_CATALOGUE[code].exitCode, `${code}: ${result.stderr}`);
  assert.match(result.stderr, new RegExp(`^error: ${code.replaceAll('.', '\\.')}(:|$)`, 'm'));
  assert.equal(result.stdout, '');
}

async function ruleCount(): Promise<number> {
  const answer = await server.http.request<unknown[]>('GET', '/v1/rules', { auth: server.auth });
  return answer.body.length;
}

before(async () => {
  target = await tcpEcho();
  server = await h.fleetServer();
  await h.daemon(await h.enroll(server, 'edge-1'));
});

after(async () => {
  await h.close();
  await target.close();
});

/** How a connection to `port` from loopback ends: bytes echoed back, or refused (RST / close). */
function probe(port: number): Promise<'echoed' | 'refused'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', () => {
      socket.destroy();
      resolve('echoed');
    });
    socket.on('error', () => {
      resolve('refused');
    });
    socket.on('close', () => {
      resolve('refused');
    });
  });
}

describe('source lists and caps through the CLI', () => {
  it('refuses a bad CIDR locally, storing nothing', async () => {
    const port = await freePort();
    const result = await cli([
      'push-rule',
      'edge-1',
      String(port),
      '--target',
      `127.0.0.1:${target.port}`,
      '--allow-source',
      '10.0.0.1/8',
    ]);
    assertFails(result, 'validation.source_cidr_invalid');
    assert.equal(await ruleCount(), 0);
  });

  it('runs rules with source lists and caps, refusing a denied source before any dial', async () => {
    const denyPort = await freePort();
    const allowPort = await freePort();
    const denied = await cli([
      'push-rule',
      'edge-1',
      String(denyPort),
      '--target',
      `127.0.0.1:${target.port}`,
      '--deny-source',
      '127.0.0.0/8',
      '--deny-source',
      '::1',
    ]);
    assert.equal(denied.code, 0, denied.stderr);
    const allowed = await cli([
      'push-rule',
      'edge-1',
      String(allowPort),
      '--target',
      `127.0.0.1:${target.port}`,
      '--allow-source',
      '127.0.0.0/8',
      '--concurrent-connections',
      '5',
    ]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(await probe(denyPort), 'refused');
    assert.deepEqual(await tcpRoundTrip(allowPort, Buffer.from('hello')), Buffer.from('hello'));

    const listed = await cli(['list-rules']);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/\s{2,}/));
    assert.deepEqual(rows[0], [
      'ID',
      'CLIENT',
      'PORT',
      'TARGET',
      'SNI/PROXY',
      'CAPS',
      'SOURCES',
      'STATE',
    ]);
    const byPort = (port: number) => rows.find((row) => row[2] === String(port))?.slice(5);
    assert.deepEqual(byPort(denyPort), ['-', 'deny:127.0.0.0/8,::1/128', 'active']);
    assert.deepEqual(byPort(allowPort), ['concurrent_max=5', 'allow:127.0.0.0/8', 'active']);
    const json = await cli(['list-rules', '--format', 'json']);
    const rules = JSON.parse(json.stdout) as Record<string, unknown>[];
    const deny = rules.find((rule) => rule['listen_port'] === denyPort);
    assert.deepEqual(deny?.['denied_sources'], ['127.0.0.0/8', '::1/128']);
    assert.deepEqual(deny['allowed_sources'], []);
  });
});

describe('owner-cap on a connected client', () => {
  it('sets, reads, lists and deletes an envelope; refuses an empty set and an unknown client', async () => {
    assertFails(
      await cli(['owner-cap', 'set', 'edge-1', '_legacy']),
      'validation.rate_limit_no_caps_provided',
    );
    assertFails(await cli(['owner-cap', 'get', 'edge-1', '_legacy']), 'owner_rate_limit_not_found');
    const set = await cli(['owner-cap', 'set', 'edge-1', '_legacy', '--bandwidth-in-bps', '1000']);
    assert.equal(set.code, 0, set.stderr);
    assert.match(
      set.stdout,
      /^owner-cap set client=edge-1 owner=_legacy updated_at_unix_ms=\d+\n$/,
    );
    const got = await cli(['owner-cap', 'get', 'edge-1', '_legacy', '--format', 'json']);
    assert.equal(got.code, 0, got.stderr);
    assert.deepEqual((JSON.parse(got.stdout) as { rate_limit: unknown }).rate_limit, {
      bandwidth_in_bps: 1000,
    });
    const list = await cli(['owner-cap', 'list', 'edge-1']);
    assert.equal(list.code, 0, list.stderr);
    const owner = list.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/\s{2,}/))
      .find((row) => row[0] === '_legacy');
    assert.equal(owner?.[3], 'capped');
    const removed = await cli(['owner-cap', 'delete', 'edge-1', '_legacy']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, 'owner-cap deleted client=edge-1 owner=_legacy\n');
    assertFails(await cli(['owner-cap', 'get', 'edge-1', '_legacy']), 'owner_rate_limit_not_found');
    assertFails(await cli(['owner-cap', 'list', 'nowhere']), 'client_not_found');
  });
});
