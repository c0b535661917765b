/**
 * JSON logging: one object per line on stderr, each with a stable dotted `event` field (DESIGN.md
 * §3). Owns secret redaction: any field whose name says it holds a token, password, secret, key
 * or cookie is replaced before the line is written, at any depth, so a careless call site cannot
 * leak one. Built on pino with a synchronous destination so the last line before an exit is never
 * lost. Depends on nothing in the workspace.
 */
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';

import type { EventName } from './events.js';

export type LogFields = Readonly<Record<string, unknown>>;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Events are either catalogued (EVENTS) or the failure event of a catalogued error. */
export type LogEvent = EventName | (string & { readonly __logEvent?: never });

export interface Logger {
  debug(event: LogEvent, fields?: LogFields, message?: string): void;
  info(event: LogEvent, fields?: LogFields, message?: string): void;
  warn(event: LogEvent, fields?: LogFields, message?: string): void;
  error(event: LogEvent, fields?: LogFields, message?: string): void;
  child(bindings: LogFields): Logger;
}

export const REDACTED = '[redacted]';

/**
 * Field names that hold secrets. `key` only as a whole word or suffix (`private_key`, `apiKey`)
 * so harmless names such as `key_path` or `monkey_count` stay readable.
 */
const SECRET_WORD = /token|password|passwd|secret|cookie|authorization|(^|_|-)key$/i;
const SECRET_CAMEL_KEY = /[a-z0-9]Key$/;
const MAX_DEPTH = 8;

export function isSecretField(name: string): boolean {
  return SECRET_WORD.test(name) || SECRET_CAMEL_KEY.test(name);
}

/** Returns a copy of `value` with every secret-named field replaced by `[redacted]`. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[truncated]';
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return redactSecrets({ name: value.name, message: value.message, code }, depth + 1);
  }
  if (Array.isArray(value)) return value.map((item) => redactSecrets(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    out[name] = isSecretField(name) ? REDACTED : redactSecrets(field, depth + 1);
  }
  return out;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; stderr (fd 2, synchronous) unless a test passes its own stream. */
  destination?: DestinationStream;
  bindings?: LogFields;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  const base = pino(
    {
      level: options.level ?? readLevel(process.env['PORTUNUS_LOG_LEVEL']),
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      messageKey: 'msg',
      formatters: {
        level: (label) => ({ level: label }),
        log: (fields) => redactSecrets(fields) as Record<string, unknown>,
      },
    },
    destination,
  );
  const root = wrap(base);
  return options.bindings ? root.child(options.bindings) : root;
}

function readLevel(raw: string | undefined): LogLevel {
  return raw === 'debug' || raw === 'warn' || raw === 'error' ? raw : 'info';
}

function wrap(inner: PinoLogger): Logger {
  const emit =
    (level: LogLevel) =>
    (event: LogEvent, fields: LogFields = {}, message?: string): void => {
      // `event` is written last so a field named `event` cannot overwrite it.
      inner[level]({ ...fields, event }, message);
    };
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    // pino's formatters do not see child bindings, so they are redacted here.
    child: (bindings) => wrap(inner.child(redactSecrets(bindings) as Record<string, unknown>)),
  };
}

/** A logger that drops everything, for library callers that do not log. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
