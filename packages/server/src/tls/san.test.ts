// Proves the SAN rules enrollment relies on (reference §9.4): IP literals compare in one canonical
// form, DNS names case-insensitively, a wildcard covers exactly one left-most label, IP hosts
// need IP SANs, and node's subjectAltName text (including its quoted values) is read correctly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  certCoversHost,
  normaliseDnsName,
  normaliseIp,
  parseHost,
  parseSubjectAltName,
} from './san.js';

describe('normaliseIp', () => {
  it('writes IPv4 and IPv6 literals in one canonical form', () => {
    assert.equal(normaliseIp('127.0.0.1'), '127.0.0.1');
    assert.equal(normaliseIp('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(normaliseIp('[::1]'), '::1');
    assert.equal(normaliseIp('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(normaliseIp('2001:0db8::0001'), '2001:db8::1');
  });

  it('treats an IPv4-mapped IPv6 address as the IPv4 host it reaches', () => {
    assert.equal(normaliseIp('::ffff:10.0.0.1'), '10.0.0.1');
    assert.equal(normaliseIp('::FFFF:a00:1'), '10.0.0.1');
  });

  it('refuses what is not an IP literal, and zone ids', () => {
    for (const text of ['localhost', '1.2.3', '256.1.1.1', '01.2.3.4', 'fe80::1%eth0', '', '[]']) {
      assert.equal(normaliseIp(text), undefined, text);
    }
  });
});

describe('normaliseDnsName', () => {
  it('lowercases and drops one trailing dot', () => {
    assert.equal(normaliseDnsName('Edge.Example.COM.'), 'edge.example.com');
    assert.equal(normaliseDnsName('localhost'), 'localhost');
    assert.equal(normaliseDnsName('a-1.b2'), 'a-1.b2');
  });

  it('refuses non-RFC-1123 names, wildcards and all-numeric dotted names', () => {
    const labelTooLong = `${'a'.repeat(64)}.example`;
    for (const text of ['', '-a.example', 'a-.example', 'a..b', 'a_b.example', '*.example.com']) {
      assert.equal(normaliseDnsName(text), undefined, text);
    }
    assert.equal(normaliseDnsName(labelTooLong), undefined);
    assert.equal(normaliseDnsName('1.2.3'), undefined);
    assert.equal(normaliseDnsName('999.1.1.1'), undefined);
    assert.equal(normaliseDnsName(`${'a.'.repeat(127)}a`), undefined, 'longer than 253');
  });

  it('parseHost classifies hosts', () => {
    assert.deepEqual(parseHost('[::1]'), { kind: 'ip', value: '::1' });
    assert.deepEqual(parseHost('Host.Example'), { kind: 'dns', value: 'host.example' });
    assert.equal(parseHost('not a host'), undefined);
  });
});

describe('certCoversHost', () => {
  const sans = {
    sanDns: ['edge.example.com', '*.fleet.example.com', 'localhost'],
    sanIps: ['127.0.0.1', '::1', '2001:db8::7'],
  };

  it('covers exact DNS names, case-insensitively and with a trailing dot', () => {
    assert.ok(certCoversHost(sans, 'edge.example.com'));
    assert.ok(certCoversHost(sans, 'EDGE.Example.Com'));
    assert.ok(certCoversHost(sans, 'edge.example.com.'));
    assert.ok(certCoversHost(sans, 'localhost'));
  });

  it('lets a wildcard cover exactly one left-most label', () => {
    assert.ok(certCoversHost(sans, 'a.fleet.example.com'));
    assert.ok(certCoversHost(sans, 'A-1.FLEET.example.com'));
    assert.ok(!certCoversHost(sans, 'fleet.example.com'), 'the apex is not covered');
    assert.ok(!certCoversHost(sans, 'a.b.fleet.example.com'), 'two labels are not covered');
    assert.ok(!certCoversHost(sans, 'a.xfleet.example.com'));
  });

  it('matches IPv4 and IPv6 hosts against IP SANs in any spelling', () => {
    assert.ok(certCoversHost(sans, '127.0.0.1'));
    assert.ok(certCoversHost(sans, '::1'));
    assert.ok(certCoversHost(sans, '[0:0:0:0:0:0:0:1]'));
    assert.ok(certCoversHost(sans, '2001:DB8:0::7'));
    assert.ok(certCoversHost({ sanDns: [], sanIps: ['0:0:0:0:0:0:0:1'] }, '::1'));
    assert.ok(!certCoversHost(sans, '127.0.0.2'));
    assert.ok(!certCoversHost(sans, '::2'));
  });

  it('never covers an IP host with a DNS SAN of the same text', () => {
    assert.ok(!certCoversHost({ sanDns: ['10.0.0.1'], sanIps: [] }, '10.0.0.1'));
  });

  it('does not cover other names, wildcard hosts or garbage', () => {
    assert.ok(!certCoversHost(sans, 'other.example.com'));
    assert.ok(!certCoversHost(sans, 'example.com'));
    assert.ok(!certCoversHost(sans, '*.fleet.example.com'));
    assert.ok(!certCoversHost(sans, 'not a host'));
    assert.ok(!certCoversHost({ sanDns: ['*'], sanIps: [] }, 'anything'));
  });
});

describe('parseSubjectAltName', () => {
  it('reads DNS and IP entries, normalising IPv6 and skipping other types', () => {
    const text =
      'DNS:Host.Example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, ' +
      'email:a@b.example, URI:https://x.example/, IP Address:2001:DB8:0:0:1:0:0:1';
    assert.deepEqual(parseSubjectAltName(text), {
      sanDns: ['host.example'],
      sanIps: ['127.0.0.1', '::1', '2001:db8::1:0:0:1'],
    });
  });

  it('decodes the JSON-quoted values node writes for names holding separators', () => {
    const text = 'DNS:"a\\u002c b.example", DNS:"x\\"y", DNS:last.example';
    assert.deepEqual(parseSubjectAltName(text).sanDns, ['a, b.example', 'x"y', 'last.example']);
  });

  it('handles a certificate without SANs', () => {
    assert.deepEqual(parseSubjectAltName(undefined), { sanDns: [], sanIps: [] });
  });
});
