/**
 * The `portunus-client` command line (reference §1.6): the daemon (no subcommand) and
 * `enroll URI [--out PATH]`. Commander parses; the daemon action resolves the bundle (with the
 * Docker-style self-bootstrap from `PORTUNUS_ENROLL_URI`), turns SIGINT/SIGTERM into an abort and
 * runs the daemon loop. Every failure is a catalogued PortunusError turned into an exit code by
 * core's runMain; `runClientCli` returns that code for the bin file. Depends on core, proto (via
 * enroll/daemon) and forwarder only.
 */
import dns from 'node:dns';
import path from 'node:path';

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';

import {
  EVENTS,
  PortunusError,
  createLogger,
  requireNonBlankPath,
  runMain,
  terminalSafeWriter,
  type Logger,
} from '@portunus/core';
import { systemDnsBackend } from '@portunus/forwarder';

import {
  bundleNotFound,
  defaultEnrollPath,
  readBundle,
  resolveBundlePath,
  type Env,
} from './bundle.js';
import { runDaemon } from './daemon.js';
import { enroll } from './enroll.js';
import { CLIENT_VERSION } from './version.js';

export interface ClientCliIo {
  env: Env;
  cwd: string;
  logger: Logger;
  writeOut: (text: string) => void;
  writeErr: (text: string) => void;
}

interface DaemonFlags {
  bundle?: string;
  reconnectInitialDelayMs: number;
  reconnectMaxDelaySecs: number;
  shutdownDrainTimeoutSecs: number;
  statsReportIntervalSecs: number;
  statsReportIntervalMs?: number;
  dnsServer: string[];
  hostsFile?: string;
}

/** One `--dns-server` value, checked by the resolver that will use it (ip, ip:port, [ip6]:port). */
function dnsServer(raw: string, previous: string[]): string[] {
  try {
    new dns.Resolver().setServers([raw]);
  } catch {
    throw new InvalidArgumentError('expected an IP address with an optional :port');
  }
  return [...previous, raw];
}

const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

function integer(minimum: number): (raw: string) => number {
  return (raw) => {
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < minimum) {
      throw new InvalidArgumentError(`expected an integer ≥ ${minimum}`);
    }
    return value;
  };
}

export async function runClientCli(
  argv: readonly string[],
  overrides: Partial<ClientCliIo> = {},
): Promise<number> {
  const io: ClientCliIo = {
    env: overrides.env ?? process.env,
    cwd: overrides.cwd ?? process.cwd(),
    logger: overrides.logger ?? createLogger(),
    // Stored text never reaches a terminal raw (control characters escaped; JSON stays valid).
    writeOut: terminalSafeWriter(overrides.writeOut ?? ((text) => process.stdout.write(text))),
    writeErr: overrides.writeErr ?? ((text) => process.stderr.write(text)),
  };
  let exitCode = 0;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  return runMain(
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
}

function buildProgram(io: ClientCliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('portunus-client')
    .description('Portunus edge client: receives forwarding rules over a pinned control stream')
    .version(CLIENT_VERSION)
    .exitOverride()
    .configureOutput({
      writeOut: io.writeOut,
      writeErr: io.writeErr,
      // runMain prints the one `error: <code>: <message>` line.
      outputError: () => undefined,
    })
    .showSuggestionAfterError(true)
    .addOption(
      new Option(
        '--bundle <path>',
        'credential bundle (default: $PORTUNUS_CLIENT_BUNDLE, ' +
          '$XDG_CONFIG_HOME/portunus/client.bundle.json, ~/.config/portunus/client.bundle.json, ' +
          './client.bundle.json)',
      ).argParser((value) => requireNonBlankPath(value, '--bundle')),
    )
    .addOption(
      new Option('--reconnect-initial-delay-ms <ms>', 'reconnect backoff base')
        .argParser(integer(1))
        .default(500),
    )
    .addOption(
      new Option('--reconnect-max-delay-secs <secs>', 'reconnect backoff cap')
        .argParser(integer(1))
        .default(30),
    )
    .addOption(
      new Option(
        '--shutdown-drain-timeout-secs <secs>',
        'how long in-flight connections may drain on shutdown or stream loss',
      )
        .argParser(integer(0))
        .default(30),
    )
    .addOption(
      new Option('--stats-report-interval-secs <secs>', 'StatsReport cadence')
        .argParser(integer(1))
        .default(5),
    )
    .addOption(
      new Option(
        '--dns-server <addr>',
        'DNS server for target names, ip[:port]; repeat for several (default: /etc/resolv.conf)',
      )
        .argParser(dnsServer)
        .default([]),
    )
    .addOption(
      new Option(
        '--hosts-file <path>',
        'hosts file read before DNS (default: /etc/hosts)',
      ).argParser((value) => requireNonBlankPath(value, '--hosts-file')),
    )
    .addOption(
      // Finer cadence for tests; not part of the documented surface.
      new Option('--stats-report-interval-ms <ms>').argParser(integer(1)).hideHelp(),
    )
    .action(async (flags: DaemonFlags) => {
      setExitCode(await daemon(flags, io));
    });

  program
    .command('enroll')
    .description('redeem a one-time enrollment URI and write the credential bundle')
    .argument('<uri>', 'portunus://host:port/enroll?pin=sha256:<hex>&code=<code>')
    .option(
      '--out <path>',
      'where to write the bundle (default: the bundle search path)',
      (value: string) => requireNonBlankPath(value, '--out'),
    )
    .action(async (uri: string, flags: { out?: string }) => {
      const outPath =
        flags.out !== undefined
          ? path.resolve(io.cwd, flags.out)
          : defaultEnrollPath(io.env, io.cwd);
      const result = await enroll({ uri, outPath, logger: io.logger });
      io.writeOut(`${result.path}\n`);
      setExitCode(0);
    });

  return program;
}

async function daemon(flags: DaemonFlags, io: ClientCliIo): Promise<number> {
  const log = io.logger;
  const resolution = resolveBundlePath(flags.bundle, io.env, io.cwd);
  let bundlePath: string;
  if (resolution.found) {
    bundlePath = resolution.path;
  } else {
    const uri = io.env['PORTUNUS_ENROLL_URI'];
    if (uri === undefined || uri.trim() === '') throw bundleNotFound(resolution.attempted);
    bundlePath = resolution.bootstrapPath;
    log.info(EVENTS.clientSelfBootstrap, { path: bundlePath });
    try {
      await enroll({ uri, outPath: bundlePath, logger: log });
    } catch (error) {
      log.error(EVENTS.clientSelfBootstrapFailed, { path: bundlePath, error });
      throw error;
    }
  }
  const bundle = readBundle(bundlePath);
  log.info(EVENTS.clientBundleLoaded, {
    path: bundlePath,
    client_id: bundle.client_id,
    client_name: bundle.client_name,
    server_endpoint: bundle.server_endpoint,
  });

  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    log.info(EVENTS.shutdownSignal, { signal });
    stop.abort();
  };
  for (const name of STOP_SIGNALS) process.once(name, onSignal);
  try {
    await runDaemon({
      bundle,
      logger: log,
      signal: stop.signal,
      reconnectInitialDelayMs: flags.reconnectInitialDelayMs,
      reconnectMaxDelayMs: flags.reconnectMaxDelaySecs * 1000,
      shutdownDrainTimeoutMs: flags.shutdownDrainTimeoutSecs * 1000,
      statsReportIntervalMs: flags.statsReportIntervalMs ?? flags.statsReportIntervalSecs * 1000,
      forwarderOptions: {
        resolver: {
          backend: systemDnsBackend({
            ...(flags.dnsServer.length > 0 ? { servers: flags.dnsServer } : {}),
            ...(flags.hostsFile !== undefined
              ? { hostsPath: path.resolve(io.cwd, flags.hostsFile) }
              : {}),
          }),
        },
      },
    });
  } finally {
    for (const name of STOP_SIGNALS) process.off(name, onSignal);
  }
  log.info(EVENTS.clientStopped, {});
  return 0;
}
