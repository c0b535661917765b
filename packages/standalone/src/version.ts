/**
 * The standalone's own version, reported in the stats socket's Hello (`daemon_version`) and by
 * `--version`. Depends on nothing.
 */
export const STANDALONE_VERSION = '0.1.0';
