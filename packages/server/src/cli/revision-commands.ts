/**
 * `rules history | diff N | restore N`: the rule-set revisions of a running server, over its
 * operator API (GET /v1/rule-revisions, GET /v1/rule-revisions/{n}/diff, POST …/restore). Prints
 * plain text (or the JSON answer with --format json) and exits with the catalogued code of an
 * error; a restore that could not apply every step exits with the code of the first failure.
 * Talks HTTP only: no store, no control stream.
 */
import { Command } from 'commander';

import { ERROR_CATALOGUE, PortunusError, type ErrorCode } from '@portunus/core';

import {
  endpointOption,
  formatOption,
  printJson,
  printTable,
  text,
  type Format,
  type HttpOptions,
} from './output.js';
import { operatorClient } from './operator-client.js';
import type { CliIo } from './program.js';

type Json = Record<string, unknown>;

const list = (value: unknown): Json[] => (Array.isArray(value) ? (value as Json[]) : []);

/** `7 edge-1 tcp 18080 -> 10.0.0.5:80` from a definition view. */
function ruleLine(rule: Json): string {
  const end = rule['listen_port_end'];
  const listen =
    end === undefined ? text(rule['listen_port']) : `${text(rule['listen_port'])}-${text(end)}`;
  const targets = list(rule['targets'])
    .map((target) => `${text(target['host'])}:${text(target['port'])}`)
    .join(',');
  return `${text(rule['rule_id'])} ${text(rule['client_name'] ?? rule['client_id'])} ${text(rule['protocol'])} ${listen} -> ${targets}`;
}

function revisionNumber(value: string): string {
  if (!/^\d{1,15}$/.test(value)) {
    throw new PortunusError('usage_error', `revision ${JSON.stringify(value)} must be a number`);
  }
  return value;
}

export function registerRevisionCommands(program: Command, io: CliIo): void {
  const client = (options: HttpOptions) => operatorClient(options.httpEndpoint, io.env);
  const rules = program
    .command('rules')
    .description('rule-set revisions: history, diff against now, restore (HTTP, superadmin)');

  rules
    .command('history')
    .description('list rule-set revisions, newest first')
    .option('--limit <n>', 'revisions per page, 1..1000', '100')
    .option('--cursor <cursor>', 'the next_cursor of the previous page')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (options: HttpOptions & { limit: string; cursor?: string; format: Format }) => {
      const query = new URLSearchParams({ limit: options.limit });
      if (options.cursor !== undefined) query.set('cursor', options.cursor);
      const page = await client(options).request<Json>(
        'GET',
        `/v1/rule-revisions?${query.toString()}`,
      );
      if (options.format === 'json') {
        printJson(io, page);
        return;
      }
      printTable(
        io,
        ['REVISION', 'AT', 'ACTOR', 'ACTION', 'SUMMARY'],
        list(page['revisions']).map((revision) => [
          text(revision['revision']),
          text(revision['at']),
          text(revision['actor']),
          text(revision['action']),
          text(revision['summary']),
        ]),
      );
      if (typeof page['next_cursor'] === 'string')
        io.writeOut(`next_cursor=${page['next_cursor']}\n`);
    });

  rules
    .command('diff')
    .description(
      'what differs between revision N and now: + added since, - removed since, ~ changed',
    )
    .argument('<revision>')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(async (revision: string, options: HttpOptions & { format: Format }) => {
      const diff = await client(options).request<Json>(
        'GET',
        `/v1/rule-revisions/${revisionNumber(revision)}/diff`,
      );
      if (options.format === 'json') {
        printJson(io, diff);
        return;
      }
      io.writeOut(`revision=${text(diff['revision'])} head=${text(diff['head'])}\n`);
      for (const rule of list(diff['added'])) io.writeOut(`+ ${ruleLine(rule)}\n`);
      for (const rule of list(diff['removed'])) io.writeOut(`- ${ruleLine(rule)}\n`);
      for (const change of list(diff['changed'])) {
        const then = (change['revision'] ?? {}) as Json;
        const now = (change['now'] ?? {}) as Json;
        io.writeOut(`~ ${ruleLine(now)}\n`);
        for (const field of Array.isArray(change['fields']) ? (change['fields'] as string[]) : []) {
          io.writeOut(`    ${field}: ${text(then[field])} -> ${text(now[field])}\n`);
        }
      }
    });

  rules
    .command('restore')
    .description('make the live rule set equal to revision N, pushing only the difference')
    .argument('<revision>')
    .option('--ack-timeout <secs>', 'seconds to wait for each client answer, 1..60', '2')
    .addOption(formatOption())
    .addOption(endpointOption())
    .action(
      async (revision: string, options: HttpOptions & { ackTimeout: string; format: Format }) => {
        const ackTimeout = /^\d{1,2}$/.test(options.ackTimeout) ? Number(options.ackTimeout) : 0;
        if (ackTimeout < 1 || ackTimeout > 60) {
          throw new PortunusError('usage_error', '--ack-timeout must be 1..60 seconds');
        }
        // Each step may wait its ack budget; the answer comes when all steps are done.
        const result = await client(options).request<Json>(
          'POST',
          `/v1/rule-revisions/${revisionNumber(revision)}/restore`,
          { ack_timeout_secs: ackTimeout },
          10 * 60_000,
        );
        const failed = list(result['failed']);
        if (options.format === 'json') printJson(io, result);
        else {
          // removed lists rule ids; pushed and edited list steps that carry one.
          const ids = (key: string): string =>
            (Array.isArray(result[key]) ? (result[key] as unknown[]) : [])
              .map((step) =>
                typeof step === 'object' && step !== null
                  ? text((step as Json)['rule_id'])
                  : text(step),
              )
              .join(',') || '-';
          io.writeOut(
            `revision=${text(result['revision'])} restored_to=${text(result['restored_to'])} removed=${ids('removed')} pushed=${ids('pushed')} edited=${ids('edited')} failed=${failed.length}\n`,
          );
          for (const step of failed) {
            io.writeOut(
              `failed rule_id=${text(step['rule_id'])} action=${text(step['action'])} code=${text(step['code'])} ${text(step['message'])}\n`,
            );
          }
        }
        const [first] = failed;
        if (first) {
          const code = String(first['code']);
          throw new PortunusError(
            Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : 'activation_failed',
            `restore incomplete: ${failed.length} step(s) failed; see above`,
          );
        }
      },
    );
}
