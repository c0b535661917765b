/**
 * The server's self-generated TLS identity as a row of the store (`server_tls_identity`, one row),
 * and its reinstallation as files by `restore`. Why in the store: enrolled clients pin the
 * certificate's SHA-256, and `state.db` is the one thing a backup carries (DESIGN.md §4), so a
 * backup that did not hold the pair would restore a fleet that refuses the new server with
 * pin_mismatch. `serve` records the generated pair (and inserts it for stores made before this
 * table existed); an operator-supplied pair is never recorded and never overwritten. The file
 * names, the `.portunus-autocert` marker and the `.portunus-pending` suffix are the ones the
 * server's TLS module reads (packages/server/src/tls/certificate.ts), so a crash part-way through
 * a reinstall is completed or discarded by the next `serve`, exactly as a crashed generation is.
 * Depends on core and node only; it never logs key material.
 */
import { X509Certificate, createHash, createPrivateKey, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { prepared } from './statements.js';

export interface StoredTlsIdentity {
  readonly certPem: string;
  readonly keyPem: string;
  readonly fingerprintSha256: string;
}

export const TLS_CERT_FILE = 'server.crt';
export const TLS_KEY_FILE = 'server.key';
export const TLS_AUTOCERT_MARKER = '.portunus-autocert';
const PENDING_SUFFIX = '.portunus-pending';
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;

export function getTlsIdentity(db: Database): StoredTlsIdentity | undefined {
  const row = prepared(
    db,
    'SELECT cert_pem, key_pem, fingerprint_sha256 FROM server_tls_identity WHERE id = 1',
  ).get() as { cert_pem: string; key_pem: string; fingerprint_sha256: string } | undefined;
  return row === undefined
    ? undefined
    : { certPem: row.cert_pem, keyPem: row.key_pem, fingerprintSha256: row.fingerprint_sha256 };
}

/** Inserts or replaces the row; a no-op when it already holds this certificate. */
export function recordTlsIdentity(db: Database, identity: StoredTlsIdentity, now: number): boolean {
  const result = prepared(
    db,
    `INSERT INTO server_tls_identity (id, cert_pem, key_pem, fingerprint_sha256, recorded_at)
     VALUES (1, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET cert_pem = excluded.cert_pem, key_pem = excluded.key_pem,
       fingerprint_sha256 = excluded.fingerprint_sha256, recorded_at = excluded.recorded_at
     WHERE fingerprint_sha256 <> excluded.fingerprint_sha256`,
  ).run(identity.certPem, identity.keyPem, identity.fingerprintSha256, now);
  return result.changes > 0;
}

/** Checks that the row is a matching pair with the fingerprint it claims, before any file is written. */
export function verifyTlsIdentity(identity: StoredTlsIdentity): void {
  try {
    const cert = new X509Certificate(identity.certPem);
    const fingerprint = createHash('sha256').update(cert.raw).digest('hex');
    if (
      fingerprint === identity.fingerprintSha256 &&
      cert.checkPrivateKey(createPrivateKey(identity.keyPem))
    )
      return;
  } catch {
    // fall through to the refusal
  }
  throw new PortunusError(
    'store_corrupt',
    'the backup holds a TLS identity whose certificate, key and fingerprint do not match',
    { table: 'server_tls_identity' },
  );
}

/**
 * Whether the data dir's default TLS paths may be (re)written: nothing there yet, or only a pair
 * this program generated (the marker is present). Files there without the marker are the
 * operator's.
 */
export function tlsFilesAreOurs(dataDir: string): boolean {
  const present = [TLS_CERT_FILE, TLS_KEY_FILE].some((name) =>
    fs.existsSync(path.join(dataDir, name)),
  );
  return !present || fs.existsSync(path.join(dataDir, TLS_AUTOCERT_MARKER));
}

/**
 * Phase one of a reinstall: the marker, then the key (0600) and the certificate fully written and
 * fsynced under `*.portunus-pending`. Nothing live changes; `commitTlsFiles` does the renames, and
 * `discardTlsFiles` undoes this phase.
 */
export function stageTlsFiles(
  dataDir: string,
  identity: StoredTlsIdentity,
): { markerCreated: boolean } {
  const marker = path.join(dataDir, TLS_AUTOCERT_MARKER);
  // The marker goes first: a pair that later exists is then known to be ours, not the operator's.
  const markerCreated = !fs.existsSync(marker);
  if (markerCreated) writeNewFile(marker, '', CERT_MODE);
  const { key, cert } = pending(dataDir);
  discardTlsFiles(dataDir);
  writeNewFile(key, identity.keyPem, KEY_MODE);
  writeNewFile(cert, identity.certPem, CERT_MODE);
  fsyncDir(dataDir);
  return { markerCreated };
}

export function commitTlsFiles(dataDir: string): void {
  const { key, cert } = pending(dataDir);
  fs.renameSync(key, path.join(dataDir, TLS_KEY_FILE));
  fs.renameSync(cert, path.join(dataDir, TLS_CERT_FILE));
  fsyncDir(dataDir);
}

export function discardTlsFiles(dataDir: string, options: { marker?: boolean } = {}): void {
  const { key, cert } = pending(dataDir);
  fs.rmSync(key, { force: true });
  fs.rmSync(cert, { force: true });
  if (options.marker) fs.rmSync(path.join(dataDir, TLS_AUTOCERT_MARKER), { force: true });
}

function pending(dataDir: string): { key: string; cert: string } {
  return {
    key: path.join(dataDir, TLS_KEY_FILE + PENDING_SUFFIX),
    cert: path.join(dataDir, TLS_CERT_FILE + PENDING_SUFFIX),
  };
}

/** Creates `file` with `mode` from its first byte (open's mode is filtered by the umask). */
function writeNewFile(file: string, data: string, mode: number): void {
  const temp = `${file}.tmp-${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(temp, 'wx', mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  fs.renameSync(temp, file);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
