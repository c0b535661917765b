// Proves the one rate-limit field list and the shared policy checks of @portunus/api, as every
// layer uses them: the store's columns are `rl_` + each API name and map to the same store names,
// the CLI flags and wire mapping follow the list, checkRateLimit answers each catalogued code at
// its boundary (zero, u32/u64 range, burst without rate, burst range, the reserved burst) and
// checkSourceList normalises IPv4/IPv6 CIDRs and refuses bad, duplicate and too many entries.
// (The api package ships no node test runner of its own: it must stay browser-safe.)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  MAX_SOURCE_CIDRS,
  MAX_U32,
  RATE_LIMIT_FIELDS,
  checkRateLimit,
  checkSourceList,
  rateLimitFlag,
  rateLimitView,
} from '@portunus/api';
import { ERROR_CATALOGUE } from '@portunus/core';
import { RATE_LIMIT_COLUMNS } from '@portunus/store';

import { wireRateLimit } from '../control/wire.js';

const codeOf = (result: object): string | undefined =>
  'problem' in result ? (result as { problem: { code: string } }).problem.code : undefined;

describe('the rate-limit field list', () => {
  it('names the store columns, the CLI flags and the wire fields of every cap', () => {
    assert.deepEqual(
      RATE_LIMIT_COLUMNS.map(([column, field]) => [column, field]),
      RATE_LIMIT_FIELDS.map((spec) => [`rl_${spec.name}`, spec.field]),
    );
    assert.deepEqual(RATE_LIMIT_FIELDS.map(rateLimitFlag), [
      '--bandwidth-in-bps',
      '--bandwidth-out-bps',
      '--new-connections-per-sec',
      '--concurrent-connections',
      '--bandwidth-in-burst',
      '--bandwidth-out-burst',
      '--new-connections-burst',
    ]);
    const caps = Object.fromEntries(RATE_LIMIT_FIELDS.map((spec, i) => [spec.field, i + 1]));
    const wire = wireRateLimit(caps);
    assert.deepEqual(wire, rateLimitView(caps));
    assert.deepEqual(
      Object.keys(wire),
      RATE_LIMIT_FIELDS.map((spec) => spec.name),
    );
    assert.equal(wireRateLimit(null), null);
  });
});

describe('checkRateLimit', () => {
  it('accepts caps at their boundaries and answers null for none', () => {
    assert.deepEqual(checkRateLimit({}), { caps: null });
    assert.deepEqual(checkRateLimit({ bandwidth_in_bps: null }), { caps: null });
    assert.deepEqual(
      checkRateLimit({
        new_connections_per_sec: MAX_U32,
        concurrent_connections: 1,
        bandwidth_in_bps: 100,
        bandwidth_in_burst: 1,
        bandwidth_out_bps: 100,
        bandwidth_out_burst: 6000,
      }),
      {
        caps: {
          newConnectionsPerSec: MAX_U32,
          concurrentConnections: 1,
          bandwidthInBps: 100,
          bandwidthInBurst: 1,
          bandwidthOutBps: 100,
          bandwidthOutBurst: 6000,
        },
      },
    );
  });

  it('answers each catalogued code', () => {
    const cases: [Record<string, number>, string][] = [
      [{ bandwidth_out_bps: 0 }, 'validation.rate_limit_cap_zero'],
      [{ concurrent_connections: MAX_U32 + 1 }, 'validation.rate_limit_cap_out_of_range'],
      [{ bandwidth_in_bps: Number.MAX_SAFE_INTEGER + 2 }, 'validation.rate_limit_cap_out_of_range'],
      [{ new_connections_per_sec: 2.5 }, 'validation.rate_limit_cap_out_of_range'],
      [{ bandwidth_in_burst: 5 }, 'validation.rate_limit_burst_without_rate'],
      [{ bandwidth_in_bps: 1000, bandwidth_in_burst: 9 }, 'validation.rate_limit_burst_range'],
      [{ bandwidth_in_bps: 1000, bandwidth_in_burst: 60_001 }, 'validation.rate_limit_burst_range'],
      [{ bandwidth_in_bps: 1000, bandwidth_in_burst: 0 }, 'validation.rate_limit_burst_range'],
      [
        { new_connections_per_sec: MAX_U32, new_connections_burst: MAX_U32 + 1 },
        'validation.rate_limit_cap_out_of_range',
      ],
      [{ concurrent_connections_burst: 1 }, 'validation.rate_limit_burst_unsupported'],
    ];
    for (const [input, code] of cases) {
      assert.equal(codeOf(checkRateLimit(input)), code, JSON.stringify(input));
      assert.ok(Object.hasOwn(ERROR_CATALOGUE, code), code);
    }
  });
});

describe('checkSourceList', () => {
  it('normalises IPv4 and IPv6 CIDRs and bare addresses; absent is empty', () => {
    assert.deepEqual(checkSourceList('allowed_sources', undefined), { list: [] });
    assert.deepEqual(
      checkSourceList('allowed_sources', ['10.0.0.0/8', '192.0.2.1', '2001:DB8:0:0::/32', '::1']),
      { list: ['10.0.0.0/8', '192.0.2.1/32', '2001:db8::/32', '::1/128'] },
    );
    const full = Array.from({ length: MAX_SOURCE_CIDRS }, (_, i) => `10.${i}.0.0/16`);
    assert.equal(
      (checkSourceList('denied_sources', full) as { list: string[] }).list.length,
      MAX_SOURCE_CIDRS,
    );
  });

  it('refuses a bad entry, a duplicate network and a list over the limit, naming why', () => {
    for (const bad of [
      '10.0.0.0/33',
      '10.0.0.1/8',
      '300.0.0.0/8',
      'fe80::1%eth0',
      '',
      '10.0.0.0/08',
    ]) {
      const result = checkSourceList('allowed_sources', [bad]);
      assert.equal(codeOf(result), 'validation.source_cidr_invalid', bad);
    }
    const duplicate = checkSourceList('denied_sources', ['2001:db8::/32', '2001:DB8::0/32']);
    assert.equal(codeOf(duplicate), 'validation.source_cidr_invalid');
    assert.match(
      JSON.stringify(duplicate),
      /denied_sources\[1\].*same network as denied_sources\[0\]/,
    );
    const long = Array.from({ length: MAX_SOURCE_CIDRS + 1 }, (_, i) => `10.${i}.0.0/16`);
    assert.equal(
      codeOf(checkSourceList('denied_sources', long)),
      'validation.source_list_too_long',
    );
  });
});
