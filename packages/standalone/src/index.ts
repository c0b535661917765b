/**
 * The public face of @portunus/standalone: the `portunus-standalone` binary's pieces, for tests
 * and benches. It may import only @portunus/core and @portunus/forwarder (DESIGN.md §2): no
 * SQLite, HTTP, control protocol or React.
 */
export {
  DEFAULT_SOCKET_PATH,
  parseConfig,
  parseTargetString,
  ruleIdForName,
  type ConfigProblem,
  type StandaloneConfig,
  type StandaloneRule,
} from './config.js';
export { StandaloneDaemon, type DaemonOptions, type ReloadOutcome } from './daemon.js';
export { CONFIG_ENV, resolveConfigPath, runStandaloneCli } from './program.js';
export { PROTOCOL_VERSION, type Hello, type Snapshot } from './stats-protocol.js';
export { connectStats } from './stats-reader.js';
export { STANDALONE_VERSION } from './version.js';
