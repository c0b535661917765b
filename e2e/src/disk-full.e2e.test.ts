// Proves the store's answer to a full disk end to end, on a real ext4 filesystem (a small loop
// image, so "full" is real ENOSPC/SQLITE_FULL, not a simulation): every write answers promptly
// with 507 store_full, reads keep working, one store.disk_full event per episode and one
// store.disk_space_recovered when space returns, writes succeed again at once, nothing
// acknowledged is lost and the file passes integrity_check. Needs root (losetup, mount).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { Harness, OperatorHttp, inspect, listenersOf } from './harness.js';

const IMAGE_MIB = 16;
/** A write must answer well before this; today's bug was a first write hanging for > 10 s. */
const PROMPT_MS = 8_000;

function commandExists(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to attach and mount a loop device';
  for (const tool of ['losetup', 'mount', 'umount', 'mkfs.ext4']) {
    if (!commandExists(tool)) return `${tool} is not installed`;
  }
  return false;
}

/** A mounted ext4 image and how to take it down again, in reverse order, step by step. */
class LoopFilesystem {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-diskfull-'));
  readonly image = path.join(this.root, 'fs.img');
  readonly mountPoint = path.join(this.root, 'mnt');
  private device: string | undefined;
  private mounted = false;

  attach(): void {
    fs.mkdirSync(this.mountPoint);
    execFileSync('truncate', ['-s', `${IMAGE_MIB}M`, this.image]);
    // -m 0: no blocks reserved for root (the server runs as root, it would use them anyway).
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', this.image]);
    this.device = execFileSync('losetup', ['-f', '--show', this.image], {
      encoding: 'utf8',
    }).trim();
    execFileSync('mount', ['-t', 'ext4', this.device, this.mountPoint]);
    this.mounted = true;
  }

  detach(): void {
    const errors: unknown[] = [];
    const step = (run: () => void): void => {
      try {
        run();
      } catch (error) {
        errors.push(error);
      }
    };
    if (this.mounted) {
      step(() => {
        execFileSync('umount', [this.mountPoint]);
      });
    }
    this.mounted = false;
    const device = this.device;
    if (device !== undefined) {
      step(() => {
        execFileSync('losetup', ['-d', device]);
      });
    }
    this.device = undefined;
    step(() => {
      fs.rmSync(this.root, { recursive: true, force: true });
    });
    if (errors.length > 0) throw new AggregateError(errors, 'cleaning up the loop filesystem');
  }
}

/** Fills the filesystem to the last block with one file (ENOSPC ends it). */
function fill(file: string): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (let size = chunk.length; size >= 512;) {
      try {
        fs.writeSync(fd, chunk, 0, size);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
        size = size / 2;
      }
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const skip = skipReason();
const harness = new Harness();
const loop = new LoopFilesystem();
after(async () => {
  await harness.close();
  loop.detach();
});

describe('store on a full disk', { skip }, () => {
  it('answers 507 store_full promptly, keeps reads, recovers when space returns, loses nothing', async () => {
    loop.attach();
    const dataDir = path.join(loop.mountPoint, 'data');
    const generated = await harness.run(['gen-token']);
    assert.equal(generated.code, 0, generated.stderr);
    const token = generated.stdout.trim();
    fs.mkdirSync(dataDir, { mode: 0o700 });
    fs.writeFileSync(path.join(dataDir, 'server.toml'), `operator_token = "${token}"\n`, {
      mode: 0o600,
    });
    const server = await harness.serveWithin(dataDir);
    const http = new OperatorHttp(listenersOf(server).operator_http);
    const auth = { bearer: token };
    const acknowledged: string[] = [];

    // A deadline per write (not a duration assertion): a hung write fails the test by name.
    const create = async (label: string): Promise<{ status: number; code?: string }> => {
      const response = await fetch(`${http.origin}/v1/credentials`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ label }),
        signal: AbortSignal.timeout(PROMPT_MS),
      }).catch((error: unknown) => {
        throw new Error(`POST /v1/credentials (${label}) did not answer within ${PROMPT_MS} ms`, {
          cause: error,
        });
      });
      const body = (await response.json()) as {
        credential_id?: string;
        error?: { code?: string };
      };
      if (response.status === 201) acknowledged.push(String(body.credential_id));
      const code = body.error?.code;
      return { status: response.status, ...(code !== undefined ? { code } : {}) };
    };

    assert.equal((await create('before-full')).status, 201);
    const filler = path.join(loop.mountPoint, 'filler');
    fill(filler);

    // Writes until the store runs out of room: each is 201 (the WAL still had room) or 507.
    const answers: Array<{ status: number; code?: string }> = [];
    for (let index = 0; index < 200; index += 1) {
      const answer = await create(`full-${index}`);
      answers.push(answer);
      if (answers.filter((one) => one.status === 507).length >= 5) break;
    }
    for (const answer of answers) {
      assert.ok(
        answer.status === 201 || (answer.status === 507 && answer.code === 'store_full'),
        JSON.stringify(answers.slice(-10)),
      );
    }
    assert.ok(
      answers.some((answer) => answer.status === 507),
      `no 507 in ${answers.length} writes`,
    );

    // Reads keep working on a full disk.
    const listed = await http.request<unknown[]>('GET', '/v1/credentials', { auth });
    assert.equal(listed.status, 200);
    const fullEvents = server.events.filter((line) => line.event === 'store.disk_full');
    assert.equal(fullEvents.length, 1, 'one store.disk_full per episode');

    fs.rmSync(filler);
    assert.equal((await create('after-free')).status, 201);
    await server.waitForEvent('store.disk_space_recovered');
    assert.equal(server.events.filter((line) => line.event === 'store.disk_full').length, 1);
    assert.equal((await create('after-free-2')).status, 201);

    server.kill('SIGTERM');
    assert.equal(await server.exited(), 0);
    const db = path.join(dataDir, 'state.db');
    const [integrity, ids] = inspect(db, (handle) => [
      handle.pragma('integrity_check', { simple: true }),
      new Set(handle.prepare('SELECT credential_id FROM credentials').pluck().all() as string[]),
    ]);
    assert.equal(integrity, 'ok');
    for (const id of acknowledged) assert.ok(ids.has(id), `acknowledged ${id} was lost`);
  });
});
