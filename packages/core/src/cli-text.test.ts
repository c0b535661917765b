// Proves the shared text guards: blank paths refused with usage_error, every control character
// class refused with validation_failed naming the field, and the escaper leaving no raw control
// character while keeping ordinary text (including non-ASCII names) as it was.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  assertPrintableText,
  escapeForTerminal,
  hasControlCharacter,
  requireNonBlankPath,
} from './cli-text.js';
import { PortunusError } from './errors.js';

const CONTROLS = ['\u0000', '\u0007', '\n', '\r', '\u001b', '\u007f', '\u0085', '\u009b'];
const UNICODE_CONTROLS = ['\u2028', '\u2029', '\u202e', '\u2066', '\u2069'];

describe('requireNonBlankPath', () => {
  it('refuses empty and whitespace-only values with usage_error', () => {
    for (const blank of ['', ' ', '\t', '\n ']) {
      assert.throws(
        () => requireNonBlankPath(blank, '--out'),
        (error: unknown) =>
          error instanceof PortunusError &&
          error.code === 'usage_error' &&
          error.exitCode === 2 &&
          error.message.startsWith('--out is empty'),
      );
    }
    assert.equal(requireNonBlankPath(' a ', '--out'), ' a ');
  });
});

describe('control characters', () => {
  it('refuses each class and names the field', () => {
    for (const char of [...CONTROLS, ...UNICODE_CONTROLS]) {
      assert.ok(hasControlCharacter(`a${char}b`), JSON.stringify(char));
      assert.throws(
        () => assertPrintableText(`a${char}b`, 'display_name'),
        (error: unknown) =>
          error instanceof PortunusError &&
          error.code === 'validation_failed' &&
          error.httpStatus === 400 &&
          /display_name/.test(error.message),
      );
    }
    assert.equal(assertPrintableText('Zoë 東京 edge-1', 'name'), 'Zoë 東京 edge-1');
  });

  it('escapes every control character but the line break, and leaves other text alone', () => {
    assert.equal(escapeForTerminal('edge-1 Zoë'), 'edge-1 Zoë');
    assert.equal(escapeForTerminal('a\u001b[31mb\n'), 'a\\u001b[31mb\n');
    assert.equal(escapeForTerminal('x\u202ey'), 'x\\u202ey');
    for (const char of [...CONTROLS, ...UNICODE_CONTROLS].filter((c) => c !== '\n')) {
      assert.ok(!hasControlCharacter(escapeForTerminal(`a${char}b`)), JSON.stringify(char));
    }
  });

  it('keeps JSON output valid JSON that decodes to the stored value', () => {
    const stored = { display_name: 'evil\u0085\u202e\u2028name', path: 'C:\\x' };
    const printed = escapeForTerminal(JSON.stringify(stored, null, 2));
    assert.ok(!hasControlCharacter(printed.replaceAll('\n', '')));
    assert.deepEqual(JSON.parse(printed), stored);
  });
});
