// tsc writes files 0644, and npm links workspace bins at install time, before `prepare` has
// built them; so after each build the compiled entry points are made executable here, or
// `npx portunus-server` would fail with "permission denied" on a fresh clone.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
for (const name of fs.readdirSync(path.join(root, 'packages'))) {
  const binDir = path.join(root, 'packages', name, 'dist', 'bin');
  if (!fs.existsSync(binDir)) continue;
  for (const file of fs.readdirSync(binDir)) {
    if (file.endsWith('.js')) fs.chmodSync(path.join(binDir, file), 0o755);
  }
}
