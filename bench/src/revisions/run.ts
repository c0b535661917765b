/**
 * The rule-set revisions benchmark (`npm run bench:revisions`, or `node
 * bench/dist/revisions/run.js [--quick]`): on a real store in a temporary data dir, what recording
 * a revision adds to each rule write, and what rebuilding an old rule set costs. Baselines run in
 * the same script: a push stored without its revision, and reading the current rule set (what
 * GET /v1/rules' query does). Prints figures and ratios; never asserts a time. Exit 0 whatever
 * the figures, 1 when a result is wrong, 2 on a usage error. The directory is removed at the end.
 */
import {
  currentRuleSet,
  definitionOf,
  diffRuleSets,
  headRevision,
  immediate,
  insertClient,
  insertPendingRule,
  insertUser,
  openStore,
  recordRevision,
  replaceRuleDefinition,
  ruleSetAt,
  type Store,
} from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { formatInt, formatMs, formatRatio, nowMs, progress } from '../store/report.js';

const USAGE = 'usage: node bench/dist/revisions/run.js [--quick]';
const args = process.argv.slice(2);
if (args.some((arg) => arg !== '--quick')) {
  console.error(USAGE);
  process.exit(2);
}
const quick = args.includes('--quick');
const RULES = quick ? 2_000 : 10_000;
const EDITS = quick ? 500 : 2_000;
const CLIENT = '01HZZZZZZZZZZZZZZZZZZZZZZ1';

const dirs = tempDirs();

function target(port: number) {
  return [{ host: '10.0.0.1', port, portEnd: null, priority: 0, proxyProtocol: null }];
}

/** Pushes `count` rules from port `base` on, one write transaction each, as the API does. */
function pushes(store: Store, base: number, count: number, withRevision: boolean): number {
  const start = nowMs();
  for (let i = 0; i < count; i++) {
    immediate(store.db, () => {
      const rule = insertPendingRule(store.db, {
        clientId: CLIENT,
        ownerUserId: 'root',
        protocol: i % 2 === 0 ? 'tcp' : 'udp',
        listenPort: base + Math.floor(i / 2),
        targets: target(80),
        now: Date.now(),
      });
      if (withRevision) {
        recordRevision(store.db, { actor: 'root', at: Date.now() }, 'push', `push ${rule.ruleId}`, [
          { ruleId: rule.ruleId, before: null, after: definitionOf(rule) },
        ]);
      }
    });
  }
  return (nowMs() - start) / count;
}

function seededStore(): Store {
  const store = openStore(dirs.make('portunus-bench-revisions-'));
  insertUser(store.db, { userId: 'root', role: 'superadmin', displayName: 'Root', now: 0 });
  insertClient(store.db, { clientId: CLIENT, clientName: 'edge', now: 0 });
  return store;
}

function median(runs: number, work: () => void): number {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = nowMs();
    work();
    samples.push(nowMs() - start);
  }
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0;
}

try {
  console.log(`Portunus rule-set revisions benchmark${quick ? ' (--quick)' : ''}`);
  console.log(
    `${formatInt(RULES)} rules pushed one transaction each, then ${formatInt(EDITS)} edits`,
  );
  progress('pushes without revisions (baseline)');
  const bare = seededStore();
  const bareMs = pushes(bare, 1, RULES, false);
  bare.close();
  progress('pushes with revisions');
  const store = seededStore();
  const revisedMs = pushes(store, 1, RULES, true);
  progress('edits with revisions');
  const rules = [...currentRuleSet(store.db).values()];
  const editStart = nowMs();
  for (let i = 0; i < EDITS; i++) {
    const before = rules[i % rules.length];
    if (!before) throw new Error('no rule to edit');
    const after = { ...before, targets: target(81 + i) };
    immediate(store.db, () => {
      replaceRuleDefinition(store.db, after, { kind: 'active' }, Date.now());
      recordRevision(store.db, { actor: 'root', at: Date.now() }, 'edit', 'edit', [
        { ruleId: after.ruleId, before, after },
      ]);
    });
    rules[i % rules.length] = after;
  }
  const editMs = (nowMs() - editStart) / EDITS;
  const head = headRevision(store.db);
  if (head !== RULES + EDITS) throw new Error(`expected ${RULES + EDITS} revisions, found ${head}`);

  progress('reading rule sets');
  // One untimed read first, so the baseline does not pay for a cold page cache alone.
  currentRuleSet(store.db);
  const currentMs = median(5, () => currentRuleSet(store.db));
  const recentMs = median(5, () => ruleSetAt(store.db, head - 100));
  const oldestMs = median(5, () => ruleSetAt(store.db, 1));
  const diffMs = median(5, () => {
    const { at, now } = ruleSetAt(store.db, RULES);
    const diff = diffRuleSets(at, now);
    if (diff.changed.length !== Math.min(EDITS, RULES)) {
      throw new Error(`diff found ${diff.changed.length} changed rules`);
    }
  });
  store.close();

  const rows: [string, number, number][] = [
    ['push, stored with its revision / without', revisedMs, bareMs],
    ['edit with its revision / push without', editMs, bareMs],
    ['rule set 100 revisions back / current set', recentMs, currentMs],
    [`rule set ${formatInt(head - 1)} revisions back / current set`, oldestMs, currentMs],
    [`diff of revision ${formatInt(RULES)} vs now / current set`, diffMs, currentMs],
  ];
  for (const [what, ours, baseline] of rows) {
    console.log(
      `${what.padEnd(52)} ${formatMs(ours).padStart(10)} vs ${formatMs(baseline).padStart(10)}  ${formatRatio(ours / baseline)}`,
    );
  }
} catch (error) {
  console.error(String(error));
  process.exitCode = 1;
} finally {
  dirs.cleanup();
}
