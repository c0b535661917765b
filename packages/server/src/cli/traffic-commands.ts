/**
 * `traffic user ID | client ID | global`: the traffic history of a running server, over its
 * operator API (GET /v1/users/{id}/traffic, /v1/clients/{id}/traffic, /v1/traffic/global), so
 * the CLI and the routes answer from the same use case (services/traffic.ts) and share its
 * answer shape. `--from`/`--to` are unix seconds (default: the last hour); the server checks
 * them. Prints one row per bucket and the totals, or the JSON answer with --format json, and
 * exits with the catalogued code of an error. Talks HTTP only: no store, no control stream.
 */
import { Command, Option } from 'commander';

import { formatRfc3339 } from '@portunus/core';

import type { TrafficView } from '../services/traffic.js';
import {
  endpointOption,
  formatOption,
  printJson,
  printTable,
  type Format,
  type HttpOptions,
} from './output.js';
import { operatorClient } from './operator-client.js';
import type { CliIo } from './program.js';

interface TrafficOptions extends HttpOptions {
  from?: string;
  to?: string;
  bucket?: string;
  format: Format;
}

/** The query string; an absent bound defaults to the last hour, the rest is the server's. */
function queryString(options: TrafficOptions, filter: Record<string, string | undefined>): string {
  const to = options.to ?? String(Math.floor(Date.now() / 1000));
  const from = options.from ?? String(Number(to) - 3600);
  const params = new URLSearchParams({ from, to });
  if (options.bucket !== undefined) params.set('bucket', options.bucket);
  for (const [name, value] of Object.entries(filter)) {
    if (value !== undefined) params.set(name, value);
  }
  return params.toString();
}

function rangeOptions(command: Command): Command {
  return command
    .option('--from <unix_secs>', 'start of the range (default: an hour before --to)')
    .option('--to <unix_secs>', 'end of the range (default: now)')
    .addOption(new Option('--bucket <bucket>', 'bucket size (default: 1m up to 24 h, else 1h)'))
    .addOption(formatOption())
    .addOption(endpointOption());
}

export function registerTrafficCommands(program: Command, io: CliIo): void {
  const show = async (path: string, options: TrafficOptions, filter = {}): Promise<void> => {
    const view = await operatorClient(options.httpEndpoint, io.env).request<TrafficView>(
      'GET',
      `${path}?${queryString(options, filter)}`,
    );
    if (options.format === 'json') {
      printJson(io, view);
      return;
    }
    printTable(
      io,
      ['TS', 'BYTES_IN', 'BYTES_OUT'],
      view.samples.map((sample) => [
        formatRfc3339(sample.ts * 1000),
        String(sample.bytes_in),
        String(sample.bytes_out),
      ]),
    );
    io.writeOut(
      `bucket=${view.bucket} total_bytes_in=${view.total_bytes_in} total_bytes_out=${view.total_bytes_out}\n`,
    );
  };

  const traffic = program
    .command('traffic')
    .description('traffic history of a user, a client or the whole fleet (HTTP)');
  rangeOptions(
    traffic
      .command('user')
      .description("a user's traffic (their own, or anyone's for a superadmin)")
      .argument('<user_id>')
      .option('--client-id <client_id>', 'only the traffic on this client'),
  ).action(async (userId: string, options: TrafficOptions & { clientId?: string }) => {
    await show(`/v1/users/${encodeURIComponent(userId)}/traffic`, options, {
      client_id: options.clientId,
    });
  });
  rangeOptions(
    traffic
      .command('client')
      .description("a client's traffic (superadmin)")
      .argument('<client_id>')
      .option('--user-id <user_id>', 'only the traffic of this user'),
  ).action(async (clientId: string, options: TrafficOptions & { userId?: string }) => {
    await show(`/v1/clients/${encodeURIComponent(clientId)}/traffic`, options, {
      user_id: options.userId,
    });
  });
  rangeOptions(traffic.command('global').description('the whole fleet (superadmin)')).action(
    async (options: TrafficOptions) => {
      await show('/v1/traffic/global', options);
    },
  );
}
