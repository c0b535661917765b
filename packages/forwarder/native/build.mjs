// The forwarder's install step (package.json "install"): compiles the splice addon with node-gyp.
// node-gyp looks for the headers of the running node; a node installed from a tarball or a distro
// package carries them in <prefix>/include/node, so --nodedir points there and no download is
// needed (the machine may have no internet besides the package registry). A failed build does not
// fail the install: the forwarder then copies in JavaScript and says why once
// (proxy.splice_unsupported_fallback, docs/fast-path.md).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** Builds the addon; a failure is reported, never fatal (the JavaScript copy remains). */
function build() {
  if (process.platform !== 'linux') return 'not built: splice(2) is Linux only';
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const args = ['rebuild', '--release', `--directory=${import.meta.dirname}`];
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) {
    args.push(`--nodedir=${prefix}`);
  }
  // npm names its bundled node-gyp in npm_config_node_gyp for lifecycle scripts; run by hand, the
  // one bundled with the npm beside this node is used.
  const bundled = path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp');
  const gyp = process.env['npm_config_node_gyp'] ?? path.join(bundled, 'bin', 'node-gyp.js');
  const result = spawnSync(process.execPath, [gyp, ...args], { stdio: 'inherit' });
  if (result.status === 0) return undefined;
  return `build failed (${result.error?.message ?? `exit ${String(result.status)}`})`;
}

const problem = build();
if (problem !== undefined) {
  console.warn(`portunus splice addon: ${problem}; the forwarder will copy in JavaScript`);
}
