// Proves enrollment against a fake server over real TLS on 127.0.0.1: the happy path writes a
// 0600 bundle; a wrong pin and an impostor certificate (same names, other key) are refused
// before the code is ever sent; the pinned gRPC credentials alone also refuse an impostor; and
// the server's enrollment_invalid / used / expired refusals each become their own error.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PortunusError, silentLogger, type ErrorCode } from '@portunus/core';
import { EnrollmentClient, formatEnrollUri, grpc, type CredentialBundle } from '@portunus/proto';
import { tempDirs } from '@portunus/test-support';

import {
  FakeControlServer,
  makeIdentity,
  type EnrollAnswer,
  type TestIdentity,
} from './control.harness.js';
import { enroll } from './enroll.js';
import { fetchPinnedCertificate, pinnedChannelOptions, pinnedCredentials } from './pinning.js';

const dirs = tempDirs();
let genuine: TestIdentity;
let impostorIdentity: TestIdentity;
let server: FakeControlServer;
let impostor: FakeControlServer;

const CODES: Record<string, EnrollAnswer> = {
  expired: { code: grpc.status.UNAUTHENTICATED, details: 'enrollment_expired' },
  used: { code: grpc.status.UNAUTHENTICATED, details: 'enrollment_used' },
  unknown: { code: grpc.status.UNAUTHENTICATED, details: 'enrollment_invalid' },
  broken: { code: grpc.status.FAILED_PRECONDITION, details: 'endpoint_invalid' },
};

function bundleFor(identity: TestIdentity): CredentialBundle {
  return {
    version: 1,
    client_name: 'edge-1',
    client_id: '01JCLIENTID',
    server_endpoint: 'edge.example.com:7443',
    server_cert_sha256: identity.sha256,
    token: 'the-client-token',
  };
}

before(async () => {
  [genuine, impostorIdentity] = await Promise.all([makeIdentity(), makeIdentity()]);
  const answer = (identity: TestIdentity) => (code: string) =>
    code === 'good' ? bundleFor(identity) : (CODES[code] ?? CODES['unknown']!);
  server = await new FakeControlServer({ identity: genuine, enroll: answer(genuine) }).start();
  impostor = await new FakeControlServer({
    identity: impostorIdentity,
    enroll: answer(impostorIdentity),
  }).start();
});

after(() => {
  server.close();
  impostor.close();
  dirs.cleanup();
});

async function refusal(promise: Promise<unknown>): Promise<PortunusError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof PortunusError, String(error));
    return error;
  }
  assert.fail('enrollment succeeded');
}

describe('enroll', () => {
  it('redeems a code and writes the bundle 0600 into new 0700 parents', async () => {
    const out = path.join(dirs.make(), 'cfg', 'portunus', 'client.bundle.json');
    const uri = formatEnrollUri(server.endpoint, genuine.sha256, 'good');
    const result = await enroll({ uri, outPath: out, logger: silentLogger });
    assert.equal(result.path, out);
    assert.equal(fs.statSync(out).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(out)).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')), {
      version: 1,
      client_name: 'edge-1',
      client_id: '01JCLIENTID',
      server_endpoint: 'edge.example.com:7443',
      server_cert_sha256: genuine.sha256,
      token: 'the-client-token',
    });
    assert.ok(server.enrollCodes.includes('good'));
  });

  it('refuses a wrong pin before sending the code', async () => {
    const before = server.enrollCodes.length;
    const out = path.join(dirs.make(), 'b.json');
    const uri = formatEnrollUri(server.endpoint, impostorIdentity.sha256, 'good');
    const error = await refusal(enroll({ uri, outPath: out, logger: silentLogger }));
    assert.equal(error.code, 'pin_mismatch');
    assert.equal(error.exitCode, 1);
    assert.match(error.message, new RegExp(genuine.sha256));
    assert.equal(server.enrollCodes.length, before);
    assert.equal(fs.existsSync(out), false);
  });

  it('refuses an impostor presenting the same names with another key', async () => {
    const uri = formatEnrollUri(impostor.endpoint, genuine.sha256, 'good');
    const error = await refusal(
      enroll({ uri, outPath: path.join(dirs.make(), 'b'), logger: silentLogger }),
    );
    assert.equal(error.code, 'pin_mismatch');
    assert.deepEqual(impostor.enrollCodes, []);
  });

  it('refuses an impostor at the gRPC layer too (certificate swapped after the pre-check)', async () => {
    // The pre-check saw the genuine certificate; the channel then reaches the impostor.
    const certificate = await fetchPinnedCertificate('127.0.0.1', server.port, genuine.sha256);
    const client = new EnrollmentClient(
      impostor.endpoint,
      pinnedCredentials(certificate),
      pinnedChannelOptions('127.0.0.1'),
    );
    try {
      const status = await new Promise<grpc.ServiceError | null>((resolve) => {
        (
          client as unknown as {
            Enroll: (
              request: { code: string },
              options: grpc.CallOptions,
              callback: (error: grpc.ServiceError | null) => void,
            ) => void;
          }
        ).Enroll({ code: 'good' }, { deadline: Date.now() + 5_000 }, resolve);
      });
      assert.equal(status?.code, grpc.status.UNAVAILABLE);
      assert.deepEqual(impostor.enrollCodes, []);
    } finally {
      client.close();
    }
  });

  const refusals: [string, ErrorCode][] = [
    ['expired', 'enrollment_expired'],
    ['used', 'enrollment_used'],
    ['unknown', 'enrollment_invalid'],
  ];
  for (const [code, expected] of refusals) {
    it(`maps the server's ${expected} to its own error`, async () => {
      const out = path.join(dirs.make(), 'b.json');
      const uri = formatEnrollUri(server.endpoint, genuine.sha256, code);
      const error = await refusal(enroll({ uri, outPath: out, logger: silentLogger }));
      assert.equal(error.code, expected);
      assert.equal(error.message, `rpc: ${expected}`);
      assert.equal(error.exitCode, 1);
      assert.equal(fs.existsSync(out), false);
    });
  }

  it('reports other refusals with the server reason', async () => {
    const uri = formatEnrollUri(server.endpoint, genuine.sha256, 'broken');
    const error = await refusal(
      enroll({ uri, outPath: path.join(dirs.make(), 'b'), logger: silentLogger }),
    );
    assert.equal(error.message, 'rpc: endpoint_invalid');
    assert.equal(error.exitCode, 1);
  });

  it('reports an unreachable endpoint as a transport error', async () => {
    const closed = new FakeControlServer({ identity: genuine });
    await closed.start();
    const port = closed.port;
    closed.close();
    const uri = formatEnrollUri(`127.0.0.1:${port}`, genuine.sha256, 'good');
    const error = await refusal(
      enroll({ uri, outPath: path.join(dirs.make(), 'b'), logger: silentLogger }),
    );
    assert.equal(error.code, 'control_unreachable');
    assert.match(error.message, /^transport: /);
  });

  it('refuses a malformed URI before any network', async () => {
    const error = await refusal(
      enroll({ uri: 'portunus://h:1/enroll?code=x', outPath: 'x', logger: silentLogger }),
    );
    assert.equal(error.code, 'enroll_uri_invalid');
    assert.equal(error.exitCode, 1);
  });
});
