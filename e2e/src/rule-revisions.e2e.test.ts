// Proves live rule edits and rule-set revisions with real processes: the spawned server, the real
// enrolled client and the real CLI. push-rule, then edit-rule under the same id while a loop keeps
// connecting to the port (not one connection refused), rules history naming who did what, rules
// diff naming the changed field, rules restore bringing the old definition back, a removed rule
// recreated under its old id by a restore with traffic flowing again, and a self-loop refused.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';

import {
  FleetHarness,
  freePort,
  tcpRoundTrip,
  waitUntil,
  type FleetServer,
} from './fleet.harness.js';
import { listenersOf, type CliResult } from './harness.js';

const h = new FleetHarness();
let server: FleetServer;
let endpoint: string;

/** A TCP echo target that counts the connections it accepted, so a test can tell two apart. */
async function countingEcho(): Promise<{
  port: number;
  accepted: () => number;
  close: () => Promise<void>;
}> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const echo = net.createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  return {
    port: (echo.address() as net.AddressInfo).port,
    accepted: () => accepted,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        echo.close(() => {
          resolve();
        });
      }),
  };
}

let first: Awaited<ReturnType<typeof countingEcho>>;
let second: Awaited<ReturnType<typeof countingEcho>>;

function cli(args: readonly string[]): Promise<CliResult> {
  return h.run([...args, '--http-endpoint', endpoint], {
    env: { PORTUNUS_OPERATOR_TOKEN: server.auth.bearer },
  });
}

function ok(result: CliResult, what: string): string {
  assert.equal(result.code, 0, `${what}: ${result.stderr}`);
  return result.stdout;
}

async function storedRule(ruleId: string): Promise<Record<string, unknown>> {
  const answer = await server.http.request('GET', `/v1/rules/${ruleId}`, { auth: server.auth });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

/** Revision numbers and actions from `rules history --format json`, newest first. */
async function history(): Promise<{ revision: number; actor: string; action: string }[]> {
  const out = ok(await cli(['rules', 'history', '--format', 'json']), 'rules history');
  return (JSON.parse(out) as { revisions: { revision: number; actor: string; action: string }[] })
    .revisions;
}

before(async () => {
  first = await countingEcho();
  second = await countingEcho();
  server = await h.fleetServer();
  endpoint = listenersOf(server.process).operator_http;
  // The real client daemon; the harness stops it in close().
  await h.daemon(await h.enroll(server, 'edge-1'));
});

after(async () => {
  await h.close();
  await first.close();
  await second.close();
});

describe('live edits and rule-set revisions, end to end', () => {
  let port: number;
  let ruleId: string;

  it('pushes a rule and edits it under the same id with no connection refused meanwhile', async () => {
    port = await freePort();
    ruleId = ok(
      await cli(['push-rule', 'edge-1', String(port), `127.0.0.1:${first.port}`]),
      'push-rule',
    ).trim();
    assert.match(ruleId, /^\d+$/);
    const payload = Buffer.from('before the edit');
    assert.deepEqual(await tcpRoundTrip(port, payload), payload);

    // Traffic keeps flowing while the edit is in flight; every round trip must succeed.
    const loop = { running: true };
    let trips = 0;
    const failures: string[] = [];
    const traffic = (async () => {
      while (loop.running) {
        const bytes = Buffer.from(`trip ${trips}`);
        try {
          assert.deepEqual(await tcpRoundTrip(port, bytes), bytes);
        } catch (error) {
          failures.push(String(error));
        }
        trips += 1;
      }
    })();
    const edited = await cli([
      'edit-rule',
      ruleId,
      'edge-1',
      String(port),
      `127.0.0.1:${second.port}`,
    ]);
    // A few more trips after the answer, so the window around the swap is covered too.
    const after = trips;
    await waitUntil(() => trips >= after + 3, 'traffic after the edit');
    loop.running = false;
    await traffic;
    assert.equal(ok(edited, 'edit-rule'), `rule_id=${ruleId} status=Active\n`);
    assert.deepEqual(failures, [], `${failures.length} of ${trips} round trips failed`);

    const rule = await storedRule(ruleId);
    assert.equal(rule['id'], Number(ruleId));
    assert.equal(rule['target_port'], second.port);
    assert.deepEqual(rule['state'], { kind: 'active' });

    // The client replaces a running rule in place (same listener, so no refused connection
    // above): once the edit is answered Active, a new connection reaches the second target.
    const seen = { first: first.accepted(), second: second.accepted() };
    const probe = Buffer.from('after the edit');
    assert.deepEqual(await tcpRoundTrip(port, probe), probe);
    assert.deepEqual(
      { first: first.accepted(), second: second.accepted() },
      { first: seen.first, second: seen.second + 1 },
    );
  });

  it('lists the push and the edit in the history, with who made them', async () => {
    const revisions = await history();
    assert.deepEqual(
      revisions.map((revision) => [revision.action, revision.actor]),
      [
        ['edit', '_legacy'],
        ['push', '_legacy'],
      ],
    );
    const text = ok(await cli(['rules', 'history']), 'rules history');
    assert.match(text, /^REVISION\s+AT\s+ACTOR\s+ACTION\s+SUMMARY$/m);
    assert.match(
      text,
      new RegExp(`^2\\s+\\S+Z\\s+_legacy\\s+edit\\s+edit rule ${ruleId} \\(targets\\)`, 'm'),
    );
  });

  it('diffs the first revision against now, and restores it', async () => {
    const diff = ok(await cli(['rules', 'diff', '1']), 'rules diff');
    assert.equal(
      diff,
      'revision=1 head=2\n' +
        `~ ${ruleId} edge-1 tcp ${port} -> 127.0.0.1:${second.port}\n` +
        `    targets: [{"host":"127.0.0.1","port":${first.port},"priority":0,"proxy_protocol":null}] -> ` +
        `[{"host":"127.0.0.1","port":${second.port},"priority":0,"proxy_protocol":null}]\n`,
    );
    const restored = ok(await cli(['rules', 'restore', '1']), 'rules restore');
    assert.equal(
      restored,
      `revision=3 restored_to=1 removed=- pushed=- edited=${ruleId} failed=0\n`,
    );
    assert.equal((await storedRule(ruleId))['target_port'], first.port);
    assert.equal(ok(await cli(['rules', 'diff', '1']), 'rules diff'), 'revision=1 head=3\n');
    const payload = Buffer.from('restored');
    assert.deepEqual(await tcpRoundTrip(port, payload), payload);
  });

  it('recreates a removed rule under its old id with a restore, and traffic flows again', async () => {
    ok(await cli(['remove-rule', ruleId]), 'remove-rule');
    await waitUntil(
      () =>
        tcpRoundTrip(port, Buffer.from('x'), 1_000).then(
          () => false,
          () => true,
        ),
      'the listener to go away',
    );
    assert.deepEqual((await history()).map((revision) => revision.action).slice(0, 2), [
      'remove',
      'restore',
    ]);
    const restored = ok(await cli(['rules', 'restore', '3']), 'rules restore');
    assert.equal(
      restored,
      `revision=5 restored_to=3 removed=- pushed=${ruleId} edited=- failed=0\n`,
    );
    const rule = await storedRule(ruleId);
    assert.equal(rule['target_port'], first.port);
    const payload = Buffer.from('recreated');
    assert.deepEqual(
      await waitUntil(
        () => tcpRoundTrip(port, payload, 1_000).catch(() => undefined),
        'traffic through the recreated rule',
      ),
      payload,
    );
  });

  it('refuses a self-loop and an unknown revision with their codes, storing nothing', async () => {
    const before = (await history()).length;
    const self = await cli(['push-rule', 'edge-1', String(port), `localhost:${port}`]);
    assert.equal(self.code, 2, self.stderr);
    assert.match(self.stderr, /^error: validation\.target_is_self: /m);
    const missing = await cli(['rules', 'diff', '99']);
    assert.equal(missing.code, 5);
    assert.match(missing.stderr, /^error: revision_not_found: /m);
    assert.equal((await history()).length, before);
  });
});
