/**
 * The `portunus-standalone` command line (reference §12): the daemon (no subcommand) with
 * `--config`, `--check`, `--log-level`, `--log-format`, `--no-stats`, `--stats-socket`, and
 * `stats [--socket PATH] [--once]`. Resolves the config file (`--config`,
 * `$PORTUNUS_STANDALONE_CONFIG`, `./portunus.toml`), turns SIGTERM/SIGINT into a drained stop and
 * SIGHUP into a reload. Every failure is a catalogued PortunusError made into an exit code by
 * core's runMain (0 ok, 2 config, 1 runtime); `runStandaloneCli` returns it for the bin file.
 * Depends on core, the forwarder (through the daemon) and this package only.
 */
import fs from 'node:fs';
import path from 'node:path';

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import {
  EVENTS,
  PortunusError,
  createLogger,
  prettyDestination,
  requireNonBlankPath,
  runMain,
  type LogLevel,
  type Logger,
} from '@portunus/core';

import { parseConfig, type LogFormat, type StandaloneConfig } from './config.js';
import { StandaloneDaemon } from './daemon.js';
import { runStatsCommand } from './stats-command.js';
import { STANDALONE_VERSION } from './version.js';

export type Env = Readonly<Record<string, string | undefined>>;

export interface StandaloneCliIo {
  env: Env;
  cwd: string;
  /** A fixed logger (tests); otherwise one is built from the flags and the file. */
  logger?: Logger;
  writeOut: (text: string) => void;
  writeErr: (text: string) => void;
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
}

interface DaemonFlags {
  config?: string;
  check?: boolean;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  stats: boolean;
  statsSocket?: string;
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
export const CONFIG_ENV = 'PORTUNUS_STANDALONE_CONFIG';
/** Cadence of the `standalone.stats` log line; an override for tests and busy hosts. */
export const STATS_LOG_ENV = 'PORTUNUS_STANDALONE_STATS_LOG_MS';

/** Where the config is read from, and every place looked at (for the error). */
export function resolveConfigPath(
  flag: string | undefined,
  env: Env,
  cwd: string,
): { path: string | undefined; tried: string[] } {
  if (flag !== undefined) return { path: path.resolve(cwd, flag), tried: [] };
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { path: path.resolve(cwd, fromEnv), tried: [] };
  }
  const local = path.resolve(cwd, 'portunus.toml');
  return fs.existsSync(local) ? { path: local, tried: [] } : { path: undefined, tried: [local] };
}

function readConfigFile(file: string): StandaloneConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new PortunusError(
      'standalone_config_missing',
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { path: file },
    );
  }
  return parseConfig(text, file);
}

export async function runStandaloneCli(
  argv: readonly string[],
  overrides: Partial<StandaloneCliIo> = {},
): Promise<number> {
  const io: StandaloneCliIo = {
    env: overrides.env ?? process.env,
    cwd: overrides.cwd ?? process.cwd(),
    ...(overrides.logger ? { logger: overrides.logger } : {}),
    writeOut: overrides.writeOut ?? ((text) => process.stdout.write(text)),
    writeErr: overrides.writeErr ?? ((text) => process.stderr.write(text)),
    stdin: overrides.stdin ?? process.stdin,
    stdout: overrides.stdout ?? process.stdout,
  };
  // Until the flags are read, failures are logged at the default level as JSON.
  let logger: Logger = io.logger ?? createLogger({ level: 'warn' });
  const useLogger = (next: Logger): void => {
    logger = next;
  };
  let exitCode = 0;
  const program = buildProgram(io, useLogger, (code) => {
    exitCode = code;
  });
  return runMain(
    async () => {
      try {
        await program.parseAsync(argv, { from: 'user' });
      } catch (error) {
        if (error instanceof CommanderError) {
          if (error.exitCode === 0) return 0;
          throw new PortunusError('usage_error', error.message.replace(/^error: /, ''), {
            commander_code: error.code,
          });
        }
        throw error;
      }
      return exitCode;
    },
    {
      logger: {
        debug: (...args) => {
          logger.debug(...args);
        },
        info: (...args) => {
          logger.info(...args);
        },
        warn: (...args) => {
          logger.warn(...args);
        },
        error: (...args) => {
          logger.error(...args);
        },
        child: (bindings) => logger.child(bindings),
      },
      writeErrorLine: io.writeErr,
    },
  );
}

function choice<T extends string>(allowed: readonly T[]): (raw: string) => T {
  return (raw) => {
    const value = raw.toLowerCase() as T;
    if (!allowed.includes(value)) throw new InvalidArgumentError(`expected ${allowed.join('|')}`);
    return value;
  };
}

function buildProgram(
  io: StandaloneCliIo,
  useLogger: (logger: Logger) => void,
  setExitCode: (code: number) => void,
): Command {
  const program = new Command('portunus-standalone')
    .description('Portunus standalone forwarder: TCP/UDP rules from a local portunus.toml')
    .version(STANDALONE_VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: io.writeOut,
      writeErr: io.writeErr,
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .addOption(
      new Option(
        '--config <path>',
        `config file (default: $${CONFIG_ENV}, then ./portunus.toml)`,
      ).argParser((value) => requireNonBlankPath(value, '--config')),
    )
    .option('--check', 'validate the config, print ok and exit')
    .addOption(
      new Option(
        '--log-level <level>',
        'debug|info|warn|error (default: global.log_level)',
      ).argParser(choice<LogLevel>(['debug', 'info', 'warn', 'error'])),
    )
    .addOption(
      new Option('--log-format <format>', 'json|pretty (default: global.log_format)').argParser(
        choice<LogFormat>(['json', 'pretty']),
      ),
    )
    .option('--no-stats', 'do not open the stats socket')
    .addOption(
      new Option(
        '--stats-socket <path>',
        'stats socket path (default: stats.socket_path)',
      ).argParser((value) => requireNonBlankPath(value, '--stats-socket')),
    )
    .action(async (flags: DaemonFlags) => {
      setExitCode(await daemon(flags, io, useLogger));
    });

  program
    .command('stats')
    .description('show the live counters of a running standalone (TUI, or JSON with --once)')
    .addOption(
      new Option(
        '--socket <path>',
        'stats socket (default: stats.socket_path of the config)',
      ).argParser((value) => requireNonBlankPath(value, '--socket')),
    )
    .option('--once', 'print one JSON document with every rule and its latest counters')
    .action(async (flags: { socket?: string; once?: boolean }) => {
      const socket = flags.socket ?? defaultSocketFor(program.opts<DaemonFlags>(), io);
      setExitCode(
        await runStatsCommand({
          socketPath: socket,
          once: flags.once === true,
          writeOut: io.writeOut,
          stdin: io.stdin,
          stdout: io.stdout,
        }),
      );
    });
  return program;
}

/** `stats` without --socket: the config's socket_path when a config is found, else the default. */
function defaultSocketFor(flags: DaemonFlags, io: StandaloneCliIo): string {
  const { path: file } = resolveConfigPath(flags.config, io.env, io.cwd);
  if (file === undefined) return parseConfig('', '(defaults)').stats.socketPath;
  try {
    return readConfigFile(file).stats.socketPath;
  } catch {
    return parseConfig('', '(defaults)').stats.socketPath;
  }
}

async function daemon(
  flags: DaemonFlags,
  io: StandaloneCliIo,
  useLogger: (logger: Logger) => void,
): Promise<number> {
  const resolved = resolveConfigPath(flags.config, io.env, io.cwd);
  if (resolved.path === undefined) {
    throw new PortunusError(
      'standalone_config_missing',
      `no config file: pass --config, set $${CONFIG_ENV}, or create ${resolved.tried.join(', ')}`,
      { tried: resolved.tried },
    );
  }
  const file = resolved.path;
  const config = readConfigFile(file);
  if (flags.check) {
    io.writeOut('ok\n');
    return 0;
  }
  const level = flags.logLevel ?? config.global.logLevel;
  const format = flags.logFormat ?? config.global.logFormat;
  const log =
    io.logger ??
    createLogger({
      level,
      ...(format === 'pretty' ? { destination: prettyDestination() } : {}),
      bindings: config.global.label ? { label: config.global.label } : {},
    });
  useLogger(log);
  const statsOn = flags.stats && config.stats.enabled;
  const statsLogMs = Number(io.env[STATS_LOG_ENV]);
  const standalone = new StandaloneDaemon({
    config,
    loadConfig: () => readConfigFile(file),
    logger: log,
    statsSocket: statsOn ? (flags.statsSocket ?? config.stats.socketPath) : undefined,
    ...(Number.isInteger(statsLogMs) && statsLogMs > 0 ? { statsLogIntervalMs: statsLogMs } : {}),
  });
  await standalone.start();

  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    const onStop = (signal: NodeJS.Signals): void => {
      for (const name of STOP_SIGNALS) process.off(name, onStop);
      resolve(signal);
    };
    for (const name of STOP_SIGNALS) process.on(name, onStop);
  });
  const onHangup = (): void => {
    standalone.reload().catch((error: unknown) => {
      log.error(EVENTS.unexpectedError, { error }, 'reload failed');
    });
  };
  process.on('SIGHUP', onHangup);
  try {
    const signal = await stopped;
    log.info(EVENTS.shutdownSignal, {
      signal,
      drain_secs: config.global.shutdownDrainSecs,
    });
    await standalone.stop();
  } finally {
    process.off('SIGHUP', onHangup);
  }
  return 0;
}
