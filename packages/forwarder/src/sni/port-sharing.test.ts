/**
 * The pure parts of SNI routing, case by case: @portunus/api's pattern grammar and its
 * port-sharing decision (the matrix of docs/sni-routing.md, which server and edge both run), and
 * the route table's lookup order (exact → single-label wildcard → fallback).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  normaliseServerName,
  normaliseSniPattern,
  sniPortConflict,
  type PortMember,
} from '@portunus/api';

import { SniRouteTable } from './route-table.js';

const at = (
  ruleId: number,
  listenPort: number,
  sniPattern: string | null,
  listenPortEnd: number | null = null,
): PortMember => ({ ruleId, listenPort, listenPortEnd, sniPattern });

describe('normaliseSniPattern', () => {
  it('lower-cases and trims names and single-label wildcards', () => {
    assert.equal(normaliseSniPattern(' API.Example.COM '), 'api.example.com');
    assert.equal(normaliseSniPattern('*.Apps.example.com'), '*.apps.example.com');
  });

  it('refuses what is not a name or *.name over two labels', () => {
    for (const bad of [
      '',
      '*.com',
      '*.',
      'a..b',
      '-a.b',
      'a.*.b',
      '**.a.b',
      'a_b.c',
      `${'a'.repeat(64)}.b`,
    ]) {
      assert.equal(typeof normaliseSniPattern(bad), 'object', bad);
    }
  });

  it('compares server names without case or a trailing dot', () => {
    assert.equal(normaliseServerName('A.Example.COM.'), 'a.example.com');
  });
});

describe('sniPortConflict', () => {
  const group = [at(1, 443, 'a.example.com'), at(2, 443, '*.example.com'), at(3, 443, null)];

  it('lets patterns and one fallback share a port, and nothing conflicts elsewhere', () => {
    assert.equal(sniPortConflict(group.slice(0, 2), at(9, 443, null)), undefined);
    assert.equal(sniPortConflict(group, at(9, 443, 'b.example.com')), undefined);
    assert.equal(sniPortConflict(group, at(9, 444, null)), undefined);
    assert.equal(sniPortConflict(group, at(9, 444, 'a.example.com')), undefined);
    assert.equal(sniPortConflict([], at(9, 443, 'a.example.com')), undefined);
  });

  it('refuses a duplicate pattern and a second fallback, naming the holder', () => {
    assert.deepEqual(sniPortConflict(group, at(9, 443, 'a.example.com')), {
      code: 'conflict.sni_route_duplicate',
      ruleId: 1,
      port: 443,
    });
    assert.deepEqual(sniPortConflict(group, at(9, 443, '*.example.com')), {
      code: 'conflict.sni_route_duplicate',
      ruleId: 2,
      port: 443,
    });
    assert.deepEqual(sniPortConflict(group, at(9, 443, null)), {
      code: 'conflict.sni_fallback_duplicate',
      ruleId: 3,
      port: 443,
    });
  });

  it('keeps plain and SNI ports apart, ranges included', () => {
    const plain = [at(5, 80, null)];
    assert.equal(
      sniPortConflict(plain, at(9, 80, 'a.example.com'))?.code,
      'conflict.legacy_to_sni_unsupported',
    );
    assert.equal(sniPortConflict(plain, at(9, 80, null))?.code, 'port_in_use');
    const range = [at(6, 1000, null, 1010)];
    assert.deepEqual(sniPortConflict(range, at(9, 1005, 'a.example.com')), {
      code: 'conflict.legacy_to_sni_unsupported',
      ruleId: 6,
      port: 1005,
    });
    assert.deepEqual(sniPortConflict(range, at(9, 1008, null, 1020)), {
      code: 'port_in_use',
      ruleId: 6,
      port: 1008,
    });
    assert.deepEqual(sniPortConflict(group, at(9, 440, null, 450)), {
      code: 'conflict.legacy_to_sni_unsupported',
      ruleId: 1,
      port: 443,
    });
  });

  it('judges an edit against its own current mode', () => {
    // A lone plain rule that gains a pattern would switch its port's mode.
    assert.equal(
      sniPortConflict([], at(5, 80, 'a.example.com'), at(5, 80, null))?.code,
      'conflict.legacy_to_sni_unsupported',
    );
    // A patterned rule that becomes a range over its port, likewise.
    assert.equal(
      sniPortConflict([], at(1, 440, null, 450), at(1, 443, 'a.example.com'))?.code,
      'conflict.legacy_to_sni_unsupported',
    );
    // A fallback of a live SNI port may take a pattern; a member may drop its pattern.
    assert.equal(
      sniPortConflict(group.slice(0, 2), at(3, 443, 'c.example.com'), at(3, 443, null)),
      undefined,
    );
    assert.equal(
      sniPortConflict([group[0]!, group[2]!], at(2, 443, 'b.example.com'), group[1]),
      undefined,
    );
    assert.equal(sniPortConflict([], at(1, 443, null), at(1, 443, 'a.example.com')), undefined);
  });
});

describe('SniRouteTable', () => {
  it('looks up exact, then the wildcard one label up, then the fallback', () => {
    const table = new SniRouteTable<string>();
    table.set('a.example.com', 'exact');
    table.set('*.example.com', 'wild');
    table.set('*.b.example.com', 'deeper');
    assert.deepEqual(table.lookup('A.example.com.'), { route: 'exact', kind: 'exact' });
    assert.deepEqual(table.lookup('x.example.com'), { route: 'wild', kind: 'wildcard' });
    assert.deepEqual(table.lookup('x.b.example.com'), { route: 'deeper', kind: 'wildcard' });
    // Not the apex, not two labels down, not a suffix match inside a label.
    assert.equal(table.lookup('example.com'), undefined);
    assert.equal(table.lookup('x.y.example.com'), undefined);
    assert.equal(table.lookup('xexample.com'), undefined);
    table.set(null, 'fallback');
    assert.deepEqual(table.lookup('x.y.example.com'), { route: 'fallback', kind: 'fallback' });
    assert.deepEqual(table.fallback(), { route: 'fallback', kind: 'fallback' });
    table.delete('*.example.com');
    table.delete(null);
    assert.equal(table.lookup('x.example.com'), undefined);
    assert.equal(table.size, 2);
  });
});
