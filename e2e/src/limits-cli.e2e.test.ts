// Proves rate limits and source lists from the operator's side with the real binaries: a served
// store, a real enrolled client (of a version older than rate limits and source lists) and the
// `portunus-server` CLI. A bad --allow-source exits locally with validation.source_cidr_invalid,
// a rule with source lists or caps is refused by the capability gate (nothing stored), a plain
// rule runs and shows `-` in list-rules' CAPS and SOURCES columns and `[]` lists in its JSON,
// `owner-cap list` shows its owner uncapped, `owner-cap set` to this client is refused with
// rate_limit_unsupported_by_client and stores nothing, and `owner-cap get|delete` answer
// not-found and idempotent success.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { ERROR_CATALOGUE } from '@portunus/core';

import { FleetHarness, tcpEcho, type FleetServer } from './fleet.harness.js';
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

describe('source lists and caps through the CLI', () => {
  it('refuses a bad CIDR locally and a gated rule at the server, storing nothing', async () => {
    const push = (...flags: string[]) =>
      cli(['push-rule', 'edge-1', '18201', '--target', `127.0.0.1:${target.port}`, ...flags]);
    assertFails(await push('--allow-source', '10.0.0.1/8'), 'validation.source_cidr_invalid');
    assertFails(await push('--deny-source', '10.0.0.0/8'), 'source_lists_unsupported_by_client');
    assertFails(await push('--concurrent-connections', '5'), 'rate_limit_unsupported_by_client');
    assert.equal(await ruleCount(), 0);
  });

  it('runs a plain rule and shows empty CAPS and SOURCES, and [] lists in the JSON', async () => {
    const pushed = await cli(['push-rule', 'edge-1', '18202', `127.0.0.1:${target.port}`]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const listed = await cli(['list-rules']);
    assert.equal(listed.code, 0, listed.stderr);
    const [header, row] = listed.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/\s{2,}/));
    assert.deepEqual(header, ['ID', 'CLIENT', 'PORT', 'TARGET', 'CAPS', 'SOURCES', 'STATE']);
    assert.deepEqual(row?.slice(4), ['-', '-', 'active']);
    const json = await cli(['list-rules', '--format', 'json']);
    const [rule] = JSON.parse(json.stdout) as Record<string, unknown>[];
    assert.deepEqual(rule?.['allowed_sources'], []);
    assert.deepEqual(rule['denied_sources'], []);
  });
});

describe('owner-cap against a client too old for envelopes', () => {
  it('lists the owner, refuses set with nothing stored, and answers get and delete', async () => {
    const list = await cli(['owner-cap', 'list', 'edge-1']);
    assert.equal(list.code, 0, list.stderr);
    assert.deepEqual(
      list.stdout
        .trimEnd()
        .split('\n')
        .map((line) => line.split(/\s{2,}/)),
      [
        ['OWNER', 'RULES', 'CAP', 'STATUS'],
        ['_legacy', '1', '-', 'uncapped'],
      ],
    );
    assertFails(
      await cli(['owner-cap', 'set', 'edge-1', '_legacy', '--bandwidth-in-bps', '1000']),
      'rate_limit_unsupported_by_client',
    );
    assertFails(
      await cli(['owner-cap', 'set', 'edge-1', '_legacy']),
      'validation.rate_limit_no_caps_provided',
    );
    assertFails(await cli(['owner-cap', 'get', 'edge-1', '_legacy']), 'owner_rate_limit_not_found');
    const removed = await cli(['owner-cap', 'delete', 'edge-1', '_legacy']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, 'owner-cap deleted client=edge-1 owner=_legacy\n');
    assertFails(await cli(['owner-cap', 'list', 'nowhere']), 'client_not_found');
  });
});
