// The web UI on the operator listener (reference §2.3, last row): assets by path, index.html for
// every other GET outside /v1/, the reference's cache headers and X-Frame-Options: DENY, while
// unknown /v1/* paths keep the JSON 404. Uses a real directory of built-looking files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { tempDirs } from '@portunus/test-support';

import { ContractHarness, errorCode } from './contract.harness.js';
import { defaultWebUiDir, loadWebUi } from './webui.js';

const dirs = tempDirs();
const harnesses: ContractHarness[] = [];
after(async () => {
  await Promise.all(harnesses.map((h) => h.close()));
  dirs.cleanup();
});

function builtUi(): string {
  const dir = dirs.make('portunus-webui-');
  fs.mkdirSync(path.join(dir, 'assets'));
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><div id="root"></div>');
  fs.writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
  fs.writeFileSync(path.join(dir, 'favicon.svg'), '<svg/>');
  return dir;
}

function harness(webUiDir: string): ContractHarness {
  const h = new ContractHarness({ webUiDir });
  harnesses.push(h);
  return h;
}

describe('web UI serving', () => {
  it('serves index.html at / and for SPA routes, revalidated every time and never framed', async () => {
    const h = harness(builtUi());
    for (const url of ['/', '/index.html', '/clients', '/rules/12?tab=x', '/deep/link/']) {
      const answer = await h.inject({ method: 'GET', url });
      assert.equal(answer.statusCode, 200, url);
      assert.match(answer.body, /id="root"/, url);
      assert.match(String(answer.headers['content-type']), /^text\/html/, url);
      assert.equal(answer.headers['cache-control'], 'max-age=0, must-revalidate', url);
      assert.equal(answer.headers['x-frame-options'], 'DENY', url);
    }
  });

  it('serves hashed assets immutable for a year and other files for 300 s', async () => {
    const h = harness(builtUi());
    const asset = await h.inject({ method: 'GET', url: '/assets/index-abc123.js' });
    assert.equal(asset.statusCode, 200);
    assert.equal(asset.body, 'console.log(1)');
    assert.match(String(asset.headers['content-type']), /^text\/javascript/);
    assert.equal(asset.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(asset.headers['x-frame-options'], 'DENY');
    const other = await h.inject({ method: 'GET', url: '/favicon.svg' });
    assert.equal(other.headers['cache-control'], 'public, max-age=300');
    assert.equal(other.headers['content-type'], 'image/svg+xml');
  });

  it('keeps unknown /v1/* a JSON 404 and other methods outside /v1/ a JSON 404', async () => {
    const h = harness(builtUi());
    const api = await h.inject({ method: 'GET', url: '/v1/no-such-thing' });
    assert.equal(api.statusCode, 404);
    assert.equal(errorCode(api.body), 'not_found');
    const post = await h.inject({ method: 'POST', url: '/clients', payload: {} });
    assert.equal(post.statusCode, 404);
    assert.equal(errorCode(post.body), 'not_found');
  });

  it('never reads outside the build: a traversal path gets index.html', async () => {
    const h = harness(builtUi());
    const answer = await h.inject({ method: 'GET', url: '/../../../etc/passwd' });
    assert.equal(answer.statusCode, 200);
    assert.match(answer.body, /id="root"/);
  });

  it('serves a stub page when the UI was not built, and the API still answers', async () => {
    const h = harness(dirs.make('portunus-empty-'));
    const answer = await h.inject({ method: 'GET', url: '/' });
    assert.equal(answer.statusCode, 200);
    assert.match(answer.body, /not built/);
    const status = await h.inject({ method: 'GET', url: '/v1/auth/status' });
    assert.equal(status.statusCode, 200);
  });

  it('finds the real build of @portunus/webui, under the 500 KB gzip budget', async () => {
    const dir = defaultWebUiDir();
    assert.ok(dir, '@portunus/webui resolves');
    assert.equal(loadWebUi(dir).isBuilt, true, `npm ci builds ${dir}`);
    const zlib = await import('node:zlib');
    const scripts = fs.readdirSync(path.join(dir, 'assets')).filter((name) => name.endsWith('.js'));
    assert.ok(scripts.length > 0);
    const main = scripts
      .map((name) => zlib.gzipSync(fs.readFileSync(path.join(dir, 'assets', name))).length)
      .reduce((largest, size) => Math.max(largest, size), 0);
    assert.ok(main < 500 * 1024, `largest chunk ${main} bytes gzipped`);
  });
});
