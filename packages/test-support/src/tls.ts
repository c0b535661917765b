/**
 * Real TLS endpoints for tests of SNI routing: self-signed certificates with distinct identities
 * (which upstream answered is read from the peer certificate), loopback TLS echo servers, a TLS
 * client that reports the certificate it got, and the raw ClientHello bytes node:tls sends for a
 * server name. Tests and benchmarks only; depends on @peculiar/x509 (with reflect-metadata
 * loaded first), node:crypto, node:net and node:tls.
 */
import 'reflect-metadata';

import { KeyObject, createHash, webcrypto } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

export interface TestCertificate {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the certificate DER, lowercase hex. */
  sha256: string;
  commonName: string;
}

/** A certificate for `commonName` (also its first DNS name) plus any further `dnsNames`. */
export async function selfSignedCertificate(
  commonName: string,
  dnsNames: readonly string[] = [],
): Promise<TestCertificate> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: `01${createHash('sha256').update(commonName).digest('hex').slice(0, 14)}`,
      name: [{ CN: [commonName] }],
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 24 * 3600_000),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keys,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.SubjectAlternativeNameExtension(
          [commonName, ...dnsNames].map((value) => ({ type: 'dns' as const, value })),
        ),
      ],
    },
    webcrypto,
  );
  const keyPem = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' });
  return {
    certPem: cert.toString('pem'),
    keyPem: String(keyPem),
    sha256: createHash('sha256').update(Buffer.from(cert.rawData)).digest('hex'),
    commonName,
  };
}

/** A TLS echo server on loopback: every byte read is written back, under `cert`. */
export async function tlsEchoServer(
  cert: TestCertificate,
  host = '127.0.0.1',
): Promise<{ server: tls.Server; port: number; close: () => Promise<void> }> {
  const server = tls.createServer({ cert: cert.certPem, key: cert.keyPem }, (socket) => {
    socket.on('error', () => {
      socket.destroy();
    });
    socket.pipe(socket);
  });
  // A client we drop mid-handshake is not the server's failure.
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        // Open connections would keep close() waiting.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

export interface TlsAnswer {
  /** Subject CN of the certificate the server presented. */
  commonName: string;
  /** What came back for the probe bytes. */
  echo: string;
}

/**
 * Connects with TLS to host:port with `servername` (none: no SNI extension), trusts any
 * certificate (the test reads which one it got), sends `probe` and resolves with the peer's CN
 * and the echo. Rejects on a socket error, an early close or the deadline.
 */
export function tlsAsk(
  port: number,
  servername: string | undefined,
  probe = 'ping',
  options: { host?: string; deadlineMs?: number } = {},
): Promise<TlsAnswer> {
  const host = options.host ?? '127.0.0.1';
  return new Promise<TlsAnswer>((resolve, reject) => {
    const socket = tls.connect({
      host,
      port,
      rejectUnauthorized: false,
      // An IP as servername is not sent as SNI by node; '' suppresses the extension.
      servername: servername ?? '',
    });
    let echo = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TLS answer on ${port} for ${servername ?? '(no sni)'}`));
    }, options.deadlineMs ?? 5_000);
    const done = (error?: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
    };
    socket.on('error', (error: Error) => {
      done(error);
    });
    socket.on('close', () => {
      done(new Error('closed before the echo'));
    });
    socket.on('secureConnect', () => {
      socket.write(probe);
    });
    socket.on('data', (chunk: Buffer) => {
      echo += chunk.toString();
      if (echo.length >= probe.length) {
        const commonName = String(socket.getPeerCertificate().subject.CN);
        clearTimeout(timer);
        socket.removeAllListeners('close');
        socket.destroy();
        resolve({ commonName, echo });
      }
    });
  });
}

/** The bytes node:tls sends first for `servername` (none: no SNI): a real ClientHello. */
export async function captureClientHello(servername: string | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const server = net.createServer();
  const got = new Promise<Buffer>((resolve) => {
    server.on('connection', (socket) => {
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        // One handshake record: 5-byte header plus its length.
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          socket.destroy();
          resolve(all);
        }
      });
    });
  });
  await new Promise<void>((resolve) => {
    server.listen({ port: 0, host: '127.0.0.1' }, resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  const client = tls.connect({
    host: '127.0.0.1',
    port,
    servername: servername ?? '',
    rejectUnauthorized: false,
  });
  client.on('error', () => undefined);
  try {
    return await got;
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
}
