/**
 * The public face of @portunus/core: what every other package may use. core imports no
 * workspace package (DESIGN.md §2).
 */
export { EXIT, type ExitCode } from './exit-codes.js';
export { EVENTS, type EventName } from './events.js';
export {
  ERROR_CATALOGUE,
  PortunusError,
  errorBody,
  isPortunusError,
  type ErrorCode,
  type ErrorFields,
} from './errors.js';
export {
  REDACTED,
  createLogger,
  isSecretField,
  redactSecrets,
  silentLogger,
  type LogEvent,
  type LogFields,
  type LogLevel,
  type Logger,
  type LoggerOptions,
} from './log.js';
export {
  assertPrintableText,
  escapeForTerminal,
  terminalSafeWriter,
  hasControlCharacter,
  requireNonBlankPath,
} from './cli-text.js';
export {
  MAX_HOST_LABEL_LENGTH,
  MAX_HOST_NAME_LENGTH,
  hostNameProblem,
  isHostName,
  type HostNameProblem,
} from './host-name.js';
export { prettyDestination, prettyLine, type LineDestination } from './pretty-log.js';
export { runMain, type RunMainIo } from './run-main.js';
export { compactUtcStamp, formatRfc3339, parseRfc3339 } from './time.js';
