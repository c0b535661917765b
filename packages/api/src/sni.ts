/**
 * TLS SNI routing's shared definitions (reference §5.7, §5.9; docs/sni-routing.md): the one
 * grammar and normal spelling of an `sni_pattern`, the one lookup of a server name against a
 * pattern, the one decision of which rules may share a (client, protocol, port), and the fixed
 * bucket bounds of the ClientHello peek histogram. The server validates and checks conflicts
 * with these, the web UI checks its form with them and the forwarder routes and refuses with
 * them, so the three can never disagree about what `*.example.com` matches or who may join a
 * port. Browser-safe: no Node modules, no imports.
 */

const MAX_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

/**
 * Upper bounds (seconds) of the peek-duration histogram's finite buckets (reference §5.7); the
 * wire's `client_hello_peek_bucket_counts` has one count per bound, then one for +Inf.
 */
export const SNI_PEEK_BUCKETS_SECONDS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3,
];

/**
 * The lower-cased SNI selector (reference §2.4): an exact DNS name, or `*.` then a name of at
 * least two labels (a single-label wildcard); labels 1..63 of [a-z0-9-] without a hyphen at
 * either end, ≤253 characters in all; punycode as it is. Surrounding blanks are trimmed.
 */
export function normaliseSniPattern(raw: string): string | { error: string } {
  const trimmed = raw.trim();
  if (trimmed === '') return { error: 'it is empty' };
  if (trimmed.length > MAX_NAME_LENGTH)
    return { error: `longer than ${MAX_NAME_LENGTH} characters` };
  const lower = trimmed.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
  const wildcard = lower.startsWith('*.');
  const name = wildcard ? lower.slice(2) : lower;
  if (name === '') return { error: 'nothing follows the wildcard' };
  if (wildcard && !name.includes('.')) {
    return { error: 'a wildcard needs a parent of two labels or more' };
  }
  for (const label of name.split('.')) {
    if (label === '') return { error: 'it has an empty label' };
    if (label.length > MAX_LABEL_LENGTH) {
      return { error: `label ${label} exceeds ${MAX_LABEL_LENGTH} characters` };
    }
    if (label.startsWith('-') || label.endsWith('-')) {
      return { error: `label ${label} starts or ends with a hyphen` };
    }
    if (!/^[a-z0-9-]+$/.test(label)) {
      return { error: `label ${label} has a character outside [a-z0-9-]` };
    }
  }
  return lower;
}

/** The parent a normalised wildcard pattern covers (`*.a.example` → `a.example`), else undefined. */
export function wildcardParent(pattern: string): string | undefined {
  return pattern.startsWith('*.') ? pattern.slice(2) : undefined;
}

/**
 * A server name as routing compares it: lower-cased, one trailing dot dropped. The ClientHello
 * carries ASCII (RFC 6066 §3), so only A-Z needs folding.
 */
export function normaliseServerName(name: string): string {
  const lower = name.replace(/[A-Z]/g, (letter) => letter.toLowerCase());
  return lower.endsWith('.') ? lower.slice(0, -1) : lower;
}

/** A rule as the port-sharing decision sees it: same client and protocol as the candidate. */
export interface PortMember {
  ruleId: string | number;
  listenPort: number;
  listenPortEnd: number | null;
  /** Normalised, or null: a plain rule, or an SNI port's fallback. */
  sniPattern: string | null;
}

export type PortConflictCode =
  | 'port_in_use'
  | 'conflict.sni_route_duplicate'
  | 'conflict.sni_fallback_duplicate'
  | 'conflict.legacy_to_sni_unsupported';

export interface PortConflict {
  code: PortConflictCode;
  /** The rule already holding the port. */
  ruleId: string | number;
  port: number;
}

const lastPort = (rule: PortMember): number => rule.listenPortEnd ?? rule.listenPort;
const overlaps = (a: PortMember, b: PortMember): boolean =>
  a.listenPort <= lastPort(b) && b.listenPort <= lastPort(a);
const isSingle = (rule: PortMember): boolean =>
  rule.listenPortEnd === null || rule.listenPortEnd === rule.listenPort;

/**
 * Whether `candidate` may hold its ports next to `others` (rules of the same client and protocol
 * that hold ports now, without the candidate's own id), per docs/sni-routing.md:
 *
 * - A port whose rules include one with a pattern is an SNI port: a patterned single-port rule
 *   joins unless its pattern is taken (`conflict.sni_route_duplicate`); a patternless
 *   single-port rule joins as the fallback unless there is one (`conflict.sni_fallback_duplicate`).
 * - Any other held port is plain: a second plain rule is `port_in_use`; a patterned rule on it,
 *   or a range over an SNI port, is `conflict.legacy_to_sni_unsupported`.
 * - `current` is the candidate's running definition on an edit: a plain rule that gains a pattern
 *   on a port it holds, or a patterned rule that becomes a range over its port, would switch that
 *   port's mode, which is the same cross-mode change. (A patterned rule that drops its pattern
 *   stays on its SNI port as the fallback.)
 *
 * Returns the first conflict by port (then by the order of `others`), or undefined.
 */
export function sniPortConflict(
  others: readonly PortMember[],
  candidate: PortMember,
  current?: PortMember,
): PortConflict | undefined {
  const found: PortConflict[] = [];
  const byPort = new Map<number, PortMember[]>();
  for (const other of others) {
    if (!overlaps(other, candidate)) continue;
    const from = Math.max(other.listenPort, candidate.listenPort);
    const to = Math.min(lastPort(other), lastPort(candidate));
    if (!isSingle(other) || !isSingle(candidate)) {
      // A range is always plain: it shares no port, and never with an SNI port.
      const cross = other.sniPattern !== null || candidate.sniPattern !== null;
      const sniOnPort = others.some(
        (rule) => rule.sniPattern !== null && rule.listenPort >= from && rule.listenPort <= to,
      );
      found.push({
        code: cross || sniOnPort ? 'conflict.legacy_to_sni_unsupported' : 'port_in_use',
        ruleId: other.ruleId,
        port: from,
      });
      continue;
    }
    const members = byPort.get(from) ?? [];
    members.push(other);
    byPort.set(from, members);
  }
  for (const [port, members] of byPort) {
    const isSniPort = members.some((rule) => rule.sniPattern !== null);
    const first = members[0]!;
    if (!isSniPort) {
      found.push({
        code: candidate.sniPattern === null ? 'port_in_use' : 'conflict.legacy_to_sni_unsupported',
        ruleId: first.ruleId,
        port,
      });
      continue;
    }
    const clash = members.find((rule) => rule.sniPattern === candidate.sniPattern);
    if (clash) {
      found.push({
        code:
          candidate.sniPattern === null
            ? 'conflict.sni_fallback_duplicate'
            : 'conflict.sni_route_duplicate',
        ruleId: clash.ruleId,
        port,
      });
    }
  }
  if (current !== undefined && overlaps(current, candidate)) {
    const port = Math.max(current.listenPort, candidate.listenPort);
    const sniOthers = others.some((rule) => rule.sniPattern !== null && rule.listenPort === port);
    // Plain → patterned on its own port, or a patterned rule → a range over its port.
    const toSni = current.sniPattern === null && candidate.sniPattern !== null && !sniOthers;
    const toRange = current.sniPattern !== null && !isSingle(candidate);
    if (toSni || toRange) {
      found.push({ code: 'conflict.legacy_to_sni_unsupported', ruleId: current.ruleId, port });
    }
  }
  found.sort((a, b) => a.port - b.port);
  return found[0];
}
