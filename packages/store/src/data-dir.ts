/**
 * Where the store lives: data dir resolution (`--data-dir` > `$STATE_DIRECTORY` >
 * `$XDG_STATE_HOME/portunus` > `$HOME/.local/state/portunus`, DESIGN.md §3) and its creation
 * with mode 0700, since it holds secrets. Pure over the env it is given; depends on core only.
 */
import fs from 'node:fs';
import path from 'node:path';

import { PortunusError } from '@portunus/core';

export type DataDirSource = 'flag' | 'STATE_DIRECTORY' | 'XDG_STATE_HOME' | 'HOME';

export interface ResolvedDataDir {
  path: string;
  source: DataDirSource;
}

export type Env = Readonly<Record<string, string | undefined>>;

export function resolveDataDir(flag: string | undefined, env: Env): ResolvedDataDir {
  const nonBlank = (value: string | undefined): value is string =>
    value !== undefined && value.trim() !== '';
  if (flag !== undefined) {
    // A given but blank flag is an unset shell variable, never a request for the default: the
    // default may hold another store, which `reset --confirm` would then delete.
    if (!nonBlank(flag)) {
      throw new PortunusError(
        'usage_error',
        "--data-dir is empty; pass a path (an unset shell variable expands to '')",
        { flag: '--data-dir' },
      );
    }
    return { path: path.resolve(flag), source: 'flag' };
  }
  // systemd may pass several colon-separated directories; the first is ours.
  const stateDirectory = env['STATE_DIRECTORY']?.split(':')[0];
  if (nonBlank(stateDirectory))
    return { path: path.resolve(stateDirectory), source: 'STATE_DIRECTORY' };
  const xdg = env['XDG_STATE_HOME'];
  if (nonBlank(xdg)) return { path: path.resolve(xdg, 'portunus'), source: 'XDG_STATE_HOME' };
  const home = env['HOME'];
  if (nonBlank(home)) return { path: path.resolve(home, '.local/state/portunus'), source: 'HOME' };
  throw new PortunusError('data_dir_unresolvable');
}

/** Creates the data dir (and parents) with mode 0700 if missing; returns true if it created it. */
export function ensureDataDir(dir: string): boolean {
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) {
      throw new PortunusError('io_error', `data dir ${dir} exists and is not a directory`, {
        path: dir,
      });
    }
    return false;
  }
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir honours the umask; the data dir holds secrets, so set the mode explicitly.
  fs.chmodSync(dir, 0o700);
  return true;
}
