/**
 * A rule's traffic policy as the operator API spells it: the one list of rate-limit caps
 * (reference §5.8 — API name, the store's camelCase name, the wire integer type, the CLI flag and
 * the `owner-cap get` label) and the checks of a caps object and of a source CIDR list. The
 * server's validation, the store and wire mappings, the CLI flags and the web UI form are all
 * driven from `RATE_LIMIT_FIELDS`, so a cap cannot be spelled differently in two layers. The
 * checks answer catalogued error codes as plain strings (this package may not import core); the
 * server turns them into PortunusErrors. Browser-safe: no imports but the CIDR parser.
 */
import { MAX_SOURCE_CIDRS, normaliseCidr } from './cidr.js';

/** The largest value of a proto `uint32` field. */
export const MAX_U32 = 4_294_967_295;
/** A `uint64` cap as JSON can carry it exactly. */
export const MAX_U64_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * The seven caps, in the proto's field order (reference §4.2 RateLimit). A burst names the rate it
 * belongs to; `label` is the line name `owner-cap get` prints (reference §1.2).
 */
export const RATE_LIMIT_FIELDS = [
  {
    name: 'bandwidth_in_bps',
    field: 'bandwidthInBps',
    kind: 'u64',
    rate: null,
    label: 'ingress_bps',
  },
  {
    name: 'bandwidth_out_bps',
    field: 'bandwidthOutBps',
    kind: 'u64',
    rate: null,
    label: 'egress_bps',
  },
  {
    name: 'new_connections_per_sec',
    field: 'newConnectionsPerSec',
    kind: 'u32',
    rate: null,
    label: 'new_conn_per_sec',
  },
  {
    name: 'concurrent_connections',
    field: 'concurrentConnections',
    kind: 'u32',
    rate: null,
    label: 'concurrent_max',
  },
  {
    name: 'bandwidth_in_burst',
    field: 'bandwidthInBurst',
    kind: 'u64',
    rate: 'bandwidth_in_bps',
    label: 'ingress_burst',
  },
  {
    name: 'bandwidth_out_burst',
    field: 'bandwidthOutBurst',
    kind: 'u64',
    rate: 'bandwidth_out_bps',
    label: 'egress_burst',
  },
  {
    name: 'new_connections_burst',
    field: 'newConnectionsBurst',
    kind: 'u32',
    rate: 'new_connections_per_sec',
    label: 'new_conn_burst',
  },
] as const;

export type RateLimitFieldSpec = (typeof RATE_LIMIT_FIELDS)[number];
/** A cap's API (and wire) name: `bandwidth_in_bps`, … */
export type RateLimitName = RateLimitFieldSpec['name'];
/** A cap's name in the store and the data plane: `bandwidthInBps`, … */
export type RateLimitField = RateLimitFieldSpec['field'];

/** Caps in the store's terms: only the caps that are set. */
export type RateLimitCaps = { [K in RateLimitField]?: number };

/** The reserved burst: concurrency is a hard ceiling, never a bucket (reference §5.8). */
export const RESERVED_RATE_LIMIT_FIELD = 'concurrent_connections_burst';

/** The CLI flag of a cap (reference §1.3): `--bandwidth-in-bps`, … */
export function rateLimitFlag(spec: RateLimitFieldSpec): string {
  return `--${spec.name.replaceAll('_', '-')}`;
}

export function maxOfKind(kind: RateLimitFieldSpec['kind']): number {
  return kind === 'u32' ? MAX_U32 : MAX_U64_SAFE;
}

/** A failed check: the catalogued code and a message naming the field and why. */
export interface PolicyProblem {
  code:
    | 'validation.rate_limit_burst_unsupported'
    | 'validation.rate_limit_cap_zero'
    | 'validation.rate_limit_cap_out_of_range'
    | 'validation.rate_limit_burst_without_rate'
    | 'validation.rate_limit_burst_range'
    | 'validation.rate_limit_no_caps_provided'
    | 'validation.source_cidr_invalid'
    | 'validation.source_list_too_long';
  message: string;
}

export type RateLimitInput = { [K in RateLimitName]?: number | null } & {
  concurrent_connections_burst?: number | null;
};

const present = <T>(value: T | null | undefined): value is T =>
  value !== undefined && value !== null;

/**
 * The caps of a rule or an owner envelope (reference §5.8): the reserved concurrent burst is
 * refused, each rate is a positive whole number within its wire type (zero has its own code), a
 * burst needs its rate and stays within [max(1, rate/100), rate*60] and its wire type. `prefix` names the fields in messages
 * (`rate_limit.` for a rule body). Null when no cap is set.
 */
export function checkRateLimit(
  input: RateLimitInput,
  prefix = '',
): { caps: RateLimitCaps | null } | { problem: PolicyProblem } {
  const fail = (code: PolicyProblem['code'], message: string) => ({
    problem: { code, message },
  });
  if (present(input.concurrent_connections_burst)) {
    return fail(
      'validation.rate_limit_burst_unsupported',
      `${prefix}${RESERVED_RATE_LIMIT_FIELD} is reserved: concurrent caps are a hard ceiling and cannot burst`,
    );
  }
  const caps: RateLimitCaps = {};
  for (const spec of RATE_LIMIT_FIELDS) {
    const value = input[spec.name];
    if (!present(value)) continue;
    const max = maxOfKind(spec.kind);
    const outOfRange = () =>
      fail(
        'validation.rate_limit_cap_out_of_range',
        `${prefix}${spec.name} ${value} is not a whole number in 1..${max} (${spec.kind})`,
      );
    if (spec.rate === null) {
      if (value === 0) {
        return fail('validation.rate_limit_cap_zero', `${prefix}${spec.name} must be > 0`);
      }
      if (!Number.isInteger(value) || value < 0 || value > max) return outOfRange();
    } else {
      const rate = input[spec.rate];
      if (!present(rate)) {
        return fail(
          'validation.rate_limit_burst_without_rate',
          `${prefix}${spec.name} needs ${prefix}${spec.rate}`,
        );
      }
      const low = Math.max(1, Math.floor(rate / 100));
      const high = rate * 60;
      if (value < low || value > high) {
        return fail(
          'validation.rate_limit_burst_range',
          `${prefix}${spec.name} ${value} is outside [${low}, ${high}] (rate/100 .. rate*60 for ${spec.rate} ${rate})`,
        );
      }
      if (!Number.isInteger(value) || value > max) return outOfRange();
    }
    caps[spec.field] = value;
  }
  return { caps: Object.keys(caps).length > 0 ? caps : null };
}

/** Caps in the API's spelling, only those set (Rule JSON, the owner envelope view, the wire). */
export function rateLimitView(caps: RateLimitCaps | null | undefined): {
  [K in RateLimitName]?: number;
} {
  const view: { [K in RateLimitName]?: number } = {};
  for (const spec of RATE_LIMIT_FIELDS) {
    const value = caps?.[spec.field];
    if (value !== undefined) view[spec.name] = value;
  }
  return view;
}

export type SourceListName = 'allowed_sources' | 'denied_sources';

/**
 * One of a rule's source lists: at most MAX_SOURCE_CIDRS entries, each an IPv4 or IPv6 CIDR (or
 * bare address), returned in the normal spelling; two entries that normalise alike are refused
 * rather than merged, since the operator meant two different networks. Absent means empty.
 */
export function checkSourceList(
  name: SourceListName,
  list: readonly string[] | null | undefined,
): { list: string[] } | { problem: PolicyProblem } {
  if (!present(list)) return { list: [] };
  if (list.length > MAX_SOURCE_CIDRS) {
    return {
      problem: {
        code: 'validation.source_list_too_long',
        message: `${name} has ${list.length} entries; at most ${MAX_SOURCE_CIDRS} are allowed`,
      },
    };
  }
  const seen = new Map<string, number>();
  const out: string[] = [];
  for (const [index, entry] of list.entries()) {
    const normal = typeof entry === 'string' ? normaliseCidr(entry) : { error: 'not a string' };
    if (typeof normal !== 'string') {
      return {
        problem: {
          code: 'validation.source_cidr_invalid',
          message: `${name}[${index}] ${JSON.stringify(entry)}: ${normal.error}`,
        },
      };
    }
    const first = seen.get(normal);
    if (first !== undefined) {
      return {
        problem: {
          code: 'validation.source_cidr_invalid',
          message: `${name}[${index}] ${JSON.stringify(entry)} is ${normal}, the same network as ${name}[${first}]`,
        },
      };
    }
    seen.set(normal, index);
    out.push(normal);
  }
  return { list: out };
}
