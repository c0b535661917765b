/**
 * Source CIDR lists (`allowed_sources` / `denied_sources` on a rule, beyond the reference): the
 * one parser of an IPv4 or IPv6 CIDR, the one normal spelling the store and the wire carry, and
 * the match the data plane runs per accepted connection or new UDP flow. The server validates
 * with it (`validation.source_cidr_invalid`), the web UI checks forms with it and the forwarder
 * matches with it, so the three can never disagree on what "10.0.0.0/8" means. Browser-safe: no
 * node:net, no imports.
 */

/** At most this many entries in each of a rule's two lists. */
export const MAX_SOURCE_CIDRS = 64;

export interface Cidr {
  family: 4 | 6;
  /** The network address (host bits cleared): 4 or 16 bytes. */
  bytes: Uint8Array;
  prefix: number;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^\d{1,3}$/.test(part) || (part.length > 1 && part.startsWith('0'))) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (text.includes('%')) return undefined; // zone ids name an interface, not a network
  let head = text;
  let tail = '';
  const doubleColon = text.indexOf('::');
  if (doubleColon !== -1) {
    if (text.indexOf('::', doubleColon + 1) !== -1) return undefined;
    head = text.slice(0, doubleColon);
    tail = text.slice(doubleColon + 2);
  }
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const pieces = part.split(':');
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes('.')) {
        const v4 = parseIpv4(piece);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return undefined;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const first = groups(head);
  const last = groups(tail);
  if (!first || !last) return undefined;
  // An embedded IPv4 part may only end the address.
  if (doubleColon !== -1 && head.includes('.')) return undefined;
  const missing = 8 - first.length - last.length;
  if (doubleColon === -1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...first, ...new Array<number>(doubleColon === -1 ? 0 : missing).fill(0), ...last];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[i * 2] = group >> 8;
    bytes[i * 2 + 1] = group & 0xff;
  });
  return bytes;
}

/** An IP literal's bytes (4 or 16), or undefined. IPv4-mapped IPv6 stays 16 bytes here. */
export function parseIpAddress(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIpv6(text) : parseIpv4(text);
}

/**
 * Parses `a.b.c.d/n`, `x::y/n` or a bare address (a /32 or /128). Host bits set below the prefix
 * are refused rather than silently cleared: `10.0.0.1/8` is far more likely a typo than a wish.
 */
export function parseCidr(text: string): Cidr | { error: string } {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64 || text.trim() !== text) {
    return { error: 'not a CIDR' };
  }
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const bytes = parseIpAddress(addressText);
  if (!bytes) return { error: `${JSON.stringify(addressText)} is not an IPv4 or IPv6 address` };
  const family = bytes.length === 4 ? 4 : 6;
  const maxPrefix = family === 4 ? 32 : 128;
  let prefix = maxPrefix;
  if (slash !== -1) {
    const prefixText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText) || (prefixText.length > 1 && prefixText.startsWith('0'))) {
      return { error: `prefix ${JSON.stringify(prefixText)} is not a number` };
    }
    prefix = Number(prefixText);
    if (prefix > maxPrefix) return { error: `prefix /${prefix} is longer than ${maxPrefix}` };
  }
  for (let bit = prefix; bit < maxPrefix; bit++) {
    if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) {
      return { error: `host bits are set below /${prefix}` };
    }
  }
  return { family, bytes, prefix };
}

function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // RFC 5952: the longest run (2+) of zero groups becomes "::", the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  const before = hex.slice(0, bestStart).join(':');
  const after = hex.slice(bestStart + bestLength).join(':');
  return `${before}::${after}`;
}

/** The normal spelling: always with a prefix, IPv6 lower-case and compressed (RFC 5952). */
export function formatCidr(cidr: Cidr): string {
  const address = cidr.family === 4 ? [...cidr.bytes].join('.') : formatIpv6(cidr.bytes);
  return `${address}/${cidr.prefix}`;
}

/** The normal spelling of `text`, or the reason it is not a CIDR. */
export function normaliseCidr(text: string): string | { error: string } {
  const parsed = parseCidr(text);
  return 'error' in parsed ? parsed : formatCidr(parsed);
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/**
 * The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, which a dual-stack
 * listener reports for IPv4 peers), else the address itself.
 */
function unmap(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16 && V4_MAPPED_PREFIX.every((b, i) => bytes[i] === b)) {
    return bytes.subarray(12);
  }
  return bytes;
}

export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  const bytes = unmap(address);
  if (bytes.length !== cidr.bytes.length) return false;
  const whole = cidr.prefix >> 3;
  for (let i = 0; i < whole; i++) if (bytes[i] !== cidr.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (bytes[whole]! & mask) === cidr.bytes[whole];
}

/**
 * A rule's two lists, parsed once per definition. A source passes when the allow list is empty
 * or holds it, and the deny list does not. An unparsable peer address (none, or a Unix socket)
 * passes only when both lists are empty.
 */
export class SourcePolicy {
  readonly allowed: readonly Cidr[];
  readonly denied: readonly Cidr[];

  constructor(allowed: readonly string[], denied: readonly string[]) {
    const parseAll = (list: readonly string[]): Cidr[] =>
      list.map((text) => {
        const parsed = parseCidr(text);
        if ('error' in parsed)
          throw new Error(`source CIDR ${JSON.stringify(text)}: ${parsed.error}`);
        return parsed;
      });
    this.allowed = parseAll(allowed);
    this.denied = parseAll(denied);
  }

  get restricts(): boolean {
    return this.allowed.length > 0 || this.denied.length > 0;
  }

  admits(address: string | undefined): boolean {
    if (!this.restricts) return true;
    const bytes = address === undefined ? undefined : parseIpAddress(address);
    if (!bytes) return false;
    if (this.allowed.length > 0 && !this.allowed.some((c) => cidrContains(c, bytes))) return false;
    return !this.denied.some((c) => cidrContains(c, bytes));
  }
}
