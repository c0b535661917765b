// Proves the edge's quota budgets (reference §5.10 "client side"): debit before write with at
// most the granted chunk as overrun, holders stopped once when the budget is used up (after the
// granted write), refusals while exhausted, a SET with budget resuming, a SET of zero stopping at
// once, refunds, REMOVE lifting the budget for holders, and the registry's in-place updates and
// budget-created notifications.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { QuotaBudget, QuotaRegistry, type QuotaHolder } from './quota.js';

function holder(): QuotaHolder & { stops: number } {
  return {
    stops: 0,
    quotaExhausted() {
      this.stops += 1;
    },
  };
}

const microtasks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('QuotaBudget', () => {
  it('grants debits while anything remains, so the overrun is the last granted chunk', async () => {
    const budget = new QuotaBudget('alice', 100);
    const a = holder();
    budget.attach(a);
    assert.equal(budget.debit(60), true);
    assert.equal(budget.remaining, 40);
    // 64 asked, 40 left: granted (one chunk of overrun), and the budget is used up.
    assert.equal(budget.debit(64), true);
    assert.equal(budget.remaining, -24);
    assert.equal(budget.exhausted, true);
    assert.equal(a.stops, 0, 'the granted chunk is written before holders stop');
    await microtasks();
    assert.equal(a.stops, 1);
    assert.equal(budget.debit(1), false, 'nothing more once exhausted');
    assert.equal(budget.remaining, -24, 'a refused debit takes nothing');
    await microtasks();
    assert.equal(a.stops, 1, 'holders are stopped once');
    assert.equal(budget.holderCount, 0);
  });

  it('charges bytes that already moved even past zero, and stops holders once', async () => {
    // A spliced pair reports its reads after the fact: another pair may have used the budget up
    // meanwhile, and what moved must still count (a refused debit would forget it).
    const budget = new QuotaBudget('alice', 100);
    const a = holder();
    budget.attach(a);
    budget.charge(150);
    assert.equal(budget.remaining, -50);
    await microtasks();
    assert.equal(a.stops, 1);
    budget.charge(30);
    assert.equal(budget.remaining, -80, 'a charge past zero is still taken');
    await microtasks();
    assert.equal(a.stops, 1, 'holders are stopped once');
  });

  it('lends allowances as shares of what is left and not reserved, and asks waiters again', () => {
    // Each loan reserves its allowance plus the one read a pair may take past it (slack).
    const SLACK = 100;
    const budget = new QuotaBudget('alice', 2000);
    const [a, b] = [holder(), holder()];
    budget.attach(a);
    budget.attach(b);
    let asked = 0;
    const lend = (most: number) => budget.lend(most, SLACK, () => asked++);
    assert.equal(lend(10_000), 900, 'half of what is left for one of two holders, less the slack');
    assert.equal(lend(10_000), 400, 'half of what is not reserved yet, less the slack');
    assert.equal(lend(50), 50, 'never more than asked');
    // Reserved: 1000 + 500 + 150 = 1650 of 2000.
    let reserved = 1650;
    for (let next = lend(10_000); next > 0; next = lend(10_000)) reserved += next + SLACK;
    assert.ok(reserved <= 2000, `reserved ${reserved}: the reads together stay within the budget`);
    assert.ok(2000 - reserved <= SLACK, 'and it is lent out but for less than one read');
    assert.equal(asked, 0, 'the pair that got nothing waits');
    budget.giveBack(900 + SLACK);
    assert.equal(asked, 1, 'a waiter asks again once a loan comes back');
    budget.giveBack(0);
    assert.equal(asked, 1, 'once');
  });

  it('always lends something while nothing is lent, so a budget can be used to its end', () => {
    const budget = new QuotaBudget('alice', 10);
    budget.attach(holder());
    assert.equal(
      budget.lend(1_000, 64, () => undefined),
      1,
      'one byte, and one read past it',
    );
    budget.charge(10);
    assert.equal(
      budget.lend(1_000, 64, () => undefined),
      0,
      'nothing once it is used up',
    );
  });

  it('stops every holder of the owner, and detached ones not at all', async () => {
    const budget = new QuotaBudget('alice', 10);
    const [a, b, c] = [holder(), holder(), holder()];
    budget.attach(a);
    budget.attach(b);
    budget.attach(c);
    budget.detach(c);
    budget.debit(10);
    await microtasks();
    assert.deepEqual([a.stops, b.stops, c.stops], [1, 1, 0]);
  });

  it('resumes on a SET with budget and stops at once on a SET without', async () => {
    const budget = new QuotaBudget('alice', 0);
    assert.equal(budget.exhausted, true);
    assert.equal(budget.debit(1), false, 'a zero budget refuses the first byte');
    budget.set(500);
    assert.equal(budget.exhausted, false);
    assert.equal(budget.debit(100), true);
    const a = holder();
    budget.attach(a);
    budget.set(-20);
    assert.equal(a.stops, 1, 'a SET that leaves nothing stops holders synchronously');
    assert.equal(budget.debit(1), false);
    await microtasks();
    assert.equal(a.stops, 1);
  });

  it('refunds bytes that were debited but not sent', () => {
    const budget = new QuotaBudget('alice', 100);
    budget.debit(80);
    budget.refund(30);
    assert.equal(budget.remaining, 50);
  });

  it('lifted (REMOVE), it grants everything and stops no one', async () => {
    const budget = new QuotaBudget('alice', 5);
    const a = holder();
    budget.attach(a);
    budget.lift();
    assert.equal(budget.debit(1_000_000), true);
    assert.equal(budget.remaining, Infinity);
    assert.equal(budget.exhausted, false);
    await microtasks();
    assert.equal(a.stops, 0);
  });
});

describe('QuotaRegistry', () => {
  it('knows no budget for owners without a quota, or for rules without an owner', () => {
    const registry = new QuotaRegistry();
    assert.equal(registry.budgetOf('alice'), undefined);
    assert.equal(registry.budgetOf(null), undefined);
    assert.equal(registry.budgetOf(undefined), undefined);
  });

  it('updates an existing budget in place and announces only new ones', () => {
    const registry = new QuotaRegistry();
    const created: string[] = [];
    const unsubscribe = registry.onBudgetCreated((budget) => created.push(budget.ownerId));
    const first = registry.set('alice', 100);
    const again = registry.set('alice', 7);
    assert.equal(first, again, 'holders of the old object see the new value');
    assert.equal(first.remaining, 7);
    registry.set('bob', 1);
    assert.deepEqual(created, ['alice', 'bob']);
    assert.deepEqual(registry.snapshot(), [
      { ownerId: 'alice', remaining: 7, exhausted: false },
      { ownerId: 'bob', remaining: 1, exhausted: false },
    ]);
    unsubscribe();
    registry.set('carol', 1);
    assert.deepEqual(created, ['alice', 'bob']);
  });

  it('REMOVE drops the budget and lifts it for its holders', () => {
    const registry = new QuotaRegistry();
    const budget = registry.set('alice', 0);
    assert.equal(registry.remove('alice'), true);
    assert.equal(registry.budgetOf('alice'), undefined);
    assert.equal(budget.debit(10), true);
    assert.equal(registry.remove('alice'), false);
  });
});
