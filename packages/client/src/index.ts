/**
 * The public face of @portunus/client (for tests and embedding; the binary is bin/). The client
 * imports only core, proto and forwarder (DESIGN.md §2): no SQLite, HTTP framework or React.
 */
export { backoffCeilingMs, fullJitterDelayMs, type BackoffPolicy } from './backoff.js';
export {
  BUNDLE_FILE_NAME,
  BUNDLE_VERSION,
  bundleCandidates,
  defaultEnrollPath,
  enrollCandidates,
  readBundle,
  resolveBundlePath,
  splitEndpoint,
  validateBundle,
  writeBundle,
  type Bundle,
  type BundleResolution,
} from './bundle.js';
export { KEEPALIVE_OPTIONS, runSession, type SessionConfig, type SessionEnd } from './control.js';
export { runDaemon, type DaemonOptions, type DaemonOutcome } from './daemon.js';
export { enroll, enrollRpcError, type EnrollOptions, type EnrollResult } from './enroll.js';
export {
  fetchPinnedCertificate,
  fingerprintsEqual,
  pinnedChannelOptions,
  pinnedCredentials,
  sha256Hex,
  type PinnedCertificate,
} from './pinning.js';
export { runClientCli, type ClientCliIo } from './program.js';
export { CLIENT_VERSION } from './version.js';
export { ruleFromWire, statsToWire, type RuleMapping } from './wire.js';
