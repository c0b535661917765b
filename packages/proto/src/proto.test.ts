// Proves the control protocol's pure parts: the enrollment URI round-trip and its refusals, the
// MAJOR.MINOR capability comparison, the bearer parse reasons, and that the .proto loads.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { isPortunusError } from '@portunus/core';

import {
  CONTROL_SERVICE,
  ENROLLMENT_SERVICE,
  bearerMetadata,
  enrollCommand,
  formatEnrollUri,
  grpc,
  parseBearer,
  parseEnrollUri,
  versionAtLeast,
} from './index.js';

const PIN = 'ab'.repeat(32);

describe('enrollment URI', () => {
  it('round-trips host, port, pin and code', () => {
    const uri = formatEnrollUri('edge.example.com:7443', PIN, 'c0de-_x');
    assert.equal(uri, `portunus://edge.example.com:7443/enroll?pin=sha256:${PIN}&code=c0de-_x`);
    assert.deepEqual(parseEnrollUri(uri), {
      endpoint: 'edge.example.com:7443',
      host: 'edge.example.com',
      port: 7443,
      pinSha256: PIN,
      code: 'c0de-_x',
    });
    assert.equal(enrollCommand(uri), `portunus-client enroll '${uri}'`);
  });

  it('lowercases the pin and ignores unknown parameters', () => {
    const parsed = parseEnrollUri(
      `portunus://127.0.0.1:1/enroll?x=1&pin=sha256:${PIN.toUpperCase()}&code=k`,
    );
    assert.equal(parsed.pinSha256, PIN);
    assert.equal(parsed.host, '127.0.0.1');
  });

  it('refuses every malformed shape with enroll_uri_invalid', () => {
    for (const bad of [
      `https://h:1/enroll?pin=sha256:${PIN}&code=k`,
      `portunus://h:1/other?pin=sha256:${PIN}&code=k`,
      `portunus://h/enroll?pin=sha256:${PIN}&code=k`,
      `portunus://h:0/enroll?pin=sha256:${PIN}&code=k`,
      `portunus://h:1/enroll?pin=sha1:${PIN}&code=k`,
      `portunus://h:1/enroll?pin=sha256:${PIN.slice(2)}&code=k`,
      `portunus://h:1/enroll?pin=sha256:${PIN}`,
      `portunus://h:1/enroll?pin=sha256:${PIN}&code=${'x'.repeat(257)}`,
      `portunus://u:p@h:1/enroll?pin=sha256:${PIN}&code=k`,
    ]) {
      assert.throws(
        () => parseEnrollUri(bad),
        (error: unknown) => isPortunusError(error) && error.code === 'enroll_uri_invalid',
        bad,
      );
    }
  });
});

describe('versionAtLeast', () => {
  it('compares MAJOR.MINOR, strips suffixes and treats malformed as too old', () => {
    assert.equal(versionAtLeast('0.11.2', '0.11'), true);
    assert.equal(versionAtLeast('0.10.9', '0.11'), false);
    assert.equal(versionAtLeast('1.0.0-rc1', '0.11'), true);
    assert.equal(versionAtLeast('v3.1.0', '3.1'), true);
    assert.equal(versionAtLeast('garbage', '0.7'), false);
    assert.equal(versionAtLeast('', '0.7', true), true);
    assert.equal(versionAtLeast('', '0.10'), false);
  });
});

describe('bearer', () => {
  it('parses what bearerMetadata sends and names each refusal', () => {
    assert.deepEqual(parseBearer(bearerMetadata('tok')), { token: 'tok' });
    assert.deepEqual(parseBearer(new grpc.Metadata()), { problem: 'missing_token' });
    const basic = new grpc.Metadata();
    basic.set('authorization', 'Basic abc');
    assert.deepEqual(parseBearer(basic), { problem: 'malformed_token' });
    const long = new grpc.Metadata();
    long.set('authorization', `Bearer ${'a'.repeat(300)}`);
    assert.deepEqual(parseBearer(long), { problem: 'malformed_token' });
    const empty = new grpc.Metadata();
    empty.set('authorization', 'Bearer ');
    assert.deepEqual(parseBearer(empty), { problem: 'malformed_token' });
  });
});

describe('service definitions', () => {
  it('load the Channel and Enroll methods with their streaming shapes', () => {
    assert.equal(CONTROL_SERVICE['Channel']?.requestStream, true);
    assert.equal(CONTROL_SERVICE['Channel'].responseStream, true);
    assert.equal(ENROLLMENT_SERVICE['Enroll']?.requestStream, false);
  });
});
