/**
 * The external programs the data-plane benchmark compares against or drives: iperf3, wrk, socat,
 * haproxy and nginx. Finds each on PATH or in the sbin directories; when some are missing and we
 * are root, runs `apt-get update` and `apt-get install -y` for the Debian packages that have a
 * candidate (`apt-cache policy`), each step under a time limit. A tool that still cannot be found
 * is reported as missing, and the runner skips the sides that need it with a line saying so.
 */
import fs from 'node:fs';
import path from 'node:path';

import { progress } from '../store/report.js';
import { runTool } from './children.js';

export type ToolName = 'iperf3' | 'wrk' | 'socat' | 'haproxy' | 'nginx';

/** The Debian package that brings each tool. */
const PACKAGES: Record<ToolName, string> = {
  iperf3: 'iperf3',
  wrk: 'wrk',
  socat: 'socat',
  haproxy: 'haproxy',
  nginx: 'nginx-light',
};
const APT_UPDATE_MS = 180_000;
const APT_INSTALL_MS = 420_000;
const EXTRA_DIRS = ['/usr/sbin', '/sbin', '/usr/local/sbin'];

export type Tools = Partial<Record<ToolName, string>>;

export function findTool(name: string): string | undefined {
  const dirs = [
    ...(process.env['PATH'] ?? '').split(':').filter((dir) => dir !== ''),
    ...EXTRA_DIRS,
  ];
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // Not in this directory.
    }
  }
  return undefined;
}

function findAll(): Tools {
  const tools: Tools = {};
  for (const name of Object.keys(PACKAGES) as ToolName[]) {
    const file = findTool(name);
    if (file !== undefined) tools[name] = file;
  }
  return tools;
}

/** Finds every tool, installing the missing ones with apt-get when possible; never throws. */
export async function ensureTools(dir: string): Promise<{ tools: Tools; notes: string[] }> {
  let tools = findAll();
  const notes: string[] = [];
  const missing = (Object.keys(PACKAGES) as ToolName[]).filter((name) => !tools[name]);
  if (missing.length === 0) return { tools, notes };
  const wanted = missing.map((name) => PACKAGES[name]);
  if (process.getuid?.() !== 0 || findTool('apt-get') === undefined) {
    notes.push(
      `not installed and not installable here (need root and apt-get): ${wanted.join(' ')}`,
    );
    return { tools, notes };
  }
  try {
    progress(`installing ${wanted.join(' ')}: apt-get update`);
    const update = await runTool(
      { name: 'apt-get-update', command: 'apt-get', args: ['update', '-qq'], dir },
      APT_UPDATE_MS,
    );
    if (update.code !== 0) notes.push(`apt-get update exited ${update.code}`);
    const policy = await runTool(
      { name: 'apt-cache-policy', command: 'apt-cache', args: ['policy', ...wanted], dir },
      60_000,
    );
    const installable = wanted.filter((pkg) => {
      const block = policy.stdout.split(/^(?=\S)/m).find((part) => part.startsWith(`${pkg}:`));
      const candidate = block && /Candidate:\s*(\S+)/.exec(block)?.[1];
      return candidate !== undefined && candidate !== '(none)';
    });
    const unavailable = wanted.filter((pkg) => !installable.includes(pkg));
    if (unavailable.length > 0) notes.push(`no apt candidate for: ${unavailable.join(' ')}`);
    if (installable.length > 0) {
      progress(`apt-get install -y ${installable.join(' ')}`);
      const install = await runTool(
        {
          name: 'apt-get-install',
          command: 'env',
          args: [
            'DEBIAN_FRONTEND=noninteractive',
            'apt-get',
            'install',
            '-y',
            '-qq',
            ...installable,
          ],
          dir,
        },
        APT_INSTALL_MS,
      );
      if (install.code !== 0) {
        notes.push(`apt-get install exited ${install.code}: ${install.stderr.slice(-500).trim()}`);
      } else {
        notes.push(`installed with apt-get: ${installable.join(' ')}`);
      }
    }
  } catch (error) {
    notes.push(`installing failed: ${String(error)}`);
  }
  tools = findAll();
  const still = (Object.keys(PACKAGES) as ToolName[]).filter((name) => !tools[name]);
  if (still.length > 0) notes.push(`still missing: ${still.join(' ')}`);
  return { tools, notes };
}

/** The first line of a tool's version output that matches `pick`, for the machine line. */
export async function toolVersion(
  file: string,
  args: readonly string[],
  dir: string,
  pick = /\S/,
): Promise<string> {
  try {
    const out = await runTool({ name: 'version', command: file, args, dir }, 10_000);
    const text = `${out.stdout}\n${out.stderr}`;
    return (
      text
        .split('\n')
        .find((line) => pick.test(line))
        ?.trim() ?? '?'
    );
  } catch {
    return '?';
  }
}
