// Runs the compiled test files with node's test runner. Node 20 neither expands globs nor finds
// .ts tests on its own, so the list is built here, and an empty list is a failure rather than a
// silent "0 tests" pass. Usage: node scripts/run-tests.mjs [--unit | --e2e] [name-filter]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const only = args.includes('--unit') ? 'unit' : args.includes('--e2e') ? 'e2e' : 'all';
const filter = args.find((arg) => !arg.startsWith('--'));

function* testFiles(dir) {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* testFiles(full);
    else if (entry.name.endsWith('.test.js')) yield full;
  }
}

const dists = [
  ...fs
    .readdirSync(path.join(root, 'packages'))
    .map((name) => path.join(root, 'packages', name, 'dist')),
  path.join(root, 'e2e', 'dist'),
];
const files = dists
  .flatMap((dir) => [...testFiles(dir)])
  .filter((file) => {
    const isE2e = file.includes(`${path.sep}e2e${path.sep}dist${path.sep}`);
    return only === 'all' || (only === 'e2e') === isE2e;
  })
  .filter((file) => !filter || file.includes(filter))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
