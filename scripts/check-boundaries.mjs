// The may-import rules of DESIGN.md §2, checked on every import in every workspace source file
// and on each package's declared dependencies. Run by `npm run check`; exits 1 on a violation.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

/** Which workspace packages each package may import (tests may also use test-support). */
const ALLOWED = {
  core: [],
  api: [],
  store: ['core'],
  proto: ['core'],
  forwarder: ['core', 'api'],
  'test-support': ['core'],
  // webui only to locate its built static files (operator/webui.ts); no code is imported.
  server: ['core', 'api', 'store', 'proto', 'forwarder', 'webui'],
  client: ['core', 'api', 'proto', 'forwarder'],
  standalone: ['core', 'api', 'forwarder'],
  webui: ['api'],
  e2e: ['core', 'store', 'server', 'test-support'],
  bench: ['core', 'store', 'server', 'forwarder', 'client', 'test-support', 'webui'],
};
/** Edge packages must not pull these into their dependency tree (DESIGN.md §2). */
const EDGE = ['client', 'standalone', 'forwarder'];
const EDGE_FORBIDDEN = ['better-sqlite3', 'fastify', 'react', 'react-dom'];

const packageDirs = [
  ...fs.readdirSync(path.join(root, 'packages')).map((name) => path.join(root, 'packages', name)),
  path.join(root, 'e2e'),
  path.join(root, 'bench'),
].filter((dir) => fs.existsSync(path.join(dir, 'package.json')));

const problems = [];
const importPattern =
  /(?:^|\s)(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function* sourceFiles(dir) {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (/\.(ts|tsx|mts)$/.test(entry.name)) yield full;
  }
}

for (const dir of packageDirs) {
  const name = path.basename(dir);
  const allowed = ALLOWED[name];
  if (!allowed) {
    problems.push(`${name}: no may-import rule; add it to scripts/check-boundaries.mjs`);
    continue;
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const deps = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
  for (const dep of deps) {
    const workspace = dep.startsWith('@portunus/') ? dep.slice('@portunus/'.length) : undefined;
    if (workspace && !allowed.includes(workspace) && workspace !== 'test-support') {
      problems.push(`${name}/package.json depends on ${dep}, which it may not import`);
    }
    if (EDGE.includes(name) && EDGE_FORBIDDEN.includes(dep)) {
      problems.push(`${name}/package.json depends on ${dep}: edge packages stay free of it`);
    }
  }
  for (const file of sourceFiles(path.join(dir, 'src'))) {
    const text = fs.readFileSync(file, 'utf8');
    const isTest = /\.(test|harness)\.tsx?$/.test(file);
    for (const match of text.matchAll(importPattern)) {
      const spec = match[1] ?? match[2];
      const where = path.relative(root, file);
      if (/(^|\/)bin\//.test(spec)) problems.push(`${where} imports a bin/ file (${spec})`);
      if (!spec.startsWith('@portunus/')) {
        if (
          EDGE.includes(name) &&
          EDGE_FORBIDDEN.some((dep) => spec === dep || spec.startsWith(`${dep}/`))
        ) {
          problems.push(`${where} imports ${spec}: edge packages stay free of it`);
        }
        continue;
      }
      const target = spec.slice('@portunus/'.length).split('/')[0];
      const ok =
        allowed.includes(target) ||
        (target === 'test-support' && (isTest || name === 'e2e' || name === 'bench'));
      if (!ok)
        problems.push(
          `${where} imports ${spec}, but ${name} may import only [${allowed.join(', ')}]`,
        );
    }
  }
}

if (problems.length > 0) {
  console.error(`may-import check failed:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`may-import check: ${packageDirs.length} packages ok`);
