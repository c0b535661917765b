/**
 * The source-list benchmark (`npm run bench:source-lists`, or `node bench/dist/source-lists/run.js
 * [--quick]`): what a rule's allowed_sources / denied_sources (V005, JSON text columns) add to
 * reading the rule set on a real store in a temporary data dir — the SQLite-rendered
 * `GET /v1/rules` body (listRulesJson) and the object list the replay and the conflict checks
 * read (listRules). The baseline runs in the same script: the same rules without lists. Prints
 * figures and ratios; never asserts a time. Exit 0 whatever the figures, 1 when a result is
 * wrong, 2 on a usage error. The directory is removed at the end.
 */
import {
  immediate,
  insertClient,
  insertRule,
  insertUser,
  listRules,
  listRulesJson,
  openStore,
  type Store,
} from '@portunus/store';
import { tempDirs } from '@portunus/test-support';

import { formatInt, formatMs, formatRatio, nowMs, progress } from '../store/report.js';

const USAGE = 'usage: node bench/dist/source-lists/run.js [--quick]';
const args = process.argv.slice(2);
if (args.some((arg) => arg !== '--quick')) {
  console.error(USAGE);
  process.exit(2);
}
const quick = args.includes('--quick');
const RULES = quick ? 2_000 : 10_000;
const ROUNDS = quick ? 3 : 9;
const CLIENT = '01HZZZZZZZZZZZZZZZZZZZZZZ1';

const dirs = tempDirs();

/** `count` normalised CIDRs, IPv4 and IPv6 alternating, distinct within a rule. */
function cidrs(rule: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    i % 2 === 0
      ? `10.${i}.${rule % 256}.0/24`
      : `2001:db8:${i.toString(16)}:${(rule % 65536).toString(16)}::/64`,
  );
}

function seeded(allowed: number, denied: number): Store {
  const store = openStore(dirs.make('portunus-bench-limits-'));
  const now = Date.now();
  insertUser(store.db, { userId: 'root', role: 'superadmin', displayName: 'Root', now });
  insertClient(store.db, { clientId: CLIENT, clientName: 'edge-1', now });
  for (let base = 0; base < RULES; base += 2_000) {
    immediate(store.db, () => {
      for (let i = base; i < Math.min(RULES, base + 2_000); i++) {
        insertRule(store.db, {
          clientId: CLIENT,
          ownerUserId: 'root',
          protocol: 'tcp',
          listenPort: 1 + (i % 60_000),
          targets: [
            { host: '10.0.0.1', port: 80, portEnd: null, priority: 0, proxyProtocol: null },
          ],
          allowedSources: cidrs(i, allowed),
          deniedSources: cidrs(i + 1, denied),
          state: { kind: 'active' },
          now,
        });
      }
    });
  }
  return store;
}

const VARIANTS = [
  { name: 'no lists (baseline)', allowed: 0, denied: 0 },
  { name: '4 allowed + 2 denied', allowed: 4, denied: 2 },
  { name: '64 allowed + 64 denied', allowed: 64, denied: 64 },
] as const;

const median = (times: number[]): number =>
  [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)] ?? Number.NaN;

const problems: string[] = [];
const rows: { name: string; json: number; objects: number; bytes: number }[] = [];
try {
  const stores = VARIANTS.map((variant) => {
    progress(`${variant.name}: seeding ${formatInt(RULES)} rules`);
    return seeded(variant.allowed, variant.denied);
  });
  const json: number[][] = VARIANTS.map(() => []);
  const objects: number[][] = VARIANTS.map(() => []);
  const bytes: number[] = VARIANTS.map(() => 0);
  // Rounds interleave the variants (a shared machine's load drifts; each round sees all three
  // under the same load), after one untimed warm-up round; use a multiple of 3 rounds.
  for (let round = -1; round < ROUNDS; round++) {
    // The first position of a round pays for the garbage the round before left (the 64-entry
    // variant allocates tens of MB), so the order rotates: every variant takes every position.
    VARIANTS.forEach((_, position) => {
      const index = (position + Math.max(round, 0)) % VARIANTS.length;
      const store = stores[index];
      const variant = VARIANTS[index];
      if (!store || !variant) return;
      let start = nowMs();
      const text = listRulesJson(store.db);
      const jsonMs = nowMs() - start;
      start = nowMs();
      const count = listRules(store.db).length;
      const objectsMs = nowMs() - start;
      if (round < 0) {
        const first = (JSON.parse(text) as { allowed_sources: string[] }[])[0];
        if (count !== RULES || first?.allowed_sources.length !== variant.allowed) {
          problems.push(
            `${variant.name}: read ${count} rules, or the first rule's lists are wrong`,
          );
        }
        bytes[index] = text.length;
        return;
      }
      json[index]?.push(jsonMs);
      objects[index]?.push(objectsMs);
    });
  }
  VARIANTS.forEach((variant, index) => {
    rows.push({
      name: variant.name,
      json: median(json[index] ?? []),
      objects: median(objects[index] ?? []),
      bytes: bytes[index] ?? 0,
    });
  });
  for (const store of stores) store.close();
} finally {
  dirs.cleanup();
}

const [base] = rows;
console.log(
  `\nRule set of ${formatInt(RULES)} rules, median of ${ROUNDS} rounds (ratios against the baseline row)`,
);
console.log(
  `${'variant'.padEnd(24)}  ${'listRulesJson'.padStart(13)}  ${'ratio'.padStart(6)}  ${'listRules'.padStart(11)}  ${'ratio'.padStart(6)}  ${'body bytes'.padStart(11)}`,
);
for (const row of rows) {
  console.log(
    `${row.name.padEnd(24)}  ${formatMs(row.json).padStart(13)}  ${formatRatio(base && row.json / base.json).padStart(6)}  ${formatMs(row.objects).padStart(11)}  ${formatRatio(base && row.objects / base.objects).padStart(6)}  ${formatInt(row.bytes).padStart(11)}`,
  );
}
for (const problem of problems) console.error(problem);
process.exitCode = problems.length > 0 ? 1 : 0;
