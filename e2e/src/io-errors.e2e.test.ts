// Proves that a write whose fsync or write failed is never acknowledged, and that an acknowledged
// write is never lost, with the real server under libfiu (fiu-run -x preloads wrappers of the
// libc calls better-sqlite3's statically linked SQLite makes; fiu-ctrl switches faults on and off
// in the running process): failing fsync/fdatasync and pwrite answer 503 store_io_error, reads
// keep working, the server keeps serving once the faults stop, and after a SIGKILL and a restart
// every acknowledged row is there and integrity_check is ok.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { SERVER_BIN } from '@portunus/test-support';

import { EPHEMERAL_LISTENERS, Harness, OperatorHttp, inspect, listenersOf } from './harness.js';

/** A write must answer well before this (a deadline, not a measured duration). */
const PROMPT_MS = 8_000;
/**
 * The errno the faults set (failinfo): without it libfiu picks one of the call's errnos at random,
 * and an ENOSPC from pwrite is a full disk (store_full), which is another test's subject.
 */
const EIO = 5;

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = ['fiu-run', 'fiu-ctrl'].every(commandExists)
  ? false
  : 'libfiu is not installed (Debian fiu-utils, libfiu0; .ci/run installs them)';

const harness = new Harness();
after(() => harness.close());

interface Answer {
  status: number;
  code?: string;
}

describe('store under failing fsync and write', { skip }, () => {
  it('never acknowledges a write whose fsync or pwrite failed, and never loses an acknowledged one', async () => {
    const generated = await harness.run(['gen-token']);
    assert.equal(generated.code, 0, generated.stderr);
    const token = generated.stdout.trim();
    const dataDir = harness.newDataDir();
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${token}"\n`, {
      mode: 0o600,
    });
    // fiu-run execs node, so the child's pid is the server's: fiu-ctrl addresses it. Its control
    // fifos go in a temp dir of ours, so a killed server leaves none behind in /tmp.
    const ctrlPrefix = path.join(harness.dirs.make(), 'fiu-ctrl');
    const server = harness.processes.spawn('fiu-run', [
      '-x',
      '-f',
      ctrlPrefix,
      process.execPath,
      SERVER_BIN,
      '--data-dir',
      dataDir,
      'serve',
      ...EPHEMERAL_LISTENERS,
    ]);
    await server.waitForEvent('server.listening', { timeoutMs: 60_000 });
    const pid = server.child.pid;
    assert.ok(pid !== undefined);
    const fiu = (command: string): void => {
      execFileSync('fiu-ctrl', ['-f', ctrlPrefix, '-c', command, String(pid)]);
    };
    const http = new OperatorHttp(listenersOf(server).operator_http);
    const acknowledged: string[] = [];
    const create = async (label: string): Promise<Answer> => {
      const response = await fetch(`${http.origin}/v1/credentials`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ label }),
        signal: AbortSignal.timeout(PROMPT_MS),
      });
      const body = (await response.json()) as {
        credential_id?: string;
        error?: { code?: string };
      };
      if (response.status >= 200 && response.status < 300) {
        acknowledged.push(String(body.credential_id));
      }
      const code = body.error?.code;
      return { status: response.status, ...(code !== undefined ? { code } : {}) };
    };
    const refused = (answer: Answer): boolean =>
      answer.status === 503 && answer.code === 'store_io_error';

    assert.equal((await create('healthy')).status, 201);

    for (const fault of ['posix/io/sync/*', 'posix/io/rw/pwrite']) {
      fiu(`enable name=${fault},failinfo=${EIO}`);
      const answers = [await create(`${fault}-1`), await create(`${fault}-2`)];
      assert.ok(answers.every(refused), `${fault}: ${JSON.stringify(answers)}`);
      const read = await http.request('GET', '/v1/credentials', { auth: { bearer: token } });
      assert.equal(read.status, 200, `reads keep working under ${fault}`);
      fiu(`disable name=${fault}`);
      assert.equal((await create(`${fault}-after`)).status, 201, `writes resume after ${fault}`);
    }

    // Faults at random: every answer is an acknowledgement or store_io_error, nothing else.
    fiu(`enable_random name=posix/io/sync/*,probability=0.5,failinfo=${EIO}`);
    const mixed: Answer[] = [];
    for (let index = 0; index < 20; index += 1) mixed.push(await create(`mixed-${index}`));
    fiu('disable name=posix/io/sync/*');
    assert.ok(
      mixed.every((answer) => answer.status === 201 || refused(answer)),
      JSON.stringify(mixed),
    );
    assert.equal((await create('final')).status, 201);
    assert.ok(server.events.some((line) => line.event === 'store.io_error'));

    // A crash, then a plain restart: every acknowledged credential is there.
    server.kill('SIGKILL');
    await server.exited();
    const restarted = await harness.serveWithin(dataDir);
    const listed = await new OperatorHttp(listenersOf(restarted).operator_http).request<
      Array<{ credential_id: string }>
    >('GET', '/v1/credentials', { auth: { bearer: token } });
    assert.equal(listed.status, 200);
    const served = new Set(listed.body.map((row) => row.credential_id));
    for (const id of acknowledged) assert.ok(served.has(id), `acknowledged ${id} was lost`);
    restarted.kill('SIGTERM');
    assert.equal(await restarted.exited(), 0);
    const integrity = inspect(path.join(dataDir, 'state.db'), (db) =>
      db.pragma('integrity_check', { simple: true }),
    );
    assert.equal(integrity, 'ok');
  });
});
