/**
 * The resolver against a real DNS server on loopback that the test controls (test-support's
 * FakeDnsServer) and a real hosts file: TTL clamping, the bounded cache, stale-while-error with
 * its grace and negative retry, NXDOMAIN, timeouts, single-flight, the concurrency ceiling and
 * family preference. Cache time is an injected clock, so no test waits for a TTL; every socket
 * and temp file is closed in `after`.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { isPortunusError } from '@portunus/core';
import { FakeDnsServer } from '@portunus/test-support';

import { DnsResolver, systemDnsBackend, type ResolverOptions } from './resolver.js';

let dns: FakeDnsServer;
let dir: string;
let hostsPath: string;

before(async () => {
  dns = await FakeDnsServer.start();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portunus-dns-'));
  hostsPath = path.join(dir, 'hosts');
  fs.writeFileSync(
    hostsPath,
    '# test hosts\n10.1.2.3  db.hosts  db-alias # comment\n::1 six.hosts\n',
  );
});
after(async () => {
  await dns.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function resolver(clock: { t: number }, options: ResolverOptions = {}): DnsResolver {
  return new DnsResolver({
    backend: systemDnsBackend({ servers: [dns.server], hostsPath, attemptTimeoutMs: 300 }),
    clock: { now: () => clock.t },
    attemptTimeoutMs: 300,
    ...options,
  });
}

async function failure(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    assert.ok(isPortunusError(error), String(error));
    assert.equal(error.code, 'dns_failed');
    return String(error.fields['reason']);
  }
}

describe('DnsResolver', () => {
  it('answers IP literals without a query and names from the hosts file first', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    assert.deepEqual(await r.resolve('192.0.2.7'), ['192.0.2.7']);
    assert.deepEqual(await r.resolve('DB-alias'), ['10.1.2.3']);
    assert.deepEqual(await r.resolve('six.hosts'), ['::1']);
    assert.equal(dns.count('db-alias'), 0);
    assert.equal(r.queries, 3, 'attempts: A for db-alias, A then AAAA for six.hosts');
    assert.equal(dns.count('six.hosts'), 0, 'the DNS server was never asked');
  });

  it('caches an answer for its TTL, clamped to [5 s, 300 s]', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    dns.set('short.test', { a: ['192.0.2.1'], ttl: 1 });
    dns.set('long.test', { a: ['192.0.2.2'], ttl: 86_400 });
    assert.deepEqual(await r.resolve('short.test'), ['192.0.2.1']);
    assert.deepEqual(await r.resolve('long.test'), ['192.0.2.2']);
    clock.t = 4_999;
    await r.resolve('short.test');
    assert.equal(dns.count('short.test'), 1, 'a 1 s TTL is held for 5 s');
    clock.t = 5_001;
    await r.resolve('short.test');
    assert.equal(dns.count('short.test'), 2);
    clock.t = 299_000;
    await r.resolve('long.test');
    assert.equal(dns.count('long.test'), 1);
    clock.t = 300_001;
    await r.resolve('long.test');
    assert.equal(dns.count('long.test'), 2, 'a day-long TTL is held for 300 s at most');
  });

  it('fails NXDOMAIN and caches the failure for 3 s', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    dns.set('gone.test', { rcode: 'nxdomain' });
    assert.equal(await failure(r.resolve('gone.test')), 'nxdomain');
    const asked = dns.count('gone.test');
    assert.equal(await failure(r.resolve('gone.test')), 'negative_cached');
    assert.equal(dns.count('gone.test'), asked, 'no query inside the negative window');
    clock.t = 3_001;
    dns.set('gone.test', { a: ['192.0.2.9'] });
    assert.deepEqual(await r.resolve('gone.test'), ['192.0.2.9']);
  });

  it('serves the last answer for 30 s after refreshes fail, asking again every 3 s', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    dns.set('flaky.test', { a: ['192.0.2.3'], ttl: 5 });
    await r.resolve('flaky.test');
    dns.set('flaky.test', { rcode: 'servfail' });
    clock.t = 6_000;
    assert.deepEqual(await r.resolve('flaky.test'), ['192.0.2.3'], 'stale while the refresh fails');
    const asked = dns.count('flaky.test');
    clock.t = 8_000;
    assert.deepEqual(await r.resolve('flaky.test'), ['192.0.2.3']);
    assert.equal(dns.count('flaky.test'), asked, 'no new query within 3 s of the failure');
    clock.t = 9_500;
    await r.resolve('flaky.test');
    assert.ok(dns.count('flaky.test') > asked, 'asked again after 3 s');
    clock.t = 36_001;
    assert.equal(await failure(r.resolve('flaky.test')), 'servfail', 'the grace is over');
    assert.equal(await failure(r.resolve('flaky.test')), 'negative_cached');
  });

  it('gives up on a silent server after the attempt timeout', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    dns.set('silent.test', { silent: true });
    assert.equal(await failure(r.resolve('silent.test')), 'timeout');
  });

  it('sends one query per name however many connections ask at once', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    let release!: () => void;
    dns.set('busy.test', { a: ['192.0.2.4'], hold: new Promise((done) => (release = done)) });
    const answers = Array.from({ length: 20 }, () => r.resolve('busy.test'));
    const waiting = Promise.all(answers);
    release();
    for (const answer of await waiting) assert.deepEqual(answer, ['192.0.2.4']);
    assert.equal(dns.count('busy.test'), 1);
  });

  it('fails fast beyond the concurrency ceiling instead of queueing', async () => {
    const clock = { t: 0 };
    const r = resolver(clock, { maxConcurrent: 2 });
    let release!: () => void;
    const hold = new Promise<void>((done) => (release = done));
    dns.set('slow1.test', { a: ['192.0.2.11'], hold });
    dns.set('slow2.test', { a: ['192.0.2.12'], hold });
    dns.set('third.test', { a: ['192.0.2.13'] });
    const first = r.resolve('slow1.test');
    const second = r.resolve('slow2.test');
    assert.equal(await failure(r.resolve('third.test')), 'saturated');
    release();
    await Promise.all([first, second]);
    assert.deepEqual(await r.resolve('third.test'), ['192.0.2.13']);
  });

  it('prefers IPv4 unless the rule prefers IPv6, and falls back to the other family', async () => {
    const clock = { t: 0 };
    const r = resolver(clock);
    dns.set('both.test', { a: ['192.0.2.5'], aaaa: ['2001:db8::5'] });
    dns.set('v4only.test', { a: ['192.0.2.6'] });
    dns.set('v6only.test', { aaaa: ['2001:db8::6'] });
    assert.deepEqual(await r.resolve('both.test'), ['192.0.2.5']);
    assert.deepEqual(await r.resolve('both.test', true), ['2001:db8::5']);
    assert.deepEqual(await r.resolve('v4only.test', true), ['192.0.2.6']);
    assert.deepEqual(await r.resolve('v6only.test'), ['2001:db8::6']);
  });

  it('holds a bounded number of names, evicting expired ones, then the nearest expiry', async () => {
    const clock = { t: 0 };
    const r = resolver(clock, { maxEntries: 3 });
    for (const [i, ttl] of [30, 10, 60, 20].entries()) {
      dns.set(`n${i}.test`, { a: [`192.0.2.${20 + i}`], ttl });
    }
    for (const i of [0, 1, 2]) await r.resolve(`n${i}.test`);
    assert.equal(r.size, 3);
    await r.resolve('n3.test');
    assert.equal(r.size, 3);
    const before = dns.count('n1.test');
    await r.resolve('n1.test');
    assert.equal(dns.count('n1.test'), before + 1, 'n1 (the nearest expiry) was evicted');
  });
});
