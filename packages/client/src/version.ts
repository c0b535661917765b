/**
 * The client's own version, sent in Hello. The server gates optional rule features by it
 * (reference §4.4: multi-target ≥ 0.7, SNI ≥ 0.9, PROXY ≥ 0.10, rate limits ≥ 0.11), so it must
 * not claim a version whose features this client does not implement. Depends on nothing.
 */
export const CLIENT_VERSION = '0.1.0';
