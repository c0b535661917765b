/**
 * The `portunus-server` command line: global flags, subcommands and their text output, as in the
 * reference (§1.1, §1.2). Commander parses; each action resolves the data dir and calls one
 * function of the store or of serve. Usage errors become `usage_error` (exit 2) through the same
 * catalogue as every other failure; `runServerCli` returns the exit code for the bin file.
 */
import { Command, CommanderError, Option } from 'commander';

import {
  EVENTS,
  PortunusError,
  createLogger,
  parseRfc3339,
  prettyDestination,
  requireNonBlankPath,
  runMain,
  terminalSafeWriter,
  type Logger,
} from '@portunus/core';
import {
  backupStore,
  openStore,
  pruneAudit,
  resetStore,
  resolveDataDir,
  restoreStore,
  type Env,
} from '@portunus/store';

import type { ListenerOverrides } from '../listeners.js';
import { requireValidConfig } from './check-config.js';
import { registerFleetCommands } from './fleet-commands.js';
import { registerIdentityCommands } from './identity-commands.js';
import { registerOnboardCommand } from './onboard-command.js';
import { registerOwnerCapCommands } from './owner-cap-commands.js';
import { registerRevisionCommands } from './revision-commands.js';
import { registerSessionCommands } from './session-commands.js';
import { registerQuotaCommands } from './quota-commands.js';
import { registerTrafficCommands } from './traffic-commands.js';

export interface CliIo {
  env: Env;
  logger: Logger;
  /** `serve`'s logger when server.toml sets log_format = "compact"; only with the default logger. */
  compactLogger?: () => Logger;
  writeOut: (text: string) => void;
  writeErr: (text: string) => void;
  readStdin: () => Promise<string>;
}

interface GlobalOptions {
  dataDir?: string;
  advertisedEndpoint?: string;
}

export const SERVER_VERSION = '0.1.0';

export async function runServerCli(
  argv: readonly string[],
  overrides: Partial<CliIo> = {},
): Promise<number> {
  const io: CliIo = {
    env: overrides.env ?? process.env,
    logger: overrides.logger ?? createLogger(),
    ...(overrides.logger === undefined
      ? { compactLogger: () => createLogger({ destination: prettyDestination() }) }
      : {}),
    // Stored text never reaches a terminal raw (control characters escaped; JSON stays valid).
    writeOut: terminalSafeWriter(overrides.writeOut ?? ((text) => process.stdout.write(text))),
    writeErr: overrides.writeErr ?? ((text) => process.stderr.write(text)),
    readStdin: overrides.readStdin ?? readAllStdin,
  };
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  const status = await runMain(
    async () => {
      try {
        await program.parseAsync(argv, { from: 'user' });
      } catch (error) {
        if (error instanceof CommanderError) {
          if (error.exitCode === 0) return 0; // --help, --version
          throw new PortunusError('usage_error', error.message.replace(/^error: /, ''), {
            commander_code: error.code,
          });
        }
        throw error;
      }
      return exitCode;
    },
    { logger: io.logger, writeErrorLine: io.writeErr },
  );
  return status;
}

function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('portunus-server')
    .description('Portunus control plane: state store, operator API and edge control stream')
    .version(SERVER_VERSION)
    .addOption(
      new Option(
        '--advertised-endpoint <host:port>',
        'control endpoint clients are told to dial (env PORTUNUS_ADVERTISED_ENDPOINT)',
      ),
    )
    .addOption(
      new Option(
        '--data-dir <path>',
        'data dir (default: $STATE_DIRECTORY, $XDG_STATE_HOME/portunus, ~/.local/state/portunus)',
      ).argParser(pathArg('--data-dir')),
    )
    .exitOverride()
    .configureOutput({
      writeOut: io.writeOut,
      writeErr: io.writeErr,
      // runMain prints the one `error: <code>: <message>` line.
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true);

  const dataDir = (command: Command): string => {
    const { dataDir: flag } = command.optsWithGlobals<GlobalOptions>();
    const resolved = resolveDataDir(flag, io.env);
    io.logger.debug(EVENTS.dataDirResolved, { path: resolved.path, source: resolved.source });
    return resolved.path;
  };

  program
    .command('serve')
    .description('run the control plane until SIGINT/SIGTERM')
    .option(
      '--control-listen <addr>',
      'control stream (TLS) bind address (env PORTUNUS_CONTROL_LISTEN)',
    )
    .option(
      '--operator-http-listen <addr>',
      'operator HTTP bind address (env PORTUNUS_OPERATOR_HTTP_LISTEN)',
    )
    .option(
      '--metrics-listen <addr>',
      'loopback metrics bind address (env PORTUNUS_METRICS_LISTEN)',
    )
    .action(async (options: ListenerOverrides, command: Command) => {
      const { advertisedEndpoint } = command.optsWithGlobals<GlobalOptions>();
      // Loaded on demand: the other commands need none of fastify, x509 or prom-client.
      const { runServe } = await import('../serve.js');
      setExitCode(
        await runServe({
          dataDir: dataDir(command),
          logger: io.logger,
          ...(io.compactLogger ? { compactLogger: io.compactLogger } : {}),
          env: io.env,
          listeners: options,
          writeErr: io.writeErr,
          ...(advertisedEndpoint !== undefined ? { advertisedEndpoint } : {}),
        }),
      );
    });

  program
    .command('check-config')
    .description(
      'validate server.toml and the PORTUNUS_* environment without starting anything (ok or exit 2)',
    )
    .action((_options: object, command: Command) => {
      const dir = dataDir(command);
      const checked = requireValidConfig(dir, io.env);
      io.logger.debug(EVENTS.configChecked, { path: checked.file ?? `${dir} (no server.toml)` });
      io.writeOut('ok\n');
    });

  program
    .command('backup')
    .description(
      'write an online, verified copy of state.db (safe while serve runs; never overwrites)',
    )
    .requiredOption(
      '--out <path>',
      'destination file, or a directory for a timestamped file',
      pathArg('--out'),
    )
    .action(async (options: { out: string }, command: Command) => {
      const result = await backupStore(dataDir(command), options.out);
      io.logger.info(EVENTS.backupComplete, {
        path: result.path,
        bytes: result.bytes,
        schema_version: result.schemaVersion,
        duration_ms: result.durationMs,
      });
      io.writeOut(`backup=${result.path}\n`);
    });

  program
    .command('restore')
    .description('replace the store with a backup (refuses a non-empty data dir without --force)')
    .requiredOption('--in <path>', 'backup file to restore', pathArg('--in'))
    .option('--force', 'replace an existing state.db', false)
    .action((options: { in: string; force: boolean }, command: Command) => {
      const dir = dataDir(command);
      const result = restoreStore(dir, options.in, { force: options.force, logger: io.logger });
      io.logger.info(EVENTS.restoreComplete, {
        data_dir: dir,
        source: options.in,
        schema_version: result.schemaVersion,
        migrations_applied: result.migrationsApplied,
        replaced: result.replaced,
        tls: result.tls,
      });
      io.writeOut(`restore=ok data_dir=${dir}\n`);
    });

  program
    .command('reset')
    .description(
      'wipe state.db and its sidecars (dry run unless --confirm); keeps certificates and server.toml',
    )
    .option('--confirm', 'really remove the files', false)
    .action((options: { confirm: boolean }, command: Command) => {
      const dir = dataDir(command);
      const result = resetStore(dir, { confirm: options.confirm });
      if (result.db === undefined) {
        io.writeOut(`nothing to remove: ${dir} holds no state.db\n`);
      } else if (result.dryRun) {
        io.logger.info(EVENTS.resetDryRun, { path: result.db });
        io.writeOut(
          `would remove: ${result.db}\nrun again with --confirm to remove it (and its -wal, -shm and .lock files)\n`,
        );
      } else {
        io.logger.info(EVENTS.resetComplete, { data_dir: dir, removed: result.removed });
        io.writeOut(`reset=ok removed=${result.removed.length} data_dir=${dir}\n`);
      }
    });

  const audit = program.command('audit').description('durable audit log maintenance');
  audit
    .command('prune')
    .description(
      'delete audit rows and rule-set revisions older than a timestamp and reclaim the space',
    )
    .requiredOption(
      '--before <rfc3339>',
      'delete rows strictly older than this time, e.g. 2026-05-01T00:00:00Z',
    )
    .option('--dry-run', 'only count the rows', false)
    .action((options: { before: string; dryRun: boolean }, command: Command) => {
      const before = parseRfc3339(options.before, '--before');
      const store = openStore(dataDir(command), { logger: io.logger });
      try {
        const result = pruneAudit(store, before, { dryRun: options.dryRun });
        io.logger.info(EVENTS.auditPruneComplete, {
          dry_run: result.dryRun,
          rows: result.rows,
          rule_revisions: result.revisions,
          bytes_before: result.bytesBefore,
          bytes_after: result.bytesAfter,
          pages_freed: result.pagesFreed,
        });
        io.writeOut(
          result.dryRun
            ? // The reference's keys first; rule_revisions is ours, appended.
              `audit_prune dry_run=true would_delete=${result.rows} rule_revisions=${result.revisions}\n`
            : `audit_prune deleted=${result.rows} bytes_before=${result.bytesBefore} bytes_after=${result.bytesAfter} rule_revisions=${result.revisions}\n`,
        );
      } finally {
        store.close();
      }
    });

  registerIdentityCommands(program, { io, dataDir, readStdin: io.readStdin });
  registerFleetCommands(program, { io, dataDir });
  registerOwnerCapCommands(program, io);
  registerRevisionCommands(program, io);
  registerOnboardCommand(program, { io });
  registerSessionCommands(program, { io });
  registerTrafficCommands(program, io);
  registerQuotaCommands(program, io);
  return program;
}

/**
 * Commander parser for a path flag: an empty or blank value (an unset shell variable) is refused
 * at parse time, before any action opens or creates anything.
 */
export function pathArg(flag: string): (value: string) => string {
  return (value) => requireNonBlankPath(value, flag);
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
