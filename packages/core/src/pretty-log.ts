/**
 * Log lines for a person at a terminal (the standalone's `log_format = "pretty"`, the server's
 * `log_format = "compact"`): the JSON log lines rewritten one line each as
 * `HH:MM:SS.mmm LEVEL event key=value …`. It wraps the logger's destination, so the JSON logger
 * (and its secret redaction) stays the only producer of lines. Depends on node:fs only.
 */
import fs from 'node:fs';

export interface LineDestination {
  write(line: string): boolean;
}

/** Rewrites each JSON line; anything unparseable passes through unchanged. */
export function prettyDestination(fd = 2): LineDestination {
  return {
    write(chunk: string): boolean {
      for (const line of chunk.split('\n')) {
        if (line === '') continue;
        fs.writeSync(fd, `${prettyLine(line)}\n`);
      }
      return true;
    },
  };
}

export function prettyLine(line: string): string {
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, event, msg, ...rest } = fields;
  delete rest['pid'];
  const clock = typeof time === 'string' ? time.slice(11, 23) : '';
  const pairs = Object.entries(rest).map(
    ([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
  );
  const text = typeof msg === 'string' ? ` "${msg}"` : '';
  return `${clock} ${String(level).toUpperCase().padEnd(5)} ${String(event)}${text} ${pairs.join(' ')}`.trimEnd();
}
