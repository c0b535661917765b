/**
 * Versions and capability gates of the control protocol (reference inventory §4.2, §4.4). The
 * server decides what it may push to a client from the client's Hello: the protocols it lists and
 * its version compared on MAJOR.MINOR only (suffixes stripped, a malformed version counts as too
 * old). Depends on nothing.
 */
export const PROTOCOL_VERSION = '1.0.0';

/**
 * The client version from which each optional rule feature is understood. Multi-target and PROXY
 * keep the reference's thresholds (0.7, 0.10); this client line reached both at 0.10, together
 * with DNS targets, health checks and PROXY v2 on UDP (beyond the reference; an older client is
 * refused by the same PROXY gate). SNI routing arrived at 0.11. Rate limits are not implemented
 * by any client of this line yet, so their gate sits above the current one (0.11) until they
 * land: a current client is then refused at push time with the catalogued 422 instead of failing
 * activation on the edge.
 */
export const FEATURE_MIN_VERSION = {
  multiTarget: '0.7',
  proxyProtocol: '0.10',
  sni: '0.11',
  rateLimit: '0.12',
  /** Source allow/deny lists (beyond the reference) arrive with the rate limits. */
  sourceLists: '0.12',
  /** Traffic quotas (reference §4.4 says 1.4 on its own version line; unknown is refused). */
  quota: '0.13',
} as const;

function majorMinor(version: string): [number, number] | undefined {
  const match = /^v?(\d+)\.(\d+)/.exec(version.trim());
  if (!match) return undefined;
  return [Number(match[1]), Number(match[2])];
}

/**
 * True when `version` is at least `minimum` (MAJOR.MINOR). An empty version is unknown and
 * answers `whenUnknown`; a malformed one is treated as too old.
 */
export function versionAtLeast(version: string, minimum: string, whenUnknown = false): boolean {
  if (version.trim() === '') return whenUnknown;
  const have = majorMinor(version);
  const need = majorMinor(minimum);
  if (!have || !need) return false;
  return have[0] !== need[0] ? have[0] > need[0] : have[1] >= need[1];
}
