// The proof behind `synchronous=FULL` (DESIGN.md §4): every write the operator API answered 2xx
// for survives a power cut. The data dir lives on a real ext4 filesystem whose disk loses every
// unflushed write at the cut (PowerLossDisk in packages/test-support); after the cut, a restart
// finds every acknowledged user, grant, grant deletion, credential, rule and audit row, the
// store passes `PRAGMA integrity_check`, and serve boots. Self-checks first show the cut has
// teeth: a file written without fsync through the same stack is gone afterwards, and SQLite
// itself loses committed rows at the cut with synchronous=OFF while FULL keeps them all.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import Database from 'better-sqlite3';

import {
  PowerLossDisk,
  powerLossUnsupportedReason,
  selfCheck,
  type RunningProcess,
} from '@portunus/test-support';

import { FleetHarness, freePort, type FleetServer } from './fleet.harness.js';
import { SLOW_STEP_MS, inspect, type OperatorHttp } from './harness.js';

const unsupported = powerLossUnsupportedReason();
const h = new FleetHarness();
const disks: PowerLossDisk[] = [];

after(async () => {
  // Processes first (they hold the mount), then the mounts and loop devices, then the temp dirs
  // (removing them while still mounted would reach into the image).
  await h.processes.killAll();
  for (const disk of disks.splice(0)) await disk.close();
  h.dirs.cleanup();
});

async function newDisk(): Promise<PowerLossDisk> {
  const disk = await PowerLossDisk.create(h.processes, h.dirs.make('portunus-power-loss-'));
  disks.push(disk);
  return disk;
}

type Json = Record<string, unknown>;

/** What the API acknowledged (answered 2xx for) before the cut. */
interface Acknowledged {
  users: string[];
  grants: string[];
  deletedGrants: string[];
  credentials: string[];
  rules: number[];
  audit: Json[];
}

async function created(
  http: OperatorHttp,
  auth: { bearer: string },
  urlPath: string,
  body: Json,
): Promise<Json> {
  const answer = await http.request('POST', urlPath, { auth, body });
  assert.equal(answer.status, 201, `${urlPath}: ${JSON.stringify(answer.body)}`);
  return answer.body;
}

/** Many small acknowledged writes of every kind, each its own transaction and fsync. */
async function writeWorkload(server: FleetServer, rulePorts: number[]): Promise<Acknowledged> {
  const { http, auth } = server;
  const acked: Acknowledged = {
    users: [],
    grants: [],
    deletedGrants: [],
    credentials: [],
    rules: [],
    audit: [],
  };
  for (let index = 0; index < 40; index++) {
    const userId = `user${index}`;
    await created(http, auth, '/v1/users', {
      user_id: userId,
      display_name: `User ${index}`,
      initial_password: 'correct horse battery staple',
    });
    acked.users.push(userId);
    const grant = await created(http, auth, '/v1/grants', {
      user_id: userId,
      client: '*',
      listen_port_start: 20_000 + index,
      listen_port_end: 20_000 + index,
    });
    acked.grants.push(String(grant['grant_id']));
    if (index % 4 === 3) {
      // An acknowledged delete must stay deleted.
      const victim = acked.grants.shift()!;
      const answer = await http.request('DELETE', `/v1/grants/${victim}`, { auth });
      assert.ok(answer.status >= 200 && answer.status < 300, JSON.stringify(answer.body));
      acked.deletedGrants.push(victim);
    }
    if (index % 5 === 0) {
      const credential = await created(http, auth, '/v1/credentials', { label: `ci-${index}` });
      acked.credentials.push(String(credential['credential_id']));
    }
  }
  for (const port of rulePorts) {
    const rule = await created(http, auth, '/v1/rules', {
      client: 'edge-1',
      target_host: '127.0.0.1',
      listen_port: port,
      target_port: 9,
    });
    acked.rules.push(Number(rule['rule_id']));
  }
  // Every row the audit log showed before the cut is committed, so it must survive too.
  acked.audit = await http.auditAll(auth);
  return acked;
}

async function list<T = Json>(server: FleetServer, urlPath: string): Promise<T[]> {
  const answer = await server.http.request<T[]>('GET', urlPath, { auth: server.auth });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body;
}

// Every step has its own deadline (SLOW_STEP_MS, 60 s per mount/fsck command); this bounds the whole.
describe('power loss', { skip: unsupported ?? false, timeout: 300_000 }, () => {
  it('the harness cut drops data written without fsync and keeps fsynced data', async () => {
    const disk = await newDisk();
    const result = await selfCheck(disk);
    assert.equal(result.synced, 'synced data');
    assert.notEqual(
      result.unsynced,
      'unsynced data',
      'a file never fsynced survived the cut: the cut does not drop unflushed writes',
    );
  });

  it('has teeth against SQLite itself: committed rows survive with synchronous=FULL, not OFF', async () => {
    const rows = 200;
    const survivors = async (synchronous: 'FULL' | 'OFF'): Promise<number> => {
      const disk = await newDisk();
      const file = path.join(disk.mountDir, 'state.db');
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
      db.exec('CREATE TABLE t (n INTEGER NOT NULL)');
      const insert = db.prepare('INSERT INTO t (n) VALUES (?)');
      for (let n = 0; n < rows; n++) insert.run(n); // each its own committed transaction
      await disk.cut();
      db.close(); // its checkpoint lands after the cut, so it is discarded like the rest
      const restart = await disk.restart();
      assert.ok(restart.fsckCode <= 1, restart.fsckOutput);
      try {
        return inspect(file, (reopened) =>
          Number(reopened.prepare('SELECT count(*) FROM t').pluck().get()),
        );
      } catch {
        return 0; // no file, no table, or not a database: every row is gone
      }
    };
    assert.equal(await survivors('FULL'), rows);
    assert.ok(
      (await survivors('OFF')) < rows,
      'synchronous=OFF lost nothing: the cut has no teeth',
    );
  });

  it('keeps every acknowledged write across a power cut, and the store is clean', async () => {
    const disk = await newDisk();
    const dataDir = path.join(disk.mountDir, 'data');
    const server = await h.fleetServer(dataDir);
    const bundle = await h.enroll(server, 'edge-1');
    const client: RunningProcess = await h.daemon(bundle);
    const rulePorts = [await freePort(), await freePort(), await freePort()];
    const acked = await writeWorkload(server, [...new Set(rulePorts)]);

    // The cut: the disk stops first, then the machine (every process on it) dies.
    await disk.cut();
    server.process.kill('SIGKILL');
    client.kill('SIGKILL');
    await server.process.exited(SLOW_STEP_MS);
    await client.exited(SLOW_STEP_MS);
    const restart = await disk.restart();
    assert.ok(restart.fsckCode <= 1, `e2fsck failed:\n${restart.fsckOutput}`);
    assert.ok(restart.flushes > 0, 'no fsync reached the disk: the store was not on it');

    // Same token; rewriting server.toml is the operator's own step, not part of the proof.
    const reopened = await h.fleetServer(dataDir, server.auth.bearer);
    const again = reopened.process;

    const users = new Set((await list(reopened, '/v1/users')).map((user) => user['user_id']));
    for (const userId of acked.users) assert.ok(users.has(userId), `user ${userId} was lost`);
    const grants = new Set((await list(reopened, '/v1/grants')).map((grant) => grant['grant_id']));
    for (const grantId of acked.grants) assert.ok(grants.has(grantId), `grant ${grantId} lost`);
    for (const grantId of acked.deletedGrants) {
      assert.ok(!grants.has(grantId), `deleted grant ${grantId} came back`);
    }
    const credentials = new Set(
      (await list(reopened, '/v1/credentials')).map((credential) => credential['credential_id']),
    );
    for (const id of acked.credentials) assert.ok(credentials.has(id), `credential ${id} lost`);
    const rules = new Set((await list(reopened, '/v1/rules')).map((rule) => rule['id']));
    for (const ruleId of acked.rules) assert.ok(rules.has(ruleId), `rule ${ruleId} was lost`);
    const audit = await reopened.http.auditAll(reopened.auth);
    // Audit entries carry no id: compare them as a multiset of their JSON.
    const auditAfter = new Map<string, number>();
    for (const entry of audit) {
      const key = JSON.stringify(entry);
      auditAfter.set(key, (auditAfter.get(key) ?? 0) + 1);
    }
    for (const entry of acked.audit) {
      const key = JSON.stringify(entry);
      const left = auditAfter.get(key) ?? 0;
      assert.ok(left > 0, `audit row lost: ${key}`);
      auditAfter.set(key, left - 1);
    }
    // One allowed audit row per acknowledged mutation (the audit log is written before the 2xx).
    const mutations =
      acked.users.length +
      acked.grants.length +
      2 * acked.deletedGrants.length +
      acked.credentials.length +
      acked.rules.length;
    const allowed = acked.audit.filter(
      (entry) => entry['outcome'] === 'allow' && entry['method'] !== 'GET',
    );
    assert.ok(allowed.length >= mutations, `${allowed.length} allowed rows < ${mutations}`);

    again.kill('SIGTERM');
    assert.equal(await again.exited(SLOW_STEP_MS), 0, again.stderr());
    const dbFile = path.join(dataDir, 'state.db');
    assert.ok(fs.existsSync(dbFile));
    assert.equal(
      inspect(dbFile, (db) => db.pragma('integrity_check', { simple: true })),
      'ok',
    );
  });
});
