/**
 * The client's own version, sent in Hello. The server gates optional rule features by it
 * (proto's FEATURE_MIN_VERSION: multi-target ≥ 0.7, PROXY ≥ 0.10, SNI and rate limits above this
 * version until they are implemented), so it must not claim a version whose features this client
 * does not implement. 0.10: multi-target failover, DNS targets, PROXY v1/v2 (v2 also on UDP).
 * 0.13: traffic quotas enforced on every TCP connection and UDP datagram (reference §5.10); the
 * SNI and rate-limit features of 0.11 and 0.12 land with their own branches of this wave.
 * Depends on nothing.
 */
export const CLIENT_VERSION = '0.13.0';
