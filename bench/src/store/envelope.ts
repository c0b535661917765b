/**
 * Section 2, the audit envelope query on the large table: 100-row pages through queryAudit (a
 * first page inside a 1-day since/until window, and next pages from a cursor at a random depth of
 * the 30-day range) against the raw keyset SELECT with LIMIT 101 on the same connection, so both
 * see the same page cache. Ours and raw alternate query by query; every pair is checked to return
 * the same rows. It also checks that a page really is a keyset walk (cost flat with depth) and
 * prints SQLite's plan, because the plan text alone does not show where the range starts
 * (reference/perf-baselines.md §6).
 */
import {
  encodeAuditCursor,
  openStore,
  queryAudit,
  type AuditPage,
  type AuditQuery,
} from '@portunus/store';

import type { BenchConfig } from './config.js';
import { BASE_TS, SPAN_MS, rng, tableTs } from './fixtures.js';
import type { LargeStore } from './large-store.js';
import {
  formatMs,
  median,
  nowMs,
  overlapsAny,
  percentile,
  progress,
  trackGc,
  type Span,
  type Goal,
  type ResultRow,
  type SectionResult,
} from './report.js';

/** Goal from the issue: a page within 2x of the raw keyset query. */
export const ENVELOPE_GOAL = 2;
/** Deepest-quarter p50 over shallowest-quarter p50 above this means the walk is not keyset. */
export const DEPTH_LIMIT = 1.5;
const DAY_MS = 86_400_000;
const LIMIT = 100;

const RAW_PAGE_SQL =
  'SELECT * FROM audit WHERE (ts, seq) < (?, ?) AND ts >= ? ORDER BY ts DESC, seq DESC LIMIT 101';
const RAW_OUTCOME_SQL =
  'SELECT * FROM audit WHERE outcome = ? AND (ts, seq) < (?, ?) AND ts >= ? ' +
  'ORDER BY ts DESC, seq DESC LIMIT 101';

interface PageCase {
  ours: AuditQuery;
  raw: readonly (number | string)[];
  /** 0 = the newest row, 1 = the oldest. */
  depth: number;
}

interface Samples {
  ours: number[];
  raw: number[];
  depths: number[];
  oursSpans: Span[];
  rawSpans: Span[];
}

function firstPageCases(count: number, next: () => number): PageCase[] {
  return Array.from({ length: count }, () => {
    const since = BASE_TS + Math.floor(next() * (SPAN_MS - DAY_MS));
    const until = since + DAY_MS - 1;
    return {
      ours: { since, until, limit: LIMIT },
      raw: [until + 1, 0, since],
      depth: 1 - (since + DAY_MS - BASE_TS) / SPAN_MS,
    };
  });
}

function cursorCases(
  count: number,
  next: () => number,
  rows: number,
  outcome?: 'deny',
): PageCase[] {
  const until = BASE_TS + SPAN_MS;
  return Array.from({ length: count }, () => {
    // Row i is (tableTs(i), i + 1) (checked by the build); keep 200+ older rows below it.
    const index = 200 + Math.floor(next() * (rows - 200));
    const ts = tableTs(index, rows);
    const cursor = encodeAuditCursor({ ts, seq: index + 1 });
    const ours: AuditQuery = { since: BASE_TS, until, cursor, limit: LIMIT };
    const depth = (rows - 1 - index) / rows;
    return outcome === undefined
      ? { ours, raw: [ts, index + 1, BASE_TS], depth }
      : { ours: { ...ours, outcome }, raw: [outcome, ts, index + 1, BASE_TS], depth };
  });
}

function samePage(page: AuditPage, raw: readonly { seq: number }[]): boolean {
  if (page.entries.length !== Math.min(raw.length, LIMIT)) return false;
  if ((page.nextCursor !== undefined) !== raw.length > LIMIT) return false;
  return page.entries.every((entry, index) => entry.seq === raw[index]?.seq);
}

/** Alternates ours and raw on each case, checks they agree, times both. */
function compare(
  label: string,
  cases: readonly PageCase[],
  warmup: number,
  limitMs: number,
  ours: (query: AuditQuery) => AuditPage,
  raw: (params: readonly (number | string)[]) => { seq: number }[],
): Samples {
  progress(`envelope: ${label}, ${cases.length - warmup} timed pairs`);
  const samples: Samples = { ours: [], raw: [], depths: [], oursSpans: [], rawSpans: [] };
  const start = nowMs();
  cases.forEach((pageCase, index) => {
    if (nowMs() - start > limitMs) return;
    let page: AuditPage;
    let rows: { seq: number }[];
    let oursSpan: Span;
    let rawSpan: Span;
    const t0 = nowMs();
    if (index % 2 === 0) {
      page = ours(pageCase.ours);
      const t1 = nowMs();
      rows = raw(pageCase.raw);
      oursSpan = { start: t0, end: t1 };
      rawSpan = { start: t1, end: nowMs() };
    } else {
      rows = raw(pageCase.raw);
      const t1 = nowMs();
      page = ours(pageCase.ours);
      rawSpan = { start: t0, end: t1 };
      oursSpan = { start: t1, end: nowMs() };
    }
    if (!samePage(page, rows)) {
      throw new Error(`${label}: queryAudit and the raw query disagree on case ${index}`);
    }
    if (page.entries.length === 0) throw new Error(`${label}: empty page on case ${index}`);
    if (index < warmup) return;
    samples.ours.push(oursSpan.end - oursSpan.start);
    samples.raw.push(rawSpan.end - rawSpan.start);
    samples.depths.push(pageCase.depth);
    samples.oursSpans.push(oursSpan);
    samples.rawSpans.push(rawSpan);
  });
  return samples;
}

/** p50 of the samples whose depth is in [from, to). */
function depthP50(samples: readonly number[], depths: readonly number[], from: number, to: number) {
  return median(
    samples.filter((_, index) => (depths[index] ?? -1) >= from && (depths[index] ?? 2) < to),
  );
}

/** The samples whose span no GC pause overlapped. */
function withoutGc(samples: readonly number[], spans: readonly Span[], pauses: readonly Span[]) {
  return samples.filter((_, index) => {
    const span = spans[index];
    return span !== undefined && !overlapsAny(span, pauses);
  });
}

export async function benchEnvelope(
  large: LargeStore,
  config: BenchConfig,
): Promise<SectionResult> {
  const store = openStore(large.dataDir); // reopened normally: synchronous=FULL, as serve runs
  try {
    const gc = trackGc();
    const { db } = store;
    const rawPage = db.prepare(RAW_PAGE_SQL);
    const rawOutcome = db.prepare(RAW_OUTCOME_SQL);
    const runRaw =
      (statement: typeof rawPage) =>
      (params: readonly (number | string)[]): { seq: number }[] =>
        statement.all(...params) as { seq: number }[];
    const ours = (query: AuditQuery): AuditPage => queryAudit(db, query);
    const count = config.warmup + config.querySamples;
    const next = rng(11);
    const kinds = {
      first: compare(
        'first page, 1-day since/until',
        firstPageCases(count, next),
        config.warmup,
        config.queryKindLimitMs,
        ours,
        runRaw(rawPage),
      ),
      cursor: compare(
        'next page, cursor at a random depth',
        cursorCases(count, next, large.rows),
        config.warmup,
        config.queryKindLimitMs,
        ours,
        runRaw(rawPage),
      ),
      deny: compare(
        'next page, outcome=deny, random depth',
        cursorCases(count, next, large.rows, 'deny'),
        config.warmup,
        config.queryKindLimitMs,
        ours,
        runRaw(rawOutcome),
      ),
    };
    const pauses = await gc.stop();
    const plan = (sql: string, params: readonly (number | string)[]): string =>
      (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[])
        .map((row) => row.detail)
        .join('; ');
    const mid = tableTs(large.rows >> 1, large.rows);

    const rows: ResultRow[] = [];
    const goals: Goal[] = [];
    const addKind = (what: string, samples: Samples, goal: boolean): void => {
      for (const p of [50, 99]) {
        const oursMs = percentile(samples.ours, p);
        const rawMs = percentile(samples.raw, p);
        rows.push({
          what: `2 ${what}, p${p}`,
          ours: formatMs(oursMs),
          raw: formatMs(rawMs),
          ratio: oursMs / rawMs,
        });
        if (goal) {
          goals.push({
            what: `envelope ${what}, p${p}`,
            measured: `${(oursMs / rawMs).toFixed(2)}x raw (${formatMs(oursMs)})`,
            target: `<= ${ENVELOPE_GOAL}x raw`,
            met: oursMs / rawMs <= ENVELOPE_GOAL,
          });
        }
      }
    };
    addKind('first page (1-day window)', kinds.first, true);
    addKind('cursor page (random depth)', kinds.cursor, true);
    addKind('cursor page, outcome=deny', kinds.deny, false);
    const gcNotes: string[] = [];
    for (const [what, samples] of [
      ['first page', kinds.first],
      ['cursor page', kinds.cursor],
    ] as const) {
      const oursClean = withoutGc(samples.ours, samples.oursSpans, pauses);
      const rawClean = withoutGc(samples.raw, samples.rawSpans, pauses);
      const oursP99 = percentile(oursClean, 99);
      const rawP99 = percentile(rawClean, 99);
      rows.push({
        what: `2 ${what}, p99 of samples no GC pause hit`,
        ours: formatMs(oursP99),
        raw: formatMs(rawP99),
        ratio: oursP99 / rawP99,
      });
      gcNotes.push(
        `2: ${what}: a GC pause overlapped ${samples.ours.length - oursClean.length} of ` +
          `${samples.ours.length} ours samples and ${samples.raw.length - rawClean.length} raw ones.`,
      );
    }

    const { ours: cursorOurs, raw: cursorRaw, depths } = kinds.cursor;
    const shallowOurs = depthP50(cursorOurs, depths, 0, 0.25);
    const deepOurs = depthP50(cursorOurs, depths, 0.75, 1.01);
    const shallowRaw = depthP50(cursorRaw, depths, 0, 0.25);
    const deepRaw = depthP50(cursorRaw, depths, 0.75, 1.01);
    rows.push({
      what: '2 cursor page p50, newest vs oldest quarter',
      ours: `${formatMs(shallowOurs)} / ${formatMs(deepOurs)}`,
      raw: `${formatMs(shallowRaw)} / ${formatMs(deepRaw)}`,
    });
    goals.push({
      what: 'envelope page cost flat with depth (keyset)',
      measured: `oldest/newest quarter ${(deepOurs / shallowOurs).toFixed(2)}x`,
      target: `<= ${DEPTH_LIMIT}x`,
      met: deepOurs / shallowOurs <= DEPTH_LIMIT,
    });

    const gcMs = pauses.reduce((sum, pause) => sum + pause.end - pause.start, 0);
    const notes = [
      ...gcNotes,
      `2: ${pauses.length} GC pauses, ${gcMs.toFixed(0)} ms in all, during the page queries.`,
      `2: ${kinds.cursor.ours.length} timed pairs per kind; ${large.rows.toLocaleString('en-US')} rows, ` +
        `${(large.bytes / 1e6).toFixed(1)} MB, built in ${(large.buildMs / 1000).toFixed(1)} s.`,
      `2: plan of the page query: ${plan(RAW_PAGE_SQL, [mid, large.rows >> 1, BASE_TS])}`,
      `2: plan of the outcome page query: ${plan(RAW_OUTCOME_SQL, ['deny', mid, large.rows >> 1, BASE_TS])}`,
    ];
    return { rows, goals, notes };
  } finally {
    store.close();
  }
}
