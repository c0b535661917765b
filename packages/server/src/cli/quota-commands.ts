/**
 * `quota set|get|list|clear|remove`: traffic quotas of a running server over its operator API
 * (PUT/GET/PATCH/DELETE /v1/users/{u}/quotas/{client}, GET /v1/users/{u}/quotas,
 * GET /v1/clients/{id}/quotas), so the CLI and the routes share one use case (services/quotas.ts)
 * and QuotaView. A client is named by id or by a display name exactly one client carries
 * (DESIGN.md §8.6; the server resolves it). The server checks every value; the CLI only passes
 * numbers on as numbers. Talks HTTP only: no store, no control stream.
 */
import { Command, Option } from 'commander';

import type { QuotaView } from '@portunus/api';
import { PortunusError, formatRfc3339 } from '@portunus/core';

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

interface ViewOptions extends HttpOptions {
  format: Format;
}

interface SetOptions extends ViewOptions {
  bytes: string;
  billingAnchor?: string;
  resetDay?: string;
  enforcement?: 'hard' | 'soft';
  period?: 'monthly' | 'never';
  clearUsage?: boolean;
}

/** A decimal integer as a number; anything else goes to the server as text, which refuses it. */
function numeric(text: string): number | string {
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

function quotaPath(userId: string, client: string): string {
  return `/v1/users/${encodeURIComponent(userId)}/quotas/${encodeURIComponent(client)}`;
}

function time(seconds: number | null): string {
  return seconds === null ? '-' : formatRfc3339(seconds * 1000);
}

function printQuotas(io: CliIo, format: Format, quotas: readonly QuotaView[]): void {
  if (format === 'json') {
    printJson(io, quotas);
    return;
  }
  printTable(
    io,
    ['USER', 'CLIENT_ID', 'CLIENT', 'LIMIT', 'USED', 'REMAINING', 'POLICY', 'PERIOD_ENDS', 'STATE'],
    quotas.map((quota) => [
      quota.user_id,
      quota.client_id,
      quota.client_name,
      String(quota.monthly_bytes),
      String(quota.current_period_bytes_used),
      String(quota.budget_remaining_bytes),
      `${quota.enforcement}/${quota.period}`,
      time(quota.current_period_ends_at),
      quota.exhausted ? 'exhausted' : 'ok',
    ]),
  );
}

function viewOptions(command: Command): Command {
  return command.addOption(formatOption()).addOption(endpointOption());
}

export function registerQuotaCommands(program: Command, io: CliIo): void {
  const client = (options: HttpOptions) => operatorClient(options.httpEndpoint, io.env);
  const quota = program
    .command('quota')
    .description('traffic quotas of a user on a client (HTTP; changes need a superadmin)');

  viewOptions(
    quota
      .command('set')
      .description('create or replace a quota; its usage is kept unless --clear-usage')
      .argument('<user_id>')
      .argument('<client>', 'client id or unique name')
      .requiredOption('--bytes <n>', 'bytes allowed per period (in + out)')
      .option('--billing-anchor <unix_secs>', 'period anchor (default: kept, or now)')
      .option('--reset-day <day>', 'renew on this day of each month (1..28), midnight UTC')
      .addOption(
        new Option('--enforcement <kind>', 'hard stops traffic, soft only alerts').choices([
          'hard',
          'soft',
        ]),
      )
      .addOption(
        new Option('--period <kind>', 'monthly renews, never is spent once').choices([
          'monthly',
          'never',
        ]),
      )
      .option('--clear-usage', 'start the period from zero bytes'),
  ).action(async (userId: string, clientRef: string, options: SetOptions) => {
    const body: Record<string, unknown> = { monthly_bytes: numeric(options.bytes) };
    if (options.billingAnchor !== undefined)
      body['billing_anchor'] = numeric(options.billingAnchor);
    if (options.resetDay !== undefined) body['reset_day'] = numeric(options.resetDay);
    if (options.enforcement !== undefined) body['enforcement'] = options.enforcement;
    if (options.period !== undefined) body['period'] = options.period;
    if (options.clearUsage) body['clear_period_usage'] = true;
    const view = await client(options).request<QuotaView>(
      'PUT',
      quotaPath(userId, clientRef),
      body,
    );
    printQuotas(io, options.format, [view]);
  });

  viewOptions(
    quota
      .command('get')
      .description("a quota's status")
      .argument('<user_id>')
      .argument('<client>', 'client id or unique name'),
  ).action(async (userId: string, clientRef: string, options: ViewOptions) => {
    const view = await client(options).request<QuotaView>(
      'GET',
      `${quotaPath(userId, clientRef)}/status`,
    );
    printQuotas(io, options.format, [view]);
  });

  viewOptions(
    quota
      .command('list')
      .description("a user's quotas (--user) or a client's (--client)")
      .option('--user <user_id>')
      .option('--client <client>', 'client id or unique name'),
  ).action(async (options: ViewOptions & { user?: string; client?: string }) => {
    if ((options.user === undefined) === (options.client === undefined)) {
      throw new PortunusError('usage_error', 'give exactly one of --user or --client');
    }
    const path =
      options.user !== undefined
        ? `/v1/users/${encodeURIComponent(options.user)}/quotas`
        : `/v1/clients/${encodeURIComponent(options.client ?? '')}/quotas`;
    printQuotas(io, options.format, await client(options).request<QuotaView[]>('GET', path));
  });

  viewOptions(
    quota
      .command('clear')
      .description("reset the current period's usage to zero (the edge resumes)")
      .argument('<user_id>')
      .argument('<client>', 'client id or unique name'),
  ).action(async (userId: string, clientRef: string, options: ViewOptions) => {
    const view = await client(options).request<QuotaView>('PATCH', quotaPath(userId, clientRef), {
      clear_period_usage: true,
    });
    printQuotas(io, options.format, [view]);
  });

  quota
    .command('remove')
    .description('remove a quota (the owner is unlimited again)')
    .argument('<user_id>')
    .argument('<client>', 'client id or unique name')
    .addOption(endpointOption())
    .action(async (userId: string, clientRef: string, options: HttpOptions) => {
      await client(options).request<unknown>('DELETE', quotaPath(userId, clientRef));
    });
}
