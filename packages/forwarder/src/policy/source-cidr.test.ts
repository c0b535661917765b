// Proves @portunus/api's CIDR parser and matcher, which the data plane runs per connection: what it accepts and refuses, its normal spelling, and
// the match against IPv4, IPv6 and the IPv4-mapped addresses a dual-stack listener reports.
// Addresses are cross-checked against node:net's own parser so the hand-written one can't drift.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';

import {
  SourcePolicy,
  cidrContains,
  normaliseCidr,
  parseCidr,
  parseIpAddress,
} from '@portunus/api';

describe('parseCidr / normaliseCidr', () => {
  it('accepts v4 and v6 networks and bare addresses, spelling them one way', () => {
    const cases: [string, string][] = [
      ['10.0.0.0/8', '10.0.0.0/8'],
      ['192.168.1.7', '192.168.1.7/32'],
      ['0.0.0.0/0', '0.0.0.0/0'],
      ['2001:DB8::/32', '2001:db8::/32'],
      ['::1', '::1/128'],
      ['::/0', '::/0'],
      ['fe80:0:0:0:0:0:0:0/10', 'fe80::/10'],
      ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
      ['::ffff:10.1.2.3/128', '::ffff:a01:203/128'],
    ];
    for (const [input, normal] of cases) assert.equal(normaliseCidr(input), normal, input);
  });

  it('refuses malformed text, long prefixes and set host bits with a reason', () => {
    for (const bad of [
      '',
      ' 10.0.0.0/8',
      '10.0.0/8',
      '10.0.0.256/32',
      '010.0.0.0/8',
      '10.0.0.0/33',
      '10.0.0.0/08',
      '10.0.0.1/8',
      '2001:db8::/129',
      '1::2::3',
      'fe80::1%eth0',
      '1:2:3:4:5:6:7:8:9',
      'example.com/24',
      '10.0.0.0/',
      '::1.2.3.4:5',
    ]) {
      const result = parseCidr(bad);
      assert.ok('error' in result, bad);
      assert.ok(result.error.length > 0);
    }
  });

  it('parses addresses exactly as node:net classifies them', () => {
    for (const text of [
      '1.2.3.4',
      '::',
      '::1',
      '1::',
      'a:b:c:d:e:f:1:2',
      '::ffff:1.2.3.4',
      '1.2.3',
      '1::2::3',
      'g::1',
    ]) {
      assert.equal(parseIpAddress(text) !== undefined, net.isIP(text) !== 0, text);
    }
  });
});

describe('cidrContains and SourcePolicy', () => {
  const cidr = (text: string) => {
    const parsed = parseCidr(text);
    if ('error' in parsed) throw new Error(parsed.error);
    return parsed;
  };
  const ip = (text: string) => parseIpAddress(text)!;

  it('matches on the prefix bits only, across the v4-mapped form', () => {
    assert.equal(cidrContains(cidr('10.0.0.0/8'), ip('10.200.1.1')), true);
    assert.equal(cidrContains(cidr('10.0.0.0/8'), ip('11.0.0.1')), false);
    assert.equal(cidrContains(cidr('192.168.0.0/23'), ip('192.168.1.255')), true);
    assert.equal(cidrContains(cidr('192.168.0.0/23'), ip('192.168.2.0')), false);
    assert.equal(cidrContains(cidr('127.0.0.1/32'), ip('::ffff:127.0.0.1')), true);
    assert.equal(cidrContains(cidr('2001:db8::/32'), ip('2001:db8:ffff::1')), true);
    assert.equal(cidrContains(cidr('2001:db8::/32'), ip('2001:db9::1')), false);
    assert.equal(cidrContains(cidr('::/0'), ip('1.2.3.4')), false, 'families never cross');
  });

  it('admits by allow list, then refuses by deny list', () => {
    const open = new SourcePolicy([], []);
    assert.equal(open.restricts, false);
    assert.equal(open.admits(undefined), true);
    const policy = new SourcePolicy(['127.0.0.0/8', '::1/128'], ['127.0.0.2/32']);
    assert.equal(policy.admits('127.0.0.1'), true);
    assert.equal(policy.admits('::ffff:127.0.0.1'), true);
    assert.equal(policy.admits('::1'), true);
    assert.equal(policy.admits('127.0.0.2'), false);
    assert.equal(policy.admits('10.0.0.1'), false);
    assert.equal(policy.admits(undefined), false);
    const denyOnly = new SourcePolicy([], ['10.0.0.0/8']);
    assert.equal(denyOnly.admits('10.1.1.1'), false);
    assert.equal(denyOnly.admits('192.0.2.1'), true);
    assert.throws(() => new SourcePolicy(['10.0.0.1/8'], []), /host bits/);
  });
});
