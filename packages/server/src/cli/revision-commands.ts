/**
 * `rules history | diff N | restore N`: the rule-set revisions of a running server, over its
 * operator API (GET /v1/rule-revisions, GET /v1/rule-revisions/{n}/diff, POST …/restore). Prints
 * plain text (or the JSON answer with --format json) and exits with the catalogued code of an
 * error; a restore that could not apply every step exits with the code of the first failure.
 * Talks HTTP only: no store, no control stream.
 */
import { Command } from 'commander';

import type { RuleDefinitionView } from '@portunus/api';
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
import { operatorApi } from './operator-client.js';
import type { CliIo } from './program.js';

/** `7 edge-1 tcp 18080 -> 10.0.0.5:80` from a definition view. */
function ruleLine(rule: RuleDefinitionView): string {
  const end = rule.listen_port_end;
  const listen = end === undefined ? text(rule.listen_port) : `${rule.listen_port}-${end}`;
  const targets = rule.targets.map((target) => `${target.host}:${target.port}`).join(',');
  return `${rule.rule_id} ${rule.client_name ?? rule.client_id} ${rule.protocol} ${listen} -> ${targets}`;
}

function revisionNumber(value: string): string {
  if (!/^\d{1,15}$/.test(value)) {
    throw new PortunusError('usage_error', `revision ${JSON.stringify(value)} must be a number`);
  }
  return value;
}

export function registerRevisionCommands(program: Command, io: CliIo): void {
  const client = (options: HttpOptions) => operatorApi(options.httpEndpoint, io.env);
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
      const page = await client(options).listRevisions(options.limit, options.cursor);
      if (options.format === 'json') {
        printJson(io, page);
        return;
      }
      printTable(
        io,
        ['REVISION', 'AT', 'ACTOR', 'ACTION', 'SUMMARY'],
        page.revisions.map((revision) => [
          text(revision.revision),
          text(revision.at),
          text(revision.actor),
          text(revision.action),
          text(revision.summary),
        ]),
      );
      if (page.next_cursor !== undefined) io.writeOut(`next_cursor=${page.next_cursor}\n`);
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
      const diff = await client(options).revisionDiff(revisionNumber(revision));
      if (options.format === 'json') {
        printJson(io, diff);
        return;
      }
      io.writeOut(`revision=${diff.revision} head=${diff.head}\n`);
      for (const rule of diff.added) io.writeOut(`+ ${ruleLine(rule)}\n`);
      for (const rule of diff.removed) io.writeOut(`- ${ruleLine(rule)}\n`);
      for (const change of diff.changed) {
        io.writeOut(`~ ${ruleLine(change.now)}\n`);
        // The server names fields of the rule definition view (services/rule-revisions.ts).
        for (const field of change.fields as (keyof RuleDefinitionView)[]) {
          io.writeOut(
            `    ${field}: ${text(change.revision[field])} -> ${text(change.now[field])}\n`,
          );
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
        const result = await client(options).restoreRevision(revisionNumber(revision), {
          ack_timeout_secs: ackTimeout,
        });
        const { failed } = result;
        if (options.format === 'json') printJson(io, result);
        else {
          const ids = (list: readonly (number | { rule_id: number })[]): string =>
            list.map((step) => text(typeof step === 'number' ? step : step.rule_id)).join(',') ||
            '-';
          io.writeOut(
            `revision=${text(result.revision)} restored_to=${result.restored_to} removed=${ids(result.removed)} pushed=${ids(result.pushed)} edited=${ids(result.edited)} failed=${failed.length}\n`,
          );
          for (const step of failed) {
            io.writeOut(
              `failed rule_id=${step.rule_id} action=${step.action} code=${step.code} ${step.message}\n`,
            );
          }
        }
        const [first] = failed;
        if (first) {
          const code = first.code;
          throw new PortunusError(
            Object.hasOwn(ERROR_CATALOGUE, code) ? (code as ErrorCode) : 'activation_failed',
            `restore incomplete: ${failed.length} step(s) failed; see above`,
          );
        }
      },
    );
}
