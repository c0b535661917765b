// Proves the server's TLS identity on real files: first start generates an ECDSA P-256,
// ecdsa-with-SHA256, CA:false certificate with every SAN and a 0600 key whatever the umask;
// later starts load it unchanged; a readable key, a mismatched or half pair and missing operator
// files are refused; an auto certificate is regenerated (with backups) only when it does not
// cover the advertised host; operator files are never rewritten; an interrupted write is
// completed or discarded on the next start.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { PortunusError, type LogFields, type Logger } from '@portunus/core';
import { tempDirs } from '@portunus/test-support';

import {
  AUTOCERT_MARKER_FILE,
  TLS_EVENTS,
  certCoversHost,
  fingerprintOf,
  formatPin,
  loadOrCreateServerIdentity,
  parsePin,
  type ServerIdentity,
  type ServerIdentityOptions,
} from './certificate.js';

const dirs = tempDirs();
after(() => {
  dirs.cleanup();
});

interface Line {
  level: string;
  event: string;
  fields: LogFields;
}

function memoryLogger(): Logger & { lines: Line[]; events: () => string[] } {
  const lines: Line[] = [];
  const at =
    (level: string) =>
    (event: string, fields: LogFields = {}): void => {
      lines.push({ level, event, fields });
    };
  const logger = {
    lines,
    events: () => lines.map((line) => line.event),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

const HOSTNAME = 'portunus-test-host';

async function identityIn(
  dataDir: string,
  options: Partial<ServerIdentityOptions> = {},
): Promise<ServerIdentity & { logger: ReturnType<typeof memoryLogger> }> {
  const logger = memoryLogger();
  const identity = await loadOrCreateServerIdentity({
    dataDir,
    hostname: HOSTNAME,
    logger,
    ...options,
  });
  return { ...identity, logger };
}

function modeOf(file: string): number {
  return fs.statSync(file).mode & 0o777;
}

async function refusal(promise: Promise<unknown>): Promise<PortunusError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PortunusError, String(error));
    return error;
  }
  assert.fail('the identity was accepted');
}

async function withUmask<T>(mask: number, body: () => Promise<T>): Promise<T> {
  const previous = process.umask(mask);
  try {
    return await body();
  } finally {
    process.umask(previous);
  }
}

function openssl(pem: string): string | undefined {
  const result = spawnSync('openssl', ['x509', '-noout', '-text'], {
    input: pem,
    encoding: 'utf8',
  });
  return result.error === undefined && result.status === 0 ? result.stdout : undefined;
}

describe('first start', () => {
  for (const mask of [0o022, 0o000, 0o077]) {
    it(`writes a 0600 key and a 0644 certificate under umask ${mask.toString(8).padStart(3, '0')}`, async () => {
      const dir = dirs.make();
      const identity = await withUmask(mask, () => identityIn(dir));
      assert.equal(identity.generated, true);
      assert.equal(identity.operatorSupplied, false);
      assert.equal(identity.certPath, path.join(dir, 'server.crt'));
      assert.equal(identity.keyPath, path.join(dir, 'server.key'));
      assert.equal(modeOf(identity.keyPath), 0o600);
      assert.equal(modeOf(identity.certPath), 0o644);
      assert.equal(fs.readFileSync(identity.certPath, 'utf8'), identity.certPem);
      assert.equal(fs.readFileSync(identity.keyPath, 'utf8'), identity.keyPem);
      const leftovers = fs.readdirSync(dir).filter((name) => /pending|tmp/.test(name));
      assert.deepEqual(leftovers, []);
    });
  }

  it('generates an ECDSA P-256, ecdsa-with-SHA256, CA:false server certificate', async () => {
    const identity = await identityIn(dirs.make(), { advertisedHost: 'Edge.Example.com' });
    const cert = new X509Certificate(identity.certPem);
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(cert.ca, false);
    assert.equal(cert.subject, `CN=${HOSTNAME}`);
    assert.equal(cert.issuer, cert.subject);

    const parsed = new x509.X509Certificate(identity.certPem);
    assert.deepEqual(parsed.signatureAlgorithm, { name: 'ECDSA', hash: { name: 'SHA-256' } });
    assert.ok(await parsed.verify({ signatureOnly: true }), 'self-signed');
    const basic = parsed.getExtension(x509.BasicConstraintsExtension);
    assert.ok(basic);
    assert.equal(basic.ca, false);
    assert.equal(basic.critical, true);
    const usage = parsed.getExtension(x509.KeyUsagesExtension);
    assert.ok(usage);
    assert.ok(usage.usages & x509.KeyUsageFlags.digitalSignature);
    assert.equal(usage.usages & x509.KeyUsageFlags.keyCertSign, 0);
    const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension);
    assert.deepEqual([...(eku?.usages ?? [])], [x509.ExtendedKeyUsage.serverAuth]);

    const text = openssl(identity.certPem);
    // openssl is a second, independent reader when the machine has it.
    if (text !== undefined) {
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
      assert.match(text, /CA:FALSE/);
      assert.match(text, /TLS Web Server Authentication/);
      assert.match(text, /NIST CURVE: P-256|prime256v1/);
    }
  });

  it('lists the hostname, localhost, both loopbacks and the advertised host as SANs', async () => {
    const byName = await identityIn(dirs.make(), { advertisedHost: 'Edge.Example.com' });
    assert.deepEqual(byName.sanDns, [HOSTNAME, 'localhost', 'edge.example.com']);
    assert.deepEqual(byName.sanIps, ['127.0.0.1', '::1']);
    const alt = new X509Certificate(byName.certPem).subjectAltName ?? '';
    for (const entry of [
      `DNS:${HOSTNAME}`,
      'DNS:localhost',
      'DNS:edge.example.com',
      'IP Address:127.0.0.1',
      'IP Address:0:0:0:0:0:0:0:1',
    ]) {
      assert.ok(alt.includes(entry), `${entry} in ${alt}`);
    }

    const byIp = await identityIn(dirs.make(), { advertisedHost: '203.0.113.9' });
    assert.deepEqual(byIp.sanDns, [HOSTNAME, 'localhost']);
    assert.deepEqual(byIp.sanIps, ['127.0.0.1', '::1', '203.0.113.9']);
    const byV6 = await identityIn(dirs.make(), { advertisedHost: '[2001:DB8::0:9]' });
    assert.deepEqual(byV6.sanIps, ['127.0.0.1', '::1', '2001:db8::9']);
    assert.ok(new X509Certificate(byV6.certPem).checkIP('2001:db8::9'));
  });

  it('agrees with node about which hosts the real certificate covers', async () => {
    const identity = await identityIn(dirs.make(), { advertisedHost: '198.51.100.4' });
    const cert = new X509Certificate(identity.certPem);
    const options = { subject: 'never' } as const;
    for (const host of [HOSTNAME, 'LOCALHOST', 'other.example', 'sub.localhost']) {
      assert.equal(
        certCoversHost(identity, host),
        cert.checkHost(host, options) !== undefined,
        host,
      );
    }
    for (const ip of ['127.0.0.1', '::1', '0:0::1', '198.51.100.4', '198.51.100.5']) {
      assert.equal(certCoversHost(identity, ip), cert.checkIP(ip) !== undefined, ip);
    }
  });

  it('reports a fingerprint equal to node fingerprint256 and logs it without key material', async () => {
    const identity = await identityIn(dirs.make());
    const expected = new X509Certificate(identity.certPem).fingerprint256
      .replaceAll(':', '')
      .toLowerCase();
    assert.equal(identity.fingerprintSha256, expected);
    assert.match(identity.fingerprintSha256, /^[0-9a-f]{64}$/);
    assert.equal(fingerprintOf(identity.certPem), expected);
    assert.equal(fingerprintOf(new X509Certificate(identity.certPem).raw), expected);

    assert.deepEqual(identity.logger.events(), [TLS_EVENTS.certGenerated, TLS_EVENTS.fingerprint]);
    const fingerprintLine = identity.logger.lines.find((l) => l.event === TLS_EVENTS.fingerprint);
    assert.equal(fingerprintLine?.fields['sha256'], expected);
    assert.equal(fingerprintLine.fields['pin'], `sha256:${expected}`);
    const logged = JSON.stringify(identity.logger.lines);
    assert.ok(!logged.includes('BEGIN'), 'no PEM in the log');
    assert.ok(!logged.includes(identity.keyPem.split('\n')[1] ?? 'unreachable'));
  });

  it('records the baked-in advertised host in the marker file', async () => {
    const dir = dirs.make();
    await identityIn(dir, { advertisedHost: 'edge.example.com' });
    assert.equal(fs.readFileSync(path.join(dir, AUTOCERT_MARKER_FILE), 'utf8'), 'edge.example.com');
    const plain = dirs.make();
    await identityIn(plain);
    assert.equal(fs.readFileSync(path.join(plain, AUTOCERT_MARKER_FILE), 'utf8'), '');
  });

  it('is valid from one hour before now for ten years, with a random serial', async () => {
    const now = Date.UTC(2026, 4, 1, 12, 0, 0);
    const first = await identityIn(dirs.make(), { now: () => now });
    const second = await identityIn(dirs.make(), { now: () => now });
    const cert = new X509Certificate(first.certPem);
    assert.equal(new Date(cert.validFrom).getTime(), now - 60 * 60 * 1000);
    assert.equal(new Date(cert.validTo).getTime(), Date.UTC(2036, 4, 1, 12, 0, 0));
    assert.notEqual(cert.serialNumber, new X509Certificate(second.certPem).serialNumber);
    assert.ok(cert.serialNumber.length >= 30, cert.serialNumber);
  });

  it('creates a missing data dir with mode 0700', async () => {
    const dir = path.join(dirs.make(), 'nested', 'data');
    const identity = await identityIn(dir);
    assert.equal(identity.generated, true);
    assert.equal(modeOf(dir), 0o700);
  });
});

describe('later starts', () => {
  it('load the same identity without regenerating', async () => {
    const dir = dirs.make();
    const first = await identityIn(dir, { advertisedHost: 'edge.example.com' });
    const before = fs.statSync(first.certPath).mtimeMs;
    const second = await identityIn(dir, { advertisedHost: 'edge.example.com' });
    assert.equal(second.generated, false);
    assert.equal(second.operatorSupplied, false);
    assert.equal(second.fingerprintSha256, first.fingerprintSha256);
    assert.equal(second.certPem, first.certPem);
    assert.equal(second.keyPem, first.keyPem);
    assert.deepEqual(second.sanDns, first.sanDns);
    assert.deepEqual(second.sanIps, first.sanIps);
    assert.equal(fs.statSync(first.certPath).mtimeMs, before);
    assert.deepEqual(second.logger.events(), [TLS_EVENTS.certLoaded, TLS_EVENTS.fingerprint]);
  });

  it('refuse a key readable by others, naming the path and chmod 600', async () => {
    const dir = dirs.make();
    const { keyPath } = await identityIn(dir);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      fs.chmodSync(keyPath, mode);
      const error = await refusal(identityIn(dir));
      assert.ok(error.message.includes(keyPath), error.message);
      assert.ok(error.message.includes('chmod 600'), error.message);
      assert.equal(error.code, 'tls_key_permissions');
      assert.equal(error.exitCode, 78);
      assert.equal(error.fields['path'], keyPath);
    }
  });

  it('accept a key with mode 0400', async () => {
    const dir = dirs.make();
    const first = await identityIn(dir);
    fs.chmodSync(first.keyPath, 0o400);
    const second = await identityIn(dir);
    assert.equal(second.fingerprintSha256, first.fingerprintSha256);
  });

  it('refuse a certificate whose key is missing, and a key whose certificate is missing', async () => {
    const dir = dirs.make();
    const { certPath, keyPath } = await identityIn(dir);
    const keyPem = fs.readFileSync(keyPath);
    fs.rmSync(keyPath);
    const noKey = await refusal(identityIn(dir));
    assert.match(noKey.message, /key .*server\.key does not exist/);
    assert.equal(noKey.fields['missing'], keyPath);
    assert.ok(!fs.existsSync(keyPath), 'nothing generated');

    fs.rmSync(certPath);
    fs.writeFileSync(keyPath, keyPem, { mode: 0o600 });
    const noCert = await refusal(identityIn(dir));
    assert.match(noCert.message, /certificate .*server\.crt does not exist/);
    assert.equal(noCert.fields['missing'], certPath);
    assert.ok(!fs.existsSync(certPath), 'nothing generated');
  });

  it('refuse a key that does not belong to the certificate', async () => {
    const a = await identityIn(dirs.make());
    const b = await identityIn(dirs.make());
    fs.copyFileSync(b.keyPath, a.keyPath);
    const error = await refusal(identityIn(path.dirname(a.certPath)));
    assert.match(error.message, /does not belong to certificate/);
    assert.equal(error.fields['reason'], 'key_mismatch');
  });

  it('refuse files that are not a certificate or a key', async () => {
    const dir = dirs.make();
    const { certPath, keyPath, certPem, keyPem } = await identityIn(dir);
    fs.writeFileSync(certPath, keyPem);
    assert.equal((await refusal(identityIn(dir))).fields['reason'], 'invalid_certificate');
    fs.writeFileSync(certPath, certPem);
    fs.writeFileSync(keyPath, certPem);
    assert.equal((await refusal(identityIn(dir))).fields['reason'], 'invalid_key');
  });

  it('refuse an advertised host that is neither an IP nor a DNS name', async () => {
    const error = await refusal(identityIn(dirs.make(), { advertisedHost: 'http://edge' }));
    assert.equal(error.code, 'endpoint_invalid');
  });
});

describe('advertised host changes', () => {
  it('regenerate an auto certificate that does not cover the new host, keeping backups', async () => {
    const dir = dirs.make();
    const now = 1_800_000_000_000;
    const first = await identityIn(dir, { advertisedHost: 'old.example.com', now: () => now });
    const second = await identityIn(dir, { advertisedHost: '192.0.2.10', now: () => now });
    assert.equal(second.generated, true);
    assert.notEqual(second.fingerprintSha256, first.fingerprintSha256);
    assert.ok(certCoversHost(second, '192.0.2.10'));
    assert.ok(!certCoversHost(second, 'old.example.com'));
    assert.equal(modeOf(second.keyPath), 0o600);

    const certBackup = path.join(dir, 'server.crt.portunus.1800000000.bak');
    const keyBackup = path.join(dir, 'server.key.portunus.1800000000.bak');
    assert.equal(fs.readFileSync(certBackup, 'utf8'), first.certPem);
    assert.equal(fs.readFileSync(keyBackup, 'utf8'), first.keyPem);
    assert.equal(modeOf(keyBackup), 0o600);
    assert.equal(fs.readFileSync(path.join(dir, AUTOCERT_MARKER_FILE), 'utf8'), '192.0.2.10');

    const line = second.logger.lines.find((l) => l.event === TLS_EVENTS.certRegenerated);
    assert.equal(line?.level, 'warn');
    assert.equal(line.fields['previous_fingerprint_sha256'], first.fingerprintSha256);
    assert.equal(line.fields['fingerprint_sha256'], second.fingerprintSha256);
    assert.equal(line.fields['cert_backup'], certBackup);

    // A second change within the same second must not overwrite the first backups.
    const third = await identityIn(dir, { advertisedHost: 'new.example.com', now: () => now });
    assert.equal(third.generated, true);
    assert.equal(fs.readFileSync(certBackup, 'utf8'), first.certPem);
    assert.equal(
      fs.readFileSync(path.join(dir, 'server.crt.portunus.1800000000-1.bak'), 'utf8'),
      second.certPem,
    );

    const fourth = await identityIn(dir, { advertisedHost: 'new.example.com' });
    assert.equal(fourth.generated, false);
    assert.equal(fourth.fingerprintSha256, third.fingerprintSha256);
  });

  it('keep an auto certificate that already covers the host', async () => {
    const dir = dirs.make();
    const first = await identityIn(dir, { advertisedHost: 'edge.example.com' });
    for (const host of ['EDGE.example.com', 'localhost', '127.0.0.1', '[::1]', HOSTNAME]) {
      const again = await identityIn(dir, { advertisedHost: host });
      assert.equal(again.generated, false, host);
      assert.equal(again.fingerprintSha256, first.fingerprintSha256, host);
    }
    const again = await identityIn(dir);
    assert.equal(again.fingerprintSha256, first.fingerprintSha256, 'no advertised host');
    assert.deepEqual(
      fs.readdirSync(dir).filter((name) => name.endsWith('.bak')),
      [],
    );
  });
});

describe('operator-supplied certificates', () => {
  async function operatorPair(): Promise<{ certPath: string; keyPath: string; fp: string }> {
    const source = await identityIn(dirs.make(), { advertisedHost: 'ops.example.com' });
    const dir = dirs.make('portunus-operator-');
    const certPath = path.join(dir, 'tls.pem');
    const keyPath = path.join(dir, 'tls.key');
    fs.copyFileSync(source.certPath, certPath);
    fs.copyFileSync(source.keyPath, keyPath);
    fs.chmodSync(keyPath, 0o600);
    return { certPath, keyPath, fp: source.fingerprintSha256 };
  }

  it('are loaded from custom paths and never regenerated', async () => {
    const pair = await operatorPair();
    const dataDir = dirs.make();
    const identity = await identityIn(dataDir, {
      certPath: pair.certPath,
      keyPath: pair.keyPath,
      advertisedHost: 'elsewhere.example.com',
    });
    assert.equal(identity.fingerprintSha256, pair.fp);
    assert.equal(identity.generated, false);
    assert.equal(identity.operatorSupplied, true);
    assert.deepEqual(identity.logger.events(), [
      TLS_EVENTS.operatorCertInUse,
      TLS_EVENTS.advertisedHostNotCovered,
      TLS_EVENTS.fingerprint,
    ]);
    assert.deepEqual(fs.readdirSync(dataDir), [], 'nothing written to the data dir');
  });

  it('are refused when missing, and nothing is generated into their paths', async () => {
    const dir = dirs.make('portunus-operator-');
    const certPath = path.join(dir, 'tls.pem');
    const keyPath = path.join(dir, 'tls.key');
    const error = await refusal(identityIn(dirs.make(), { certPath, keyPath }));
    assert.ok(error.message.includes(certPath) && error.message.includes(keyPath), error.message);
    assert.equal(error.fields['reason'], 'missing_files');
    assert.deepEqual(fs.readdirSync(dir), []);

    const pair = await operatorPair();
    const keyOnly = await refusal(identityIn(dirs.make(), { certPath, keyPath: pair.keyPath }));
    assert.ok(keyOnly.message.includes(certPath), keyOnly.message);
    assert.ok(!fs.existsSync(certPath));
  });

  it('are refused with a readable key, like generated ones', async () => {
    const pair = await operatorPair();
    fs.chmodSync(pair.keyPath, 0o644);
    const error = await refusal(identityIn(dirs.make(), pair));
    assert.ok(error.message.includes(`chmod 600 ${pair.keyPath}`), error.message);
  });

  it('placed at the default paths without our marker are never replaced', async () => {
    const pair = await operatorPair();
    const dataDir = dirs.make();
    fs.copyFileSync(pair.certPath, path.join(dataDir, 'server.crt'));
    fs.copyFileSync(pair.keyPath, path.join(dataDir, 'server.key'));
    fs.chmodSync(path.join(dataDir, 'server.key'), 0o600);
    const identity = await identityIn(dataDir, { advertisedHost: 'elsewhere.example.com' });
    assert.equal(identity.fingerprintSha256, pair.fp);
    assert.equal(identity.operatorSupplied, true);
    assert.equal(identity.generated, false);
    assert.ok(identity.logger.events().includes(TLS_EVENTS.operatorCertInUse));
    assert.deepEqual(fs.readdirSync(dataDir).sort(), ['server.crt', 'server.key']);
  });
});

describe('an interrupted write', () => {
  async function staged(): Promise<{
    dir: string;
    live: ServerIdentity;
    next: ServerIdentity;
  }> {
    const dir = dirs.make();
    const live = await identityIn(dir);
    const next = await identityIn(dirs.make());
    return { dir, live, next };
  }

  it('is completed when the pending pair was written in full', async () => {
    const { dir, next } = await staged();
    fs.writeFileSync(path.join(dir, 'server.key.portunus-pending'), next.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'server.crt.portunus-pending'), next.certPem);
    const identity = await identityIn(dir);
    assert.equal(identity.fingerprintSha256, next.fingerprintSha256);
    assert.equal(identity.logger.lines[0]?.event, TLS_EVENTS.interruptedWriteRecovered);
    assert.equal(identity.logger.lines[0].fields['outcome'], 'completed');
  });

  it('is completed when only the certificate rename was left', async () => {
    const { dir, next } = await staged();
    fs.writeFileSync(path.join(dir, 'server.key'), next.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'server.crt.portunus-pending'), next.certPem);
    const identity = await identityIn(dir);
    assert.equal(identity.fingerprintSha256, next.fingerprintSha256);
  });

  it('is discarded when the pending certificate is partial or missing', async () => {
    const { dir, live, next } = await staged();
    fs.writeFileSync(path.join(dir, 'server.key.portunus-pending'), next.keyPem, { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'server.crt.portunus-pending'), next.certPem.slice(0, 200));
    const identity = await identityIn(dir);
    assert.equal(identity.fingerprintSha256, live.fingerprintSha256);
    assert.equal(identity.logger.lines[0]?.fields['outcome'], 'discarded');
    assert.ok(!fs.existsSync(path.join(dir, 'server.crt.portunus-pending')));
    assert.ok(!fs.existsSync(path.join(dir, 'server.key.portunus-pending')));

    fs.writeFileSync(path.join(dir, 'server.key.portunus-pending'), 'half a ke');
    const again = await identityIn(dir);
    assert.equal(again.fingerprintSha256, live.fingerprintSha256);
    assert.ok(!fs.existsSync(path.join(dir, 'server.key.portunus-pending')));
  });
});

describe('pins', () => {
  it('formatPin and parsePin round-trip', () => {
    const fp = 'ab'.repeat(32);
    assert.equal(formatPin(fp), `sha256:${fp}`);
    assert.equal(formatPin(fp.toUpperCase()), `sha256:${fp}`);
    assert.equal(parsePin(`sha256:${fp.toUpperCase()}`), fp);
    assert.equal(parsePin(`sha256:${fp}0`), undefined);
    assert.equal(parsePin(fp), undefined);
    assert.throws(() => formatPin('xyz'), PortunusError);
  });

  it('fingerprintOf refuses what is not a certificate', () => {
    assert.throws(() => fingerprintOf('-----BEGIN CERTIFICATE-----\nAAAA\n'), PortunusError);
  });
});
