// Runs the compiled test files with node's test runner. Node 20 neither expands globs nor finds
// .ts tests on its own, so the list is built here, and an empty list is a failure rather than a
// silent "0 tests" pass. Data-plane files run twice, the second time without the splice fast
// path (below). Usage: node scripts/run-tests.mjs [--unit | --e2e] [name-filter]
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
  .filter((file) => !filter || path.relative(root, file).includes(filter))
  .sort();

if (files.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
function run(list, env) {
  const result = spawnSync(
    process.execPath,
    ['--test', '--test-concurrency=2', '--test-reporter=spec', ...list],
    { stdio: 'inherit', cwd: root, env },
  );
  return result.status ?? 1;
}

// The data-plane tests run a second time with the splice fast path off, so the JavaScript copy
// keeps its own proof (docs/fast-path.md). Only these: the forwarder and the edges that embed it
// (client, standalone) and e2e move bytes; the server, store, api and webui never touch the copy,
// and running them twice would only double the suite's time.
const dataPlane = ['forwarder', 'client', 'standalone'].map((name) =>
  path.join(root, 'packages', name, 'dist'),
);
const isDataPlane = (file) =>
  file.startsWith(path.join(root, 'e2e', 'dist')) || dataPlane.some((dir) => file.startsWith(dir));

let status = run(files, process.env);
const again = files.filter(isDataPlane);
if (again.length > 0 && process.env['PORTUNUS_DISABLE_SPLICE'] === undefined) {
  console.log(`run-tests: ${again.length} data-plane files again with PORTUNUS_DISABLE_SPLICE=1`);
  const second = run(again, { ...process.env, PORTUNUS_DISABLE_SPLICE: '1' });
  if (status === 0) status = second;
}
process.exit(status);
