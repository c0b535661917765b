/**
 * The server's TLS identity (DESIGN.md §5): loads the operator's certificate and key, or on first
 * start generates a self-signed ECDSA P-256 certificate at `<data-dir>/server.crt` with its key in
 * `server.key` (0600), regenerates that auto certificate when it no longer covers the advertised
 * host (reference §1.5, `tls.cert_regenerated`), and reports the SHA-256 fingerprint clients pin.
 * It refuses a key readable by group or others, a key that does not match its certificate and a
 * half-present pair, and it never writes into operator-supplied paths. Callers hold the data-dir
 * lock, so no other process generates concurrently. It owns files only; it must not depend on the
 * store, the HTTP app or the control protocol, and it never logs key material.
 */
// reflect-metadata must be evaluated before @peculiar/x509: x509 2.x resolves its algorithms
// through tsyringe, which throws at import without a Reflect polyfill (deps-verified.md §4).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import {
  KeyObject,
  X509Certificate,
  createHash,
  createPrivateKey,
  randomBytes,
  webcrypto,
} from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import {
  EVENTS,
  PortunusError,
  type ErrorFields,
  type LogFields,
  type Logger,
} from '@portunus/core';

import {
  certCoversHost,
  parseHost,
  parseSubjectAltName,
  type HostKind,
  type SanLists,
} from './san.js';

export { certCoversHost, type SanLists };

x509.cryptoProvider.set(webcrypto);

/** Log events of this module (names from core's EVENTS; the reference spells them). */
export const TLS_EVENTS = {
  certGenerated: EVENTS.tlsCertGenerated,
  certRegenerated: EVENTS.tlsCertRegenerated,
  certLoaded: EVENTS.tlsCertLoaded,
  operatorCertInUse: EVENTS.tlsOperatorCertInUse,
  fingerprint: EVENTS.tlsFingerprint,
  advertisedHostNotCovered: EVENTS.tlsAdvertisedHostNotCovered,
  interruptedWriteRecovered: EVENTS.tlsInterruptedWriteRecovered,
} as const;

export const CERT_FILE = 'server.crt';
export const KEY_FILE = 'server.key';
/** Present while the files at the default paths are ours (generated), holding the baked-in host. */
export const AUTOCERT_MARKER_FILE = '.portunus-autocert';
/** Suffix of the fully written, not yet installed files of a generation (see `installPair`). */
const PENDING_SUFFIX = '.portunus-pending';

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const MARKER_MODE = 0o644;
/** Group and other permission bits: any of them on the key file is refused. */
const GROUP_OTHER_BITS = 0o077;
/** Backdated so a client whose clock runs a little behind still accepts a fresh certificate. */
const BACKDATE_MS = 60 * 60 * 1000;
const VALIDITY_YEARS = 10;
const LOOPBACK_DNS = 'localhost';
const LOOPBACK_IPS = ['127.0.0.1', '::1'] as const;

export interface ServerIdentity extends SanLists {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 of the certificate's DER, 64 lowercase hex: what client bundles pin. */
  readonly fingerprintSha256: string;
  readonly sanDns: readonly string[];
  readonly sanIps: readonly string[];
  readonly certPath: string;
  readonly keyPath: string;
  /** True when this call generated (or regenerated) the certificate. */
  readonly generated: boolean;
  /** True when the operator supplied the pair (custom paths, or default paths we did not write). */
  readonly operatorSupplied: boolean;
}

export interface ServerIdentityOptions {
  dataDir: string;
  /** `tls_cert_path` from server.toml; default `<dataDir>/server.crt`. */
  certPath?: string;
  /** `tls_key_path` from server.toml; default `<dataDir>/server.key`. */
  keyPath?: string;
  /** Host of the advertised control endpoint (seed tier); baked into a generated certificate. */
  advertisedHost?: string;
  /** CN and DNS SAN of a generated certificate; default `os.hostname()`. */
  hostname?: string;
  logger: Logger;
  /** Clock in epoch milliseconds, for validity dates and backup names. */
  now?: () => number;
}

export function defaultTlsPaths(dataDir: string): { certPath: string; keyPath: string } {
  const dir = path.resolve(dataDir);
  return { certPath: path.join(dir, CERT_FILE), keyPath: path.join(dir, KEY_FILE) };
}

/** SHA-256 of a certificate's DER (PEM or DER input; the first certificate of a chain). */
export function fingerprintOf(certPemOrDer: string | Uint8Array): string {
  const input = typeof certPemOrDer === 'string' ? certPemOrDer : Buffer.from(certPemOrDer);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(input);
  } catch (error) {
    throw tlsError('invalid_certificate', 'not an X.509 certificate (PEM or DER)', {}, error);
  }
  return sha256Hex(cert.raw);
}

const FINGERPRINT = /^[0-9a-f]{64}$/;
const PIN = /^sha256:([0-9a-fA-F]{64})$/;

/** The pin as it appears in enrollment URIs and bundles: `sha256:<64 lowercase hex>`. */
export function formatPin(fingerprintSha256: string): string {
  const hex = fingerprintSha256.toLowerCase();
  if (!FINGERPRINT.test(hex)) {
    throw new PortunusError('internal_error', 'a SHA-256 fingerprint is 64 hex digits');
  }
  return `sha256:${hex}`;
}

/** The fingerprint inside a `sha256:<hex>` pin, lowercased; undefined if it is not one. */
export function parsePin(pin: string): string | undefined {
  return PIN.exec(pin.trim())?.[1]?.toLowerCase();
}

/**
 * Loads the server's certificate and key, or generates them at the default paths, and logs the
 * fingerprint (`tls.fingerprint`). Refusals (bad key mode, mismatch, half a pair, missing operator
 * files) are startup errors: serve must not run with an identity clients cannot pin.
 */
export async function loadOrCreateServerIdentity(
  options: ServerIdentityOptions,
): Promise<ServerIdentity> {
  const { logger } = options;
  const now = options.now ?? Date.now;
  const advertised = parseAdvertisedHost(options.advertisedHost);
  const defaults = defaultTlsPaths(options.dataDir);
  const certPath = path.resolve(options.certPath ?? defaults.certPath);
  const keyPath = path.resolve(options.keyPath ?? defaults.keyPath);
  const paths: PairPaths = { certPath, keyPath };
  const atDefaults = certPath === defaults.certPath && keyPath === defaults.keyPath;
  const identity = atDefaults
    ? await loadOrCreateAuto(paths, path.resolve(options.dataDir), advertised, {
        hostname: options.hostname ?? os.hostname(),
        logger,
        now,
      })
    : loadOperatorPair(paths, advertised, logger);
  logger.info(TLS_EVENTS.fingerprint, {
    sha256: identity.fingerprintSha256,
    pin: formatPin(identity.fingerprintSha256),
    cert_path: identity.certPath,
    generated: identity.generated,
    operator_supplied: identity.operatorSupplied,
  });
  return identity;
}

interface PairPaths {
  readonly certPath: string;
  readonly keyPath: string;
}

interface GenerateContext {
  readonly hostname: string;
  readonly logger: Logger;
  readonly now: () => number;
}

/** Custom paths: the operator owns these files, so they must both exist; nothing is written. */
function loadOperatorPair(
  paths: PairPaths,
  advertised: HostKind | undefined,
  logger: Logger,
): ServerIdentity {
  const hasCert = fs.existsSync(paths.certPath);
  const hasKey = fs.existsSync(paths.keyPath);
  if (!hasCert && !hasKey) {
    throw tlsError(
      'missing_files',
      `TLS certificate ${paths.certPath} and key ${paths.keyPath} do not exist; Portunus never ` +
        'generates into tls_cert_path/tls_key_path: install both files, or remove both settings ' +
        'to use a generated certificate in the data dir',
      { cert_path: paths.certPath, key_path: paths.keyPath },
    );
  }
  refuseHalfPair(paths, hasCert, hasKey, false);
  const identity = loadPair(paths, { generated: false, operatorSupplied: true });
  logger.info(TLS_EVENTS.operatorCertInUse, pathFields(paths));
  warnIfUncovered(identity, advertised, logger);
  return identity;
}

/** Default paths: load, generate on first start, or regenerate an auto cert that lost coverage. */
async function loadOrCreateAuto(
  paths: PairPaths,
  dataDir: string,
  advertised: HostKind | undefined,
  context: GenerateContext,
): Promise<ServerIdentity> {
  const { logger } = context;
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  recoverInterruptedWrite(paths, dataDir, logger);
  const markerPath = path.join(dataDir, AUTOCERT_MARKER_FILE);
  const hasCert = fs.existsSync(paths.certPath);
  const hasKey = fs.existsSync(paths.keyPath);
  if (!hasCert && !hasKey) {
    const identity = await generateInto(paths, markerPath, advertised, context, undefined);
    logger.info(TLS_EVENTS.certGenerated, {
      ...pathFields(paths),
      ...identityFields(identity),
      advertised_host: advertised?.value ?? null,
    });
    return identity;
  }
  const isAuto = fs.existsSync(markerPath);
  refuseHalfPair(paths, hasCert, hasKey, isAuto);
  const current = loadPair(paths, { generated: false, operatorSupplied: !isAuto });
  if (!isAuto) {
    // Files at the default paths that we did not write are the operator's: never replace them.
    logger.info(TLS_EVENTS.operatorCertInUse, pathFields(paths));
    warnIfUncovered(current, advertised, logger);
    return current;
  }
  if (advertised === undefined || hostCovered(current, advertised)) {
    logger.info(TLS_EVENTS.certLoaded, { ...pathFields(paths), ...identityFields(current) });
    return current;
  }
  const stamp = Math.floor(context.now() / 1000);
  const backups = backupNames(paths, stamp);
  const identity = await generateInto(paths, markerPath, advertised, context, backups);
  // Every client pinned to the old fingerprint must re-enroll, so this is a warning.
  logger.warn(TLS_EVENTS.certRegenerated, {
    reason: 'advertised_host_not_covered',
    advertised_host: advertised.value,
    previous_fingerprint_sha256: current.fingerprintSha256,
    ...pathFields(paths),
    ...identityFields(identity),
    cert_backup: backups.certPath,
    key_backup: backups.keyPath,
  });
  return identity;
}

function refuseHalfPair(
  paths: PairPaths,
  hasCert: boolean,
  hasKey: boolean,
  isAuto: boolean,
): void {
  if (hasCert && hasKey) return;
  const missing = hasCert ? `key ${paths.keyPath}` : `certificate ${paths.certPath}`;
  const presentPath = hasCert ? paths.certPath : paths.keyPath;
  const hint = isAuto
    ? ` To start over with a new generated certificate, move ${presentPath} away (enrolled ` +
      'clients will then have to re-enroll with the new fingerprint).'
    : '';
  throw tlsError(
    'missing_files',
    `TLS ${missing} does not exist but ${presentPath} does; refusing to start with half a ` +
      `certificate/key pair.${hint}`,
    { missing: hasCert ? paths.keyPath : paths.certPath, present: presentPath },
  );
}

/** Reads and checks a pair: key mode, both parse, and the key belongs to the certificate. */
function loadPair(
  paths: PairPaths,
  origin: { generated: boolean; operatorSupplied: boolean },
): ServerIdentity {
  const keyStat = statFile(paths.keyPath);
  if ((keyStat.mode & GROUP_OTHER_BITS) !== 0) throw keyPermissionsError(paths.keyPath, keyStat);
  const certPem = readText(paths.certPath);
  const keyPem = readText(paths.keyPath);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (error) {
    throw tlsError(
      'invalid_certificate',
      `TLS certificate ${paths.certPath} is not a PEM X.509 certificate`,
      { path: paths.certPath },
      error,
    );
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    throw tlsError(
      'invalid_key',
      `TLS key ${paths.keyPath} is not an unencrypted PEM private key`,
      { path: paths.keyPath },
      error,
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw tlsError(
      'key_mismatch',
      `TLS key ${paths.keyPath} does not belong to certificate ${paths.certPath}`,
      pathFields(paths),
    );
  }
  return {
    certPem,
    keyPem,
    fingerprintSha256: sha256Hex(cert.raw),
    ...parseSubjectAltName(cert.subjectAltName),
    certPath: paths.certPath,
    keyPath: paths.keyPath,
    ...origin,
  };
}

/** Generates a fresh pair, installs it crash-safely, and returns it as loaded from disk. */
async function generateInto(
  paths: PairPaths,
  markerPath: string,
  advertised: HostKind | undefined,
  context: GenerateContext,
  backups: PairPaths | undefined,
): Promise<ServerIdentity> {
  const material = await generateSelfSigned(context.hostname, advertised, context.now());
  try {
    // The marker goes first: any of our files that later exists is then known to be ours, so a
    // crash part-way never makes a generated pair look operator-supplied.
    writeFileAtomic(markerPath, advertised?.value ?? '', MARKER_MODE);
    installPair(paths, material, backups);
  } catch (error) {
    if (error instanceof PortunusError) throw error;
    throw new PortunusError(
      'io_error',
      `cannot write the TLS certificate and key in ${path.dirname(paths.certPath)}: ${errnoText(error)}`,
      pathFields(paths),
      { cause: error },
    );
  }
  // Read back through the same checks as any start, so what we return is what the next start sees.
  return loadPair(paths, { generated: true, operatorSupplied: false });
}

interface Material {
  readonly certPem: string;
  readonly keyPem: string;
}

/** ECDSA P-256, ecdsa-with-SHA256, CA:false, serverAuth; SANs for this host and loopback. */
async function generateSelfSigned(
  hostname: string,
  advertised: HostKind | undefined,
  nowMs: number,
): Promise<Material> {
  const sans = generatedSans(hostname, advertised);
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const notAfter = new Date(nowMs);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      // JSON form, not "CN=..." text, so a hostname with `,` or `=` cannot inject attributes.
      name: [{ CN: [hostname.trim() === '' ? LOOPBACK_DNS : hostname.trim()] }],
      notBefore: new Date(nowMs - BACKDATE_MS),
      notAfter,
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        // digitalSignature is all ECDHE handshakes need; keyEncipherment only applies to RSA.
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([
          ...sans.sanDns.map((value) => ({ type: 'dns' as const, value })),
          ...sans.sanIps.map((value) => ({ type: 'ip' as const, value })),
        ]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' });
  return { certPem: ensureNewline(cert.toString('pem')), keyPem: ensureNewline(String(keyPem)) };
}

function generatedSans(hostname: string, advertised: HostKind | undefined): SanLists {
  const sanDns = new Set<string>();
  const sanIps = new Set<string>();
  const add = (host: HostKind | undefined): void => {
    if (host?.kind === 'dns') sanDns.add(host.value);
    else if (host?.kind === 'ip') sanIps.add(host.value);
  };
  // A hostname that is not a valid DNS name (e.g. with `_`) stays in the CN only.
  add(parseHost(hostname));
  sanDns.add(LOOPBACK_DNS);
  for (const ip of LOOPBACK_IPS) sanIps.add(ip);
  add(advertised);
  return { sanDns: [...sanDns], sanIps: [...sanIps] };
}

/** 16 random bytes; the generator strips leading zeros and keeps the integer positive. */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) | 0x01;
  return bytes.toString('hex');
}

/**
 * Installs a generated pair so that a crash at any point leaves either the old pair, the new
 * pair, or a state `recoverInterruptedWrite` completes or discards on the next start — never half
 * a key. Order: backups (hard links, so the live files stay put), then the new key and
 * certificate written in full and fsynced under `*.portunus-pending`, then one rename each.
 */
function installPair(paths: PairPaths, material: Material, backups: PairPaths | undefined): void {
  const dir = path.dirname(paths.certPath);
  if (backups !== undefined) {
    preserve(paths.certPath, backups.certPath);
    preserve(paths.keyPath, backups.keyPath);
  }
  const pending = pendingPaths(paths);
  removeIfPresent(pending.keyPath);
  removeIfPresent(pending.certPath);
  writeNewFile(pending.keyPath, material.keyPem, KEY_MODE);
  writeNewFile(pending.certPath, material.certPem, CERT_MODE);
  fsyncDir(dir);
  fs.renameSync(pending.keyPath, paths.keyPath);
  fs.renameSync(pending.certPath, paths.certPath);
  fsyncDir(dir);
}

/**
 * Finishes or discards a generation that a crash interrupted. The pending certificate is written
 * after the pending key, so if it exists and matches the pending key (or, once that has been
 * renamed, the live key) the generation was complete and only its renames are redone; anything
 * else is a partial write and is removed.
 */
function recoverInterruptedWrite(paths: PairPaths, dataDir: string, logger: Logger): void {
  const pending = pendingPaths(paths);
  const hasPendingCert = fs.existsSync(pending.certPath);
  const hasPendingKey = fs.existsSync(pending.keyPath);
  if (!hasPendingCert && !hasPendingKey) return;
  const keyPath = hasPendingKey ? pending.keyPath : paths.keyPath;
  const complete = hasPendingCert && pairMatches(pending.certPath, keyPath);
  if (complete) {
    if (hasPendingKey) fs.renameSync(pending.keyPath, paths.keyPath);
    fs.renameSync(pending.certPath, paths.certPath);
  } else {
    removeIfPresent(pending.certPath);
    removeIfPresent(pending.keyPath);
  }
  fsyncDir(dataDir);
  logger.warn(TLS_EVENTS.interruptedWriteRecovered, {
    outcome: complete ? 'completed' : 'discarded',
    ...pathFields(paths),
  });
}

function pairMatches(certPath: string, keyPath: string): boolean {
  try {
    const cert = new X509Certificate(fs.readFileSync(certPath));
    return cert.checkPrivateKey(createPrivateKey(fs.readFileSync(keyPath)));
  } catch {
    return false;
  }
}

function pendingPaths(paths: PairPaths): PairPaths {
  return {
    certPath: paths.certPath + PENDING_SUFFIX,
    keyPath: paths.keyPath + PENDING_SUFFIX,
  };
}

/** `server.crt.portunus.<unix>.bak` / `server.key.portunus.<unix>.bak`, never overwriting. */
function backupNames(paths: PairPaths, stamp: number): PairPaths {
  for (let attempt = 0; ; attempt += 1) {
    const suffix = attempt === 0 ? `.portunus.${stamp}.bak` : `.portunus.${stamp}-${attempt}.bak`;
    const names = { certPath: paths.certPath + suffix, keyPath: paths.keyPath + suffix };
    if (!fs.existsSync(names.certPath) && !fs.existsSync(names.keyPath)) return names;
  }
}

/** Keeps `source` reachable as `backup`: a hard link (same inode, same 0600 mode, atomic). */
function preserve(source: string, backup: string): void {
  try {
    fs.linkSync(source, backup);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error;
    // Some filesystems have no hard links: copy, keeping the source's permission bits.
    fs.copyFileSync(source, backup, fs.constants.COPYFILE_EXCL);
    fs.chmodSync(backup, fs.statSync(source).mode & 0o777);
  }
}

/**
 * Creates `file` with `mode` from its first byte: the mode is given to open(2) and then set again
 * with fchmod before any data is written, because open's mode is filtered by the umask.
 */
function writeNewFile(file: string, data: string, mode: number): void {
  const fd = fs.openSync(file, 'wx', mode);
  try {
    fs.fchmodSync(fd, mode);
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    removeIfPresent(file);
    throw error;
  }
  fs.closeSync(fd);
}

function writeFileAtomic(file: string, data: string, mode: number): void {
  const temp = `${file}.tmp-${process.pid.toString()}-${randomBytes(4).toString('hex')}`;
  writeNewFile(temp, data, mode);
  fs.renameSync(temp, file);
  fsyncDir(path.dirname(file));
}

/** Makes renames and creations in `dir` durable (the directory entry is separate from the file). */
function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function removeIfPresent(file: string): void {
  fs.rmSync(file, { force: true });
}

function statFile(file: string): fs.Stats {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (error) {
    throw tlsError('unreadable', `cannot stat ${file}: ${errnoText(error)}`, { path: file }, error);
  }
  if (!stat.isFile()) {
    throw tlsError('unreadable', `${file} is not a regular file`, { path: file });
  }
  return stat;
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw tlsError('unreadable', `cannot read ${file}: ${errnoText(error)}`, { path: file }, error);
  }
}

function parseAdvertisedHost(text: string | undefined): HostKind | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const host = parseHost(text);
  if (host === undefined) {
    throw new PortunusError(
      'endpoint_invalid',
      `the advertised host ${JSON.stringify(text)} is neither an IP address nor a DNS name, ` +
        'so it cannot go into the server certificate',
      { advertised_host: text },
    );
  }
  return host;
}

function hostCovered(identity: SanLists, host: HostKind): boolean {
  return certCoversHost(identity, host.value);
}

/** Operator certificates are never rewritten; a missing SAN only fails enrollment, so say so now. */
function warnIfUncovered(identity: ServerIdentity, host: HostKind | undefined, logger: Logger) {
  if (host === undefined || hostCovered(identity, host)) return;
  logger.warn(TLS_EVENTS.advertisedHostNotCovered, {
    advertised_host: host.value,
    cert_path: identity.certPath,
    san_dns: identity.sanDns,
    san_ips: identity.sanIps,
  });
}

function pathFields(paths: PairPaths): LogFields {
  return { cert_path: paths.certPath, key_path: paths.keyPath };
}

function identityFields(identity: ServerIdentity): LogFields {
  return {
    fingerprint_sha256: identity.fingerprintSha256,
    san_dns: identity.sanDns,
    san_ips: identity.sanIps,
  };
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function ensureNewline(text: string): string {
  return text.endsWith('\n') ? text : `${text}\n`;
}

function errnoText(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

function keyPermissionsError(keyPath: string, stat: fs.Stats): PortunusError {
  const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
  return new PortunusError(
    'tls_key_permissions',
    `TLS key ${keyPath} has mode ${mode}, which lets group or others read it; ` +
      `run chmod 600 ${keyPath} and start again`,
    { path: keyPath, mode },
  );
}

type TlsErrorReason =
  'missing_files' | 'invalid_certificate' | 'invalid_key' | 'key_mismatch' | 'unreadable';

function tlsError(
  reason: TlsErrorReason,
  message: string,
  fields: ErrorFields,
  cause?: unknown,
): PortunusError {
  return new PortunusError(
    'tls_error',
    message,
    { reason, ...fields },
    cause === undefined ? undefined : { cause },
  );
}
