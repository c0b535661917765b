/**
 * The public face of @portunus/server, for tests and embedding: the CLI runner, serve and the
 * server.toml loader.
 */
export { runServerCli, SERVER_VERSION, type CliIo } from './cli/program.js';
export { runServe, waitForStopSignal, type ServeOptions } from './serve.js';
export {
  DEFAULT_CONFIG,
  SERVER_TOML,
  isLoopbackHost,
  loadServerConfig,
  parseListenAddress,
  parseServerConfig,
  type ListenAddress,
  type ReadFile,
  type ServerConfig,
} from './config.js';
export { generateSecret, hashSecret, ulid } from './identity/secrets.js';
export {
  readTraffic,
  type TrafficQueryInput,
  type TrafficTarget,
  type TrafficView,
} from './services/traffic.js';
export { TrafficAccounting } from './traffic/accounting.js';
