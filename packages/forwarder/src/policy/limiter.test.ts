// Proves the token bucket and the limiters with a clock driven by hand: refill up to the burst,
// debt and its repayment time, hot swap keeping tokens and last refill (no free burst, a lower
// burst clamps), concurrency lowered under live connections kills nothing, admission order and
// its all-or-nothing commit, the pacer's single timer, and owner-envelope garbage collection.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { FakeClock, recordingLogger } from '../net.harness.js';
import { simpleRule, type RuleSpec } from '../rule-spec.js';
import { RuleGate } from './admission.js';
import { Limiter, OwnerRegistry, Pacer } from './limiter.js';
import { TokenBucket } from './token-bucket.js';

function rule(fields: Partial<RuleSpec> = {}): RuleSpec {
  return {
    ...simpleRule({ ruleId: 'r', protocol: 'tcp', listenPort: 1, targetHost: 'h', targetPort: 2 }),
    ...fields,
  };
}

describe('TokenBucket', () => {
  it('starts full, refills at its rate and never above its burst', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(100, 50, clock);
    assert.equal(bucket.tokens(), 50);
    assert.equal(bucket.tryTake(50), true);
    assert.equal(bucket.tryTake(1), false, 'empty');
    clock.advance(100);
    assert.equal(bucket.tokens(), 10);
    clock.advance(10_000);
    assert.equal(bucket.tokens(), 50, 'capped at the burst');
  });

  it('goes into debt on a debit and says when the debt is repaid', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(1000, 1000, clock);
    assert.equal(bucket.debit(1500), -500);
    assert.equal(bucket.msUntil(0), 500);
    assert.equal(bucket.canTake(1), false);
    clock.advance(500);
    assert.equal(bucket.tokens(), 0);
  });

  it('hot swap keeps the tokens and the last refill: no free burst', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(100, 100, clock);
    bucket.debit(100);
    clock.advance(200); // 20 tokens earned under the old rate
    bucket.reconfigure(1000, 10_000);
    assert.equal(bucket.lastRefillAt, clock.time, 'refilled up to now before the swap');
    assert.equal(bucket.tokens(), 20, 'a raised burst is not filled');
    clock.advance(100);
    assert.equal(bucket.tokens(), 120, 'the new rate applies from the swap on');
  });

  it('a lowered burst clamps the tokens held; a debt stays owed', () => {
    const clock = new FakeClock();
    const bucket = new TokenBucket(100, 100, clock);
    bucket.reconfigure(100, 30);
    assert.equal(bucket.tokens(), 30);
    bucket.debit(50);
    bucket.reconfigure(10, 5);
    assert.equal(bucket.tokens(), -20);
    assert.equal(bucket.msUntil(0), 2000);
  });
});

describe('Pacer', () => {
  it('wakes every parked reader from one timer once the debt is repaid', () => {
    const clock = new FakeClock();
    const pacer = new Pacer(clock);
    pacer.configure(1000, undefined);
    pacer.bucket!.debit(1500);
    const woken: object[] = [];
    const wake = (item: object): void => {
      woken.push(item);
    };
    const a = {};
    const b = {};
    pacer.park(a, wake);
    pacer.park(b, wake);
    assert.equal(clock.pending, 1, 'one timer for the bucket, not one per reader');
    clock.advance(499);
    assert.deepEqual(woken, []);
    clock.advance(1);
    assert.deepEqual(woken, [a, b]);
    assert.equal(pacer.parkedCount, 0);
    assert.equal(clock.pending, 0);
  });

  it('re-arms for a new rate and releases everyone when the cap goes', () => {
    const clock = new FakeClock();
    const pacer = new Pacer(clock);
    pacer.configure(100, undefined);
    pacer.bucket!.debit(200); // 1 s of debt at 100 B/s
    const woken: object[] = [];
    pacer.park({}, (item) => woken.push(item));
    pacer.configure(1000, undefined); // now 0.1 s
    clock.advance(100);
    assert.equal(woken.length, 1);
    pacer.bucket!.debit(10_000);
    pacer.park({}, (item) => woken.push(item));
    pacer.configure(null, undefined);
    assert.equal(woken.length, 2, 'uncapped: parked readers go at once');
    assert.equal(clock.pending, 0);
    pacer.park({}, (item) => woken.push(item));
    pacer.unpark([...woken][0]!);
  });
});

describe('RuleGate admission', () => {
  it('refuses on rate and concurrency with the rule reasons, taking nothing on a refusal', () => {
    const clock = new FakeClock();
    const gate = new RuleGate('r', recordingLogger(), clock);
    gate.configure(
      rule({
        rateLimit: { newConnectionsPerSec: 1, newConnectionsBurst: 2, concurrentConnections: 3 },
      }),
      undefined,
    );
    assert.equal(gate.admit('127.0.0.1', false), true);
    assert.equal(gate.admit('127.0.0.1', false), true);
    assert.equal(gate.admit('127.0.0.1', false), false, 'burst of 2 spent');
    assert.equal(gate.limiter.rejects.conn_rate, 1);
    assert.equal(gate.admit('127.0.0.1', true), false);
    assert.equal(gate.limiter.rejects.udp_flow_rate, 1, 'UDP flows have their own reason');
    clock.advance(1000);
    assert.equal(gate.admit('127.0.0.1', false), true);
    assert.equal(gate.limiter.active, 3);
    clock.advance(5000);
    assert.equal(gate.admit('127.0.0.1', false), false);
    assert.equal(gate.limiter.rejects.conn_concurrent, 1);
    // The concurrency refusal took no rate token: the bucket is full again.
    assert.equal(gate.limiter.connRate!.tokens(), 2);
    gate.release(undefined);
    assert.equal(gate.admit('127.0.0.1', false), true);
  });

  it('lowering concurrency under live connections kills nothing and admits no more', () => {
    const gate = new RuleGate('r', recordingLogger(), new FakeClock());
    gate.configure(rule({ rateLimit: { concurrentConnections: 5 } }), undefined);
    for (let i = 0; i < 4; i++) assert.equal(gate.admit(undefined, false), true);
    gate.configure(rule({ rateLimit: { concurrentConnections: 2 } }), undefined);
    assert.equal(gate.limiter.active, 4, 'live ones kept');
    assert.equal(gate.admit(undefined, false), false);
    gate.release(undefined);
    gate.release(undefined);
    assert.equal(gate.admit(undefined, false), false, 'still at the new cap');
    gate.release(undefined);
    assert.equal(gate.admit(undefined, false), true);
  });

  it('checks sources first, then the owner envelope, then the rule', () => {
    const clock = new FakeClock();
    const owners = new OwnerRegistry(clock);
    const owner = owners.set('u1', { concurrentConnections: 1, newConnectionsPerSec: 10 });
    const gate = new RuleGate('r', recordingLogger(), clock);
    gate.configure(
      rule({
        ownerId: 'u1',
        rateLimit: { concurrentConnections: 1 },
        allowedSources: ['127.0.0.0/8'],
        deniedSources: ['127.0.0.2/32'],
      }),
      owner,
    );
    assert.equal(gate.admit('127.0.0.2', false), false);
    assert.equal(gate.admit('10.0.0.1', false), false);
    assert.equal(gate.sourceDenied, 2);
    assert.equal(gate.admit('127.0.0.1', false), true);
    assert.equal(owner.active, 1);
    assert.equal(gate.admit('127.0.0.1', false), false);
    assert.equal(gate.limiter.rejects.owner_concurrent, 1, 'the owner binds before the rule');
    assert.equal(owner.rejects.owner_concurrent, 1);
    assert.equal(gate.limiter.rejects.conn_concurrent, 0);
    gate.release(owner);
    assert.equal(owner.active, 0);
    assert.equal(gate.limiter.active, 0);
  });

  it('logs refusals at debug level, at most once a second with the count held back', () => {
    const clock = new FakeClock();
    const log = recordingLogger();
    const gate = new RuleGate('r', log, clock);
    gate.configure(rule({ deniedSources: ['10.0.0.0/8'] }), undefined);
    for (let i = 0; i < 100; i++) gate.admit('10.1.1.1', false);
    clock.advance(1000);
    gate.admit('10.1.1.1', false);
    const lines = log.lines.filter((l) => l.event === 'rule.source_denied');
    assert.equal(lines.length, 2);
    assert.equal(lines[0]!.level, 'debug');
    assert.equal(lines[1]!.fields.suppressed, 99);
    assert.equal(gate.sourceDenied, 101);
  });

  it('drops UDP datagrams over budget and counts them', () => {
    const clock = new FakeClock();
    const gate = new RuleGate('r', recordingLogger(), clock);
    gate.configure(rule({ protocol: 'udp', rateLimit: { bandwidthInBps: 1000 } }), undefined);
    let passed = 0;
    for (let i = 0; i < 10; i++) if (gate.passDatagram(undefined, true, 400)) passed++;
    assert.equal(passed, 3, '1000 tokens: 400, 400, then 200 left lets one more in debt');
    assert.equal(gate.limiter.datagramsDroppedIn, 7);
    assert.equal(gate.passDatagram(undefined, false, 400), true, 'no out cap');
    clock.advance(1000);
    assert.equal(gate.passDatagram(undefined, true, 400), true);
  });

  it('reports stats only once a cap was ever set', () => {
    const gate = new RuleGate('r', recordingLogger(), new FakeClock());
    gate.configure(rule(), undefined);
    assert.equal(gate.stats(), null);
    gate.configure(rule({ rateLimit: { concurrentConnections: 2 } }), undefined);
    assert.equal(gate.stats()!.active_connections, 0);
  });
});

describe('OwnerRegistry', () => {
  it('keeps an owner while it has rules or an envelope, and hot-swaps the envelope', () => {
    const clock = new FakeClock();
    const owners = new OwnerRegistry(clock);
    const limiter = owners.attach('u1', 'a');
    owners.attach('u1', 'b');
    assert.deepEqual(owners.stats(), [], 'no envelope: nothing reported');
    owners.set('u1', { bandwidthInBps: 1000 });
    assert.equal(owners.get('u1'), limiter, 'one limiter per owner');
    limiter.bandwidthIn.bucket!.debit(900);
    owners.set('u1', { bandwidthInBps: 5000 });
    assert.equal(limiter.bandwidthIn.bucket!.tokens(), 100, 'tokens kept across a SET');
    owners.detach('u1', 'a');
    owners.detach('u1', 'b');
    assert.deepEqual(owners.ownerIds(), ['u1'], 'the envelope holds it');
    assert.equal(owners.remove('u1'), true);
    assert.deepEqual(owners.ownerIds(), [], 'no rules, no envelope: collected');
    assert.equal(owners.remove('u1'), false);
  });

  it('an envelope set before its first rule binds that rule', () => {
    const owners = new OwnerRegistry(new FakeClock());
    const set = owners.set('u2', { concurrentConnections: 1 });
    assert.equal(owners.attach('u2', 'r'), set);
    owners.detach('u2', 'r');
    assert.deepEqual(owners.ownerIds(), ['u2']);
    assert.equal(owners.stats()[0]!.owner_id, 'u2');
  });

  it('removing an envelope keeps the live count', () => {
    const limiter = new Limiter(new FakeClock());
    limiter.configure({ concurrentConnections: 1 });
    limiter.active = 3;
    limiter.configure(null);
    assert.equal(limiter.active, 3);
    assert.equal(limiter.concurrencyFull(), false);
    assert.equal(limiter.everCapped, true);
  });
});
