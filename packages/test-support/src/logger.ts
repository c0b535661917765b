/**
 * The recording logger of tests: every line (level, event, fields) appended in order, children
 * included, so a test can assert what was logged and wait for an event with a deadline instead
 * of sleeping. Depends on core's Logger shape and this package's waiting only.
 */
import type { LogFields, Logger } from '@portunus/core';

import { waitFor } from './wait.js';

export interface RecordedLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  event: string;
  fields: LogFields;
}

export interface RecordingLogger extends Logger {
  readonly lines: RecordedLine[];
  /** The events logged so far, in order. */
  events(): string[];
  count(event: string): number;
  /** Resolves with the fields of the first line of `event` that `where` accepts. */
  waitFor(
    event: string,
    where?: (fields: LogFields) => boolean,
    timeoutMs?: number,
  ): Promise<LogFields>;
}

export function recordingLogger(lines: RecordedLine[] = []): RecordingLogger {
  const at =
    (level: RecordedLine['level']) =>
    (event: string, fields: LogFields = {}): void => {
      lines.push({ level, event, fields });
    };
  const find = (event: string, where: (fields: LogFields) => boolean): RecordedLine | undefined =>
    lines.find((line) => line.event === event && where(line.fields));
  const logger: RecordingLogger = {
    lines,
    events: () => lines.map((line) => line.event),
    count: (event) => lines.filter((line) => line.event === event).length,
    waitFor: async (event, where = () => true, timeoutMs) => {
      await waitFor(() => find(event, where) !== undefined, {
        what: `log event ${event}`,
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      });
      return (find(event, where) as RecordedLine).fields;
    },
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}
