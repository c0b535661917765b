/**
 * What every HTTP-backed command shares on its command line and its output: `--format` and
 * `--http-endpoint`, left-aligned text tables, pretty JSON, and the one way a value becomes a
 * table cell (`-` for nothing). Output only: no HTTP, no store, no command registration.
 */
import { Option } from 'commander';

import { DEFAULT_HTTP_ENDPOINT } from './operator-client.js';
import type { CliIo } from './program.js';

export type Format = 'json' | 'text';

export interface HttpOptions {
  httpEndpoint: string;
}

export function formatOption(defaultFormat: Format = 'text'): Option {
  return new Option('--format <format>', 'output format')
    .choices(['text', 'json'])
    .default(defaultFormat);
}

export function endpointOption(): Option {
  return new Option(
    '--http-endpoint <host:port>',
    'operator HTTP endpoint of the running server',
  ).default(DEFAULT_HTTP_ENDPOINT);
}

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export function printTable(io: CliIo, header: readonly string[], rows: readonly string[][]): void {
  const table = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...table.map((row) => (row[i] ?? '').length)));
  for (const row of table) {
    io.writeOut(
      `${row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd()}\n`,
    );
  }
}

export function printJson(io: CliIo, value: unknown): void {
  io.writeOut(`${JSON.stringify(value, null, 2)}\n`);
}

/** A table cell: `-` for nothing (or the empty string), other objects as JSON. */
export function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** A record cell: as text(), but an empty string stays empty and lists join with commas. */
function recordCell(value: unknown): string {
  if (value === '') return '';
  return Array.isArray(value) ? value.map(recordCell).join(',') : text(value);
}

/**
 * `--format json` prints the answer as is; text prints one row per record with the named
 * columns, upper-cased as the header (the user, grant and credential commands).
 */
export function printRecords<T extends object>(
  io: CliIo,
  format: Format,
  value: T | readonly T[],
  columns: readonly (keyof T & string)[],
): void {
  if (format === 'json') {
    printJson(io, value);
    return;
  }
  const rows: readonly T[] = Array.isArray(value) ? value : [value as T];
  printTable(
    io,
    columns.map((column) => column.toUpperCase()),
    rows.map((row) => columns.map((column) => recordCell(row[column]))),
  );
}
