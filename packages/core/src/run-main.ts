/**
 * The one place a thrown failure becomes a process outcome: its catalogued event is logged, a
 * single `error: <code>: <message>` line goes to stderr, and the exit code is returned for the
 * `bin/` file to exit with (only `bin/` files end processes). Depends on the catalogue and logger.
 */
import { EVENTS } from './events.js';
import { EXIT } from './exit-codes.js';
import { isPortunusError } from './errors.js';
import type { Logger } from './log.js';

export interface RunMainIo {
  logger: Logger;
  /** Human-readable error line; stderr unless a test captures it. */
  writeErrorLine?: (line: string) => void;
}

/** Runs `main`, returning the exit code: its own (or 0), or the failure's catalogued one. */
export async function runMain(
  main: () => Promise<number | undefined>,
  io: RunMainIo,
): Promise<number> {
  const writeErrorLine = io.writeErrorLine ?? ((line: string) => process.stderr.write(line));
  try {
    return (await main()) ?? EXIT.ok;
  } catch (error) {
    if (isPortunusError(error)) {
      io.logger.error(error.event, { code: error.code, ...error.fields }, error.message);
      writeErrorLine(`error: ${error.code}: ${error.message}\n`);
      return error.exitCode;
    }
    io.logger.error(EVENTS.unexpectedError, { error: describe(error) }, 'unexpected failure');
    writeErrorLine(`error: internal_error: ${describe(error).message}\n`);
    return EXIT.runtime;
  }
}

function describe(error: unknown): { message: string; stack?: string } {
  if (error instanceof Error)
    return { message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { message: String(error) };
}
