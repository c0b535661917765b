/**
 * Subject Alternative Names: what a host string is (IP literal or DNS name), the one canonical
 * spelling of each, and whether a certificate's SANs cover a host — the rule enrollment uses to
 * refuse an advertised endpoint a client could not reach under the pinned certificate (reference
 * §9.4: DNS case-insensitive, a wildcard covers exactly one left-most label, IP hosts need IP
 * SANs). Pure string logic over node:net; it must not depend on certificate parsing libraries,
 * the file system or the store, so the control plane and tests can use it on any SAN list.
 */
import net from 'node:net';

/** The SAN lists of a certificate, already normalised (see `normaliseIp`, `normaliseDnsName`). */
export interface SanLists {
  readonly sanDns: readonly string[];
  readonly sanIps: readonly string[];
}

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_DNS_NAME = 253;
const V4_MAPPED_PREFIX = '::ffff:';

/** Removes the brackets URLs put around IPv6 literals (`[::1]` → `::1`). */
function unbracket(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The canonical text of an IP literal, or undefined if `text` is not one. IPv6 is written the
 * RFC 5952 way (lowercase, longest zero run compressed), so `0:0:0:0:0:0:0:1`, `::1` and `[::1]`
 * compare equal; an IPv4-mapped IPv6 address becomes its IPv4 form because a connection to it
 * reaches that IPv4 host. Zone ids (`fe80::1%eth0`) are refused: a certificate cannot name one.
 */
export function normaliseIp(text: string): string | undefined {
  const bare = unbracket(text.trim());
  if (bare.includes('%')) return undefined;
  const family = net.isIP(bare);
  if (family === 0) return undefined;
  // SocketAddress round-trips through inet_pton/inet_ntop, which yields the canonical form.
  const canonical = new net.SocketAddress({
    address: bare,
    family: family === 4 ? 'ipv4' : 'ipv6',
  }).address;
  if (canonical.startsWith(V4_MAPPED_PREFIX)) {
    const tail = canonical.slice(V4_MAPPED_PREFIX.length);
    if (net.isIPv4(tail)) return tail;
  }
  return canonical;
}

/**
 * The canonical (lowercase, no trailing dot) form of an RFC 1123 host name, or undefined if
 * `text` is not one. All-numeric dotted names are refused (reference §9.4) because resolvers
 * would read them as malformed IPv4 addresses. Wildcards are not host names.
 */
export function normaliseDnsName(text: string): string | undefined {
  const name = text.trim().toLowerCase().replace(/\.$/, '');
  if (name === '' || name.length > MAX_DNS_NAME) return undefined;
  const labels = name.split('.');
  if (!labels.every((label) => DNS_LABEL.test(label))) return undefined;
  if (labels.every((label) => /^\d+$/.test(label))) return undefined;
  return name;
}

export type HostKind = { kind: 'ip'; value: string } | { kind: 'dns'; value: string };

/** Classifies a host as an IP literal or a DNS name, canonicalised; undefined if neither. */
export function parseHost(text: string): HostKind | undefined {
  const ip = normaliseIp(text);
  if (ip !== undefined) return { kind: 'ip', value: ip };
  const dns = normaliseDnsName(text);
  return dns === undefined ? undefined : { kind: 'dns', value: dns };
}

/** Whether one DNS SAN (possibly `*.rest`) covers the canonical host name `host`. */
function dnsSanCovers(san: string, host: string): boolean {
  const pattern = san.toLowerCase().replace(/\.$/, '');
  if (!pattern.startsWith('*.')) return pattern === host;
  // A wildcard stands for exactly one whole left-most label: `*.example.com` covers
  // `a.example.com` but neither `example.com` nor `a.b.example.com` (RFC 6125 §6.4.3).
  const firstDot = host.indexOf('.');
  return firstDot > 0 && host.slice(firstDot + 1) === pattern.slice(2);
}

/**
 * Whether a certificate with these SANs is valid for `host`. An IP host needs an equal IP SAN
 * (forms normalised); a DNS host needs an equal DNS SAN (case-insensitive) or a one-label
 * wildcard. The subject CN is deliberately ignored, as modern TLS clients do.
 */
export function certCoversHost(sans: SanLists, host: string): boolean {
  const parsed = parseHost(host);
  if (parsed === undefined) return false;
  if (parsed.kind === 'ip') return sans.sanIps.some((san) => normaliseIp(san) === parsed.value);
  return sans.sanDns.some((san) => dnsSanCovers(san, parsed.value));
}

/**
 * Reads the DNS and IP entries out of node's `X509Certificate#subjectAltName` text, e.g.
 * `DNS:localhost, IP Address:0:0:0:0:0:0:0:1`. Node JSON-quotes any value holding a separator or
 * quote (`DNS:"a\u002cb"`), so quoted values are decoded rather than split. Other name types
 * (email, URI, otherName) are skipped: they never make a host valid.
 */
export function parseSubjectAltName(text: string | undefined): SanLists {
  const sanDns: string[] = [];
  const sanIps: string[] = [];
  let at = 0;
  const source = text ?? '';
  while (at < source.length) {
    const colon = source.indexOf(':', at);
    if (colon < 0) break;
    const type = source.slice(at, colon);
    let value: string;
    let next: number;
    if (source[colon + 1] === '"') {
      let end = colon + 2;
      while (end < source.length && source[end] !== '"') end += source[end] === '\\' ? 2 : 1;
      if (end >= source.length) break; // unterminated quote: node never writes one; stop safely
      value = JSON.parse(source.slice(colon + 1, end + 1)) as string;
      next = source.indexOf(', ', end);
    } else {
      next = source.indexOf(', ', colon);
      value = source.slice(colon + 1, next < 0 ? source.length : next);
    }
    if (type === 'DNS') sanDns.push(value.toLowerCase());
    else if (type === 'IP Address') sanIps.push(normaliseIp(value) ?? value);
    if (next < 0) break;
    at = next + 2;
  }
  return { sanDns, sanIps };
}
