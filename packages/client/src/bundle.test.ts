// Proves the bundle file contract (DESIGN.md §3, reference §4.5): the search order and that the
// not-found error lists every path tried; that an explicit path wins even when missing; the
// validation refusals (version, pin, token, endpoint) without echoing the token; and the atomic
// write: 0600 file, 0700 parents, no temp files left, an existing bundle replaced.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { PortunusError } from '@portunus/core';
import { tempDirs } from '@portunus/test-support';

import {
  bundleCandidates,
  bundleNotFound,
  defaultEnrollPath,
  readBundle,
  resolveBundlePath,
  splitEndpoint,
  validateBundle,
  writeBundle,
  type Bundle,
} from './bundle.js';

const dirs = tempDirs();
after(() => {
  dirs.cleanup();
});

const PIN = 'ab'.repeat(32);
const TOKEN = 'tok-SECRET-value';
const VALID: Bundle = {
  version: 1,
  client_name: 'edge-1',
  client_id: '01JCLIENT',
  server_endpoint: '127.0.0.1:7443',
  server_cert_sha256: PIN,
  token: TOKEN,
};

function refusal(body: () => unknown): PortunusError {
  try {
    body();
  } catch (error) {
    assert.ok(error instanceof PortunusError, String(error));
    return error;
  }
  assert.fail('accepted');
}

describe('bundle search order', () => {
  const env = {
    PORTUNUS_CLIENT_BUNDLE: '/env/b.json',
    XDG_CONFIG_HOME: '/xdg',
    HOME: '/home/u',
  };

  it('is $PORTUNUS_CLIENT_BUNDLE, XDG, HOME, then ./client.bundle.json', () => {
    assert.deepEqual(bundleCandidates(env, '/cwd'), [
      '/env/b.json',
      '/xdg/portunus/client.bundle.json',
      '/home/u/.config/portunus/client.bundle.json',
      '/cwd/client.bundle.json',
    ]);
  });

  it('skips unset and blank variables', () => {
    assert.deepEqual(bundleCandidates({ PORTUNUS_CLIENT_BUNDLE: ' ', HOME: '/h' }, '/cwd'), [
      '/h/.config/portunus/client.bundle.json',
      '/cwd/client.bundle.json',
    ]);
    assert.deepEqual(bundleCandidates({}, '/cwd'), ['/cwd/client.bundle.json']);
  });

  it('picks the first candidate that exists', () => {
    const existing = new Set([
      '/home/u/.config/portunus/client.bundle.json',
      '/cwd/client.bundle.json',
    ]);
    const resolved = resolveBundlePath(undefined, env, '/cwd', (file) => existing.has(file));
    assert.deepEqual(resolved, {
      found: true,
      path: '/home/u/.config/portunus/client.bundle.json',
      attempted: bundleCandidates(env, '/cwd'),
    });
  });

  it('uses an explicit --bundle path as given, even when it does not exist', () => {
    const resolved = resolveBundlePath('rel/b.json', env, '/cwd', () => false);
    assert.deepEqual(resolved, {
      found: false,
      attempted: ['/cwd/rel/b.json'],
      bootstrapPath: '/cwd/rel/b.json',
    });
  });

  it('reports every path tried and bootstraps into the first one', () => {
    const resolved = resolveBundlePath(undefined, env, '/cwd', () => false);
    assert.ok(!resolved.found);
    assert.equal(resolved.bootstrapPath, '/env/b.json');
    const error = bundleNotFound(resolved.attempted);
    assert.equal(error.code, 'bundle_not_found');
    assert.equal(error.exitCode, 1);
    assert.equal(error.event, 'client.bundle_search_failed');
    for (const file of bundleCandidates(env, '/cwd')) assert.ok(error.message.includes(file));
    assert.deepEqual(error.fields['attempted'], bundleCandidates(env, '/cwd'));
  });

  it('enrolls by default into the first of XDG, HOME, ./ (never $PORTUNUS_CLIENT_BUNDLE)', () => {
    assert.equal(defaultEnrollPath(env, '/cwd'), '/xdg/portunus/client.bundle.json');
    assert.equal(
      defaultEnrollPath({ HOME: '/h' }, '/cwd'),
      '/h/.config/portunus/client.bundle.json',
    );
    assert.equal(defaultEnrollPath({}, '/cwd'), '/cwd/client.bundle.json');
  });
});

describe('bundle validation', () => {
  it('accepts a version-1 bundle and normalises the pin', () => {
    const bundle = validateBundle(
      { ...VALID, server_cert_sha256: `sha256:${PIN.toUpperCase()}` },
      'f',
    );
    assert.equal(bundle.server_cert_sha256, PIN);
    assert.equal(bundle.token, TOKEN);
  });

  it('accepts a pre-v2 bundle without client_id', () => {
    const old: Partial<Bundle> = { ...VALID };
    delete old.client_id;
    assert.equal(validateBundle(old, 'f').client_id, undefined);
  });

  it('refuses bad shapes with bundle_invalid (exit 1) and never echoes the token', () => {
    const cases: [unknown, RegExp][] = [
      [[], /not a JSON object/],
      [{ ...VALID, version: 2 }, /version must be 1/],
      [{ ...VALID, version: '1' }, /version must be 1/],
      [{ ...VALID, server_cert_sha256: 'abc' }, /server_cert_sha256/],
      [{ ...VALID, server_cert_sha256: 'zz'.repeat(32) }, /server_cert_sha256/],
      [{ ...VALID, token: '' }, /token is missing/],
      [{ ...VALID, token: undefined }, /token is missing/],
      [{ ...VALID, token: 42 }, /token must be a string/],
      [{ ...VALID, server_endpoint: 'no-port' }, /server_endpoint/],
      [{ ...VALID, server_endpoint: 'h:70000' }, /server_endpoint/],
    ];
    for (const [value, why] of cases) {
      const error = refusal(() => validateBundle(value, '/b.json'));
      assert.equal(error.code, 'bundle_invalid');
      assert.equal(error.exitCode, 1);
      assert.match(error.message, why);
      assert.ok(!error.message.includes(TOKEN));
    }
  });

  it('splits host:port endpoints, IPv6 in brackets', () => {
    assert.deepEqual(splitEndpoint('edge.example.com:7443'), {
      host: 'edge.example.com',
      port: 7443,
    });
    assert.deepEqual(splitEndpoint('[::1]:1'), { host: '::1', port: 1 });
    assert.equal(splitEndpoint('::1:1'), undefined);
    assert.equal(splitEndpoint('h:0'), undefined);
  });

  it('refuses an unreadable or non-JSON file', () => {
    const dir = dirs.make();
    assert.match(refusal(() => readBundle(path.join(dir, 'missing.json'))).message, /ENOENT/);
    const file = path.join(dir, 'bad.json');
    fs.writeFileSync(file, '{nope');
    assert.match(refusal(() => readBundle(file)).message, /not valid JSON/);
  });
});

describe('bundle write', () => {
  it('creates 0700 parents and a 0600 file atomically, whatever the umask', () => {
    const previous = process.umask(0o000);
    try {
      const dir = dirs.make();
      const file = path.join(dir, 'a', 'b', 'client.bundle.json');
      writeBundle(file, VALID);
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(fs.statSync(path.join(dir, 'a')).mode & 0o777, 0o700);
      assert.equal(fs.statSync(path.join(dir, 'a', 'b')).mode & 0o777, 0o700);
      assert.deepEqual(readBundle(file), VALID);
      assert.deepEqual(fs.readdirSync(path.dirname(file)), ['client.bundle.json']);
      assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')) as object), [
        'version',
        'client_name',
        'client_id',
        'server_endpoint',
        'server_cert_sha256',
        'token',
      ]);
    } finally {
      process.umask(previous);
    }
  });

  it('replaces an existing bundle and tightens its mode', () => {
    const file = path.join(dirs.make(), 'client.bundle.json');
    fs.writeFileSync(file, 'old', { mode: 0o644 });
    writeBundle(file, { ...VALID, token: 'rotated' });
    assert.equal(readBundle(file).token, 'rotated');
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });
});
