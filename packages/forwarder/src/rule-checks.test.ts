// Proves the shared rule checks that both the server's rule validation and the standalone's
// config call: host syntax with its catalogue codes, ports, PROXY settings and their protocol fit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  isValidPort,
  parseProxyProtocol,
  proxyProtocolFitsProtocol,
  targetHostProblem,
  targetKey,
} from './rule-checks.js';

describe('targetHostProblem', () => {
  it('accepts IP literals and DNS names', () => {
    for (const host of ['127.0.0.1', '::1', 'fe80::1', 'example.com', 'a-b.c', 'localhost', 'x.']) {
      assert.equal(targetHostProblem(host), undefined, host);
    }
  });

  it('names each kind of bad host with its catalogue code', () => {
    const cases: [string, string][] = [
      ['999.1.1.1', 'invalid_target_host'],
      ['a..b', 'invalid_target_host'],
      ['bad_host', 'invalid_target_host'],
      [`${'a'.repeat(64)}.example`, 'invalid_target_host_label_too_long'],
      ['-a.example', 'invalid_target_host_label_hyphen'],
      [`${'a.'.repeat(130)}com`, 'invalid_target_host_too_long'],
    ];
    for (const [host, code] of cases) assert.equal(targetHostProblem(host)?.code, code, host);
  });
});

describe('ports, PROXY and keys', () => {
  it('accepts only integers in 1..65535 as ports', () => {
    assert.ok(isValidPort(1) && isValidPort(65535));
    for (const bad of [0, 65536, 1.5, -1, '80', null]) assert.equal(isValidPort(bad), false);
  });

  it('reads v1/v2 case-insensitively, blank as none, anything else as invalid', () => {
    assert.equal(parseProxyProtocol('V1'), 'v1');
    assert.equal(parseProxyProtocol(' v2 '), 'v2');
    assert.equal(parseProxyProtocol(''), null);
    assert.equal(parseProxyProtocol(undefined), null);
    assert.equal(parseProxyProtocol('v3'), 'invalid');
  });

  it('refuses v1 on udp only', () => {
    assert.equal(proxyProtocolFitsProtocol('udp', 'v1'), false);
    assert.equal(proxyProtocolFitsProtocol('udp', 'v2'), true);
    assert.equal(proxyProtocolFitsProtocol('tcp', 'v1'), true);
  });

  it('compares hosts case-insensitively for duplicates', () => {
    assert.equal(targetKey('Example.COM', 80), targetKey('example.com', 80));
  });
});
