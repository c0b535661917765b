/**
 * The CLI's stored operator credential: `portunus-server login` writes the API token it created
 * to one 0600 file (in a 0700 directory), and every command that calls the operator API reads it
 * when PORTUNUS_OPERATOR_TOKEN is unset (the env var still wins, so scripts and CI keep working).
 * Location: $PORTUNUS_CREDENTIAL_FILE, else $XDG_CONFIG_HOME/portunus/operator-credential.json,
 * else ~/.config/portunus/operator-credential.json. Written atomically (temp file + rename) so a
 * crash never leaves half a token. Only the filesystem; no HTTP here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { PortunusError } from '@portunus/core';

export interface StoredCredential {
  /** The operator endpoint the credential was created on (host:port or URL). */
  endpoint: string;
  user_id: string;
  credential_id: string;
  token: string;
  created_at: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export function credentialFilePath(env: Env): string {
  const explicit = env['PORTUNUS_CREDENTIAL_FILE']?.trim();
  if (explicit) return explicit;
  const config =
    env['XDG_CONFIG_HOME']?.trim() || path.join(env['HOME'] ?? os.homedir(), '.config');
  return path.join(config, 'portunus', 'operator-credential.json');
}

export function readStoredCredential(env: Env): StoredCredential | undefined {
  const file = credentialFilePath(env);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new PortunusError('io_error', `cannot read ${file}: ${(error as Error).message}`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<StoredCredential>;
    if (typeof parsed.token === 'string' && typeof parsed.credential_id === 'string') {
      return parsed as StoredCredential;
    }
  } catch {
    // fall through: a damaged file is reported, never half-used
  }
  throw new PortunusError('io_error', `${file} is not a stored operator credential; delete it`);
}

export function writeStoredCredential(env: Env, credential: StoredCredential): string {
  const file = credentialFilePath(env);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  // The mode is set at creation: the token is never readable by others, not even for a moment.
  fs.writeFileSync(temp, `${JSON.stringify(credential, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  fs.renameSync(temp, file);
  return file;
}

export function removeStoredCredential(env: Env): boolean {
  try {
    fs.unlinkSync(credentialFilePath(env));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}
