// The one host-name grammar (host-name.ts): what passes, each kind of problem, and the trailing
// dot only where a caller allows it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { hostNameProblem, isHostName } from './host-name.js';

describe('hostNameProblem', () => {
  it('accepts RFC-1123 names of any case, with digits and inner hyphens', () => {
    for (const name of ['a', 'edge-1.example.COM', '1a.example', 'x'.repeat(63) + '.io']) {
      assert.equal(hostNameProblem(name), undefined, name);
      assert.equal(isHostName(name), true, name);
    }
  });

  it('names each problem', () => {
    assert.deepEqual(hostNameProblem('a'.repeat(254)), { kind: 'too_long' });
    for (const name of ['', '10.0.0.256', '1.2.3', 'a..b', 'a_b.example', 'a b', '[::1]']) {
      assert.deepEqual(hostNameProblem(name), { kind: 'not_a_name' }, name);
    }
    const long = 'y'.repeat(64);
    assert.deepEqual(hostNameProblem(`${long}.io`), { kind: 'label_too_long', label: long });
    assert.deepEqual(hostNameProblem('-a.io'), { kind: 'label_hyphen', label: '-a' });
    assert.deepEqual(hostNameProblem('a.io-'), { kind: 'label_hyphen', label: 'io-' });
  });

  it('takes one trailing dot only when asked', () => {
    assert.equal(isHostName('example.com.'), false);
    assert.equal(hostNameProblem('example.com.', { trailingDot: true }), undefined);
    assert.deepEqual(hostNameProblem('example.com..', { trailingDot: true }), {
      kind: 'not_a_name',
    });
  });
});
