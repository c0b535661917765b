/**
 * Operator-provided text at the edges of the program: path flags that must not be blank (an unset
 * shell variable expands to '' and would otherwise fall back to a default data dir, where
 * `reset --confirm` deletes the operator's store), free text that must not carry terminal control
 * characters into the store, and the one escaper every text printer uses so stored text never
 * reaches a terminal raw. Pure string functions: no Node-only imports, no workspace packages,
 * so the CLI, the HTTP routes and the store commands can all share them.
 */
import { PortunusError } from './errors.js';

/**
 * Returns `value` if it names a path; refuses '' and whitespace-only with `usage_error` (exit 2)
 * before anything is opened or created.
 */
export function requireNonBlankPath(value: string, flag: string): string {
  if (value.trim() === '') {
    throw new PortunusError(
      'usage_error',
      `${flag} is empty; pass a path (an unset shell variable expands to '')`,
      { flag },
    );
  }
  return value;
}

/**
 * C0 (U+0000..U+001F), DEL, C1 (U+0080..U+009F), the line/paragraph separators U+2028/U+2029 and
 * the bidi embedding, override and isolate controls (U+202A..U+202E, U+2066..U+2069) — every code
 * point that can move a terminal's cursor, fake a line, or reorder what an operator reads.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_GLOBAL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/gu;

export function hasControlCharacter(value: string): boolean {
  return CONTROL.test(value);
}

/**
 * Refuses free text holding a control character with `validation_failed` (HTTP 400, exit 2); the
 * message names the field so an operator knows what to fix.
 */
export function assertPrintableText(value: string, field: string): string {
  if (hasControlCharacter(value)) {
    throw new PortunusError(
      'validation_failed',
      `${field} must not contain control characters (C0, DEL, C1, U+2028/U+2029, bidi controls)`,
      { field },
    );
  }
  return value;
}

/**
 * Escapes every control character except the line break as `\uNNNN`, so what was stored —
 * possibly before validation existed — prints as visible text and cannot move a terminal's
 * cursor or reorder a line. Backslashes are left alone on purpose: the CLI sends its JSON output
 * through the same writer, and `\uNNNN` is a JSON escape of the same character, so JSON stays
 * valid and decodes to the stored value (JSON.stringify already escapes C0 but not C1 or bidi).
 */
export function escapeForTerminal(text: string): string {
  return text.replace(CONTROL_GLOBAL, (char) =>
    char === '\n' ? char : `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`,
  );
}

/** A writer that escapes what it prints (see escapeForTerminal); every CLI's stdout goes through one. */
export function terminalSafeWriter(write: (text: string) => void): (text: string) => void {
  return (text) => {
    write(escapeForTerminal(text));
  };
}
