/**
 * Versions and capability gates of the control protocol (reference inventory §4.2, §4.4). The
 * server decides what it may push to a client from the client's Hello: the protocols it lists and
 * its version compared on MAJOR.MINOR only (suffixes stripped, a malformed version counts as too
 * old). Depends on nothing.
 */
export const PROTOCOL_VERSION = '1.0.0';

/** The client version from which each optional rule feature is understood. */
export const FEATURE_MIN_VERSION = {
  multiTarget: '0.7',
  sni: '0.9',
  proxyProtocol: '0.10',
  rateLimit: '0.11',
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
