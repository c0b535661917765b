// Proves that a backup alone carries the server's TLS identity: serve + a really enrolled client →
// backup → stop → restore into an empty dir at another path → serve there presents the same
// certificate fingerprint, and the same client (same bundle, no re-enrollment) reconnects and
// forwards traffic for a rule pushed by the restored server.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import {
  FleetHarness,
  countEvents,
  freePort,
  nextEvent,
  tcpEcho,
  tcpRoundTrip,
} from './fleet.harness.js';
import { fileMode } from './harness.js';

const h = new FleetHarness();
after(() => h.close());

describe('restore keeps the TLS identity', () => {
  it('a restored server presents the same certificate and the enrolled client reconnects', async () => {
    const target = await tcpEcho();
    after(() => target.close());
    const controlPort = await freePort();
    const token = crypto.randomBytes(32).toString('base64url');
    const first = await h.fleetServer(undefined, token, `127.0.0.1:${controlPort}`);
    const fingerprint = first.process.events.find((line) => line.event === 'server.listening')?.[
      'tls_fingerprint_sha256'
    ];
    assert.match(String(fingerprint), /^[0-9a-f]{64}$/);
    const bundle = await h.enroll(first, 'edge-1');
    const client = await h.daemon(bundle);

    const backupFile = path.join(h.dirs.make(), 'state.backup.db');
    const backup = await h.cli(['--data-dir', first.dataDir, 'backup', '--out', backupFile]);
    assert.equal(backup.code, 0, backup.stderr);
    first.process.kill('SIGTERM');
    assert.equal(await first.process.exited(), 0);

    const restoredDir = path.join(h.dirs.make(), 'elsewhere', 'data');
    const restore = await h.cli(['--data-dir', restoredDir, 'restore', '--in', backupFile]);
    assert.equal(restore.code, 0, restore.stderr);
    const complete = restore.events.find((line) => line.event === 'cli.restore_complete');
    assert.equal(complete?.['tls'], 'restored');
    assert.equal(fileMode(path.join(restoredDir, 'server.key')), 0o600);
    assert.deepEqual(
      fs.readFileSync(path.join(restoredDir, 'server.key')),
      fs.readFileSync(path.join(first.dataDir, 'server.key')),
    );

    const connectedBefore = countEvents(client, 'control.connected');
    const second = await h.fleetServer(restoredDir, token, `127.0.0.1:${controlPort}`);
    const listening = second.process.events.find((line) => line.event === 'server.listening');
    assert.equal(listening?.['tls_fingerprint_sha256'], fingerprint);
    await nextEvent(client, 'control.connected', connectedBefore);

    const listenPort = await freePort();
    const pushed = await second.http.request<{ status: string }>('POST', '/v1/rules', {
      auth: second.auth,
      body: {
        client: 'edge-1',
        listen_port: listenPort,
        target_host: '127.0.0.1',
        target_port: target.port,
      },
    });
    assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
    assert.equal(pushed.body.status, 'Active');
    const payload = crypto.randomBytes(4096);
    assert.ok((await tcpRoundTrip(listenPort, payload)).equals(payload));
    assert.doesNotMatch(client.stderr(), /pin_mismatch/);
  });
});
