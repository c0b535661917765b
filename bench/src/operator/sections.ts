/**
 * The three measured sections of the operator benchmark, each a group of routes measured together
 * (measure.ts) and the comparisons drawn from them:
 *
 * 1. GET /v1/rules with 10,000 rules (API credential) against bare fastify routes serving the same
 *    array (serialized per request) and the same bytes (pre-serialized), at the configured
 *    concurrency and with a single client;
 * 2. small reads: GET /v1/users/me with an API credential and with server.toml's operator_token,
 *    our public GET /v1/auth/status, against a bare route returning a small object;
 * 3. POST /v1/grants (a new grant each time) against a bare POST echo, loaded and single-client.
 *
 * Every route is run once unmeasured before the first section (warmUp).
 */
import { formatMs, type Goal } from '../store/report.js';
import type { OperatorBenchConfig } from './config.js';
import { GRANTEE_ID, type OperatorStore } from './fixtures.js';
import type { Client, RequestSpec } from './load.js';
import {
  measureGroup,
  stats,
  warmUp,
  type RequestCounter,
  type Side,
  type SideResult,
} from './measure.js';
import { compare, formatBytes, type Comparison } from './report.js';
import type { RunningServer } from './servers.js';

/** The goal: the authenticated read path within 2x of the bare route. */
export const READ_GOAL = 2;

export interface SectionsInput {
  config: OperatorBenchConfig;
  store: OperatorStore;
  real: RunningServer;
  ours: Client;
  bare: RunningServer;
  baseline: Client;
  /** False when the real server has no GET /v1/rules: section 1 is skipped. */
  rulesAvailable: boolean;
}

export interface SectionsOutput {
  results: SideResult[];
  comparisons: Comparison[];
  goals: Goal[];
  notes: string[];
}

export const bearer = (token: string): Record<string, string> => ({
  authorization: `Bearer ${token}`,
});

function goalLine(what: string, ratio: number): Goal {
  return {
    what,
    measured: `${ratio.toFixed(2)}x bare`,
    target: `<= ${READ_GOAL}x bare`,
    met: ratio <= READ_GOAL,
  };
}

const get = (route: string, headers?: Record<string, string>): RequestSpec => ({
  method: 'GET',
  path: route,
  ...(headers ? { headers } : {}),
  expectStatus: 200,
});

/** The body of grant number `index`: a new 100-port range for the grantee on every client. */
function grantBody(index: number): string {
  const start = 1024 + ((index * 7) % 60_000);
  return JSON.stringify({
    user_id: GRANTEE_ID,
    client: '*',
    listen_port_start: start,
    listen_port_end: start + 99,
    protocols: ['tcp'],
  });
}

export async function runSections(input: SectionsInput): Promise<SectionsOutput> {
  const { config, store } = input;
  const side = (
    server: 'ours' | 'bare',
    label: string,
    spec: RequestSpec,
    concurrency?: number,
  ): Side => ({
    label,
    server,
    peer: server === 'ours' ? input.ours : input.baseline,
    spec,
    serverPid: server === 'ours' ? input.real.pid : input.bare.pid,
    ...(concurrency !== undefined ? { concurrency } : {}),
  });
  const auth = bearer(store.token);
  const rules = (concurrency?: number): Side[] => [
    side('ours', 'GET /v1/rules (API credential)', get('/v1/rules', auth), concurrency),
    side('bare', 'GET /bare/rules (same array)', get('/bare/rules'), concurrency),
  ];
  const rulesRaw = side(
    'bare',
    'GET /bare/rules-raw (same bytes, pre-serialized)',
    get('/bare/rules-raw'),
  );
  const small = [
    side('ours', 'GET /v1/users/me (API credential)', get('/v1/users/me', auth)),
    side(
      'ours',
      'GET /v1/users/me (operator_token)',
      get('/v1/users/me', bearer(store.operatorToken)),
    ),
    side('ours', 'GET /v1/auth/status (public, no auth)', get('/v1/auth/status')),
    side('bare', 'GET /bare/me (small object)', get('/bare/me')),
  ];
  const grants = (concurrency?: number): Side[] => [
    side(
      'ours',
      'POST /v1/grants (API credential)',
      { method: 'POST', path: '/v1/grants', headers: auth, body: grantBody, expectStatus: 201 },
      concurrency,
    ),
    side(
      'bare',
      'POST /bare/grants (echo)',
      { method: 'POST', path: '/bare/grants', body: grantBody, expectStatus: 201 },
      concurrency,
    ),
  ];

  const counter: RequestCounter = { next: 0 };
  const out: SectionsOutput = { results: [], comparisons: [], goals: [], notes: [] };
  const measure = async (name: string, sides: readonly Side[]): Promise<SideResult[]> => {
    const results = await measureGroup(name, sides, config, counter);
    out.results.push(...results);
    return results;
  };
  await warmUp(
    [...(input.rulesAvailable ? [...rules(), rulesRaw] : []), ...small, ...grants()],
    config,
    counter,
  );

  // 1. The large authenticated read.
  if (!input.rulesAvailable) {
    out.goals.push({
      what: 'GET /v1/rules (10k), all figures',
      measured: 'not measured: no route',
      target: `<= ${READ_GOAL}x bare`,
      met: false,
    });
  } else {
    const [oursLoaded, bareLoaded, rawLoaded] = await measure('1 GET 10k rules', [
      ...rules(),
      rulesRaw,
    ]);
    const [oursSingle, bareSingle] = await measure('1 GET 10k rules, one client', rules(1));
    const loaded = compare('1 GET /v1/rules, 10k rules', oursLoaded!, bareLoaded!);
    const single = compare('1 GET /v1/rules, 10k rules, 1 client', oursSingle!, bareSingle!);
    out.comparisons.push(
      loaded,
      single,
      compare('1 bare: serialized per request vs pre-serialized', bareLoaded!, rawLoaded!),
    );
    out.notes.push(
      `1: response bodies: ours ${formatBytes(oursLoaded!.bytesPerResponse)}, bare ` +
        `${formatBytes(bareLoaded!.bytesPerResponse)} (bare re-serializes the array ours ` +
        'returned, so the two match when both use JSON.stringify).',
    );
    out.goals.push(
      goalLine(`GET /v1/rules (10k), time per request, c=${config.concurrency}`, loaded.cost),
      goalLine(`GET /v1/rules (10k), p99, c=${config.concurrency}`, loaded.p99),
      goalLine('GET /v1/rules (10k), p50, 1 client', single.p50),
      goalLine('GET /v1/rules (10k), p99, 1 client', single.p99),
    );
  }

  // 2. Small authenticated reads: the per-request cost of the auth layer and the app's hooks.
  const [meOurs, meLegacy, statusOurs, meBare] = await measure('2 small GET', small);
  const me = compare('2 GET /v1/users/me (API credential)', meOurs!, meBare!);
  out.comparisons.push(
    me,
    compare('2 GET /v1/users/me (operator_token)', meLegacy!, meBare!),
    compare('2 GET /v1/auth/status (public route)', statusOurs!, meBare!),
  );
  const cpuUs = (result: SideResult): string =>
    `${(stats(result).cpuMsPerRequest * 1000).toFixed(0)} µs`;
  out.notes.push(
    `2: server CPU per request: bare ${cpuUs(meBare!)}; our public route ${cpuUs(statusOurs!)} ` +
      '(fastify with the cookie plugin, our hooks, one bootstrap-gate query); operator_token ' +
      `${cpuUs(meLegacy!)} (+ BLAKE3 of the token, user lookup); API credential ` +
      `${cpuUs(meOurs!)} (+ credential lookup by hash, the touchCredential UPDATE).`,
  );
  out.goals.push(
    goalLine(`context: GET /v1/users/me, time per request, c=${config.concurrency}`, me.cost),
    goalLine(`context: GET /v1/users/me, p99, c=${config.concurrency}`, me.p99),
  );

  // 3. The authenticated write.
  const [grantLoaded, echoLoaded] = await measure('3 POST grants', grants());
  const [grantSingle, echoSingle] = await measure('3 POST grants, one client', grants(1));
  out.comparisons.push(
    compare('3 POST /v1/grants (new grant each)', grantLoaded!, echoLoaded!),
    compare('3 POST /v1/grants, 1 client', grantSingle!, echoSingle!),
  );
  const loadedGrant = stats(grantLoaded!);
  const singleGrant = stats(grantSingle!);
  out.notes.push(
    '3: a POST /v1/grants commits its grant on its own (one fsync, synchronous=FULL, on the ' +
      'event loop) and then awaits its durable audit row, which the AuditWriter commits at the ' +
      'end of the event-loop turn together with the other rows queued in it (group commit): ' +
      `p50 ${formatMs(loadedGrant.p50)} at c=${config.concurrency}, ${formatMs(singleGrant.p50)} ` +
      `for a single client; ${formatMs(loadedGrant.cpuMsPerRequest)} of server CPU per grant ` +
      "(the kernel's fsync work included). Two fsyncs per grant are the floor of this design.",
  );
  return out;
}
