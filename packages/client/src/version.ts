/**
 * The client's own version, sent in Hello. The server gates optional rule features by it
 * (proto's FEATURE_MIN_VERSION: multi-target ≥ 0.7, PROXY ≥ 0.10, SNI ≥ 0.11, rate limits and
 * owner envelopes ≥ 0.12, quotas ≥ 0.13), so it must not claim a version whose features this
 * client does not implement. 0.10: multi-target failover, DNS targets, PROXY v1/v2 (v2 also on
 * UDP). 0.11: SNI routing (the sni stage). 0.12: per-rule and per-owner rate limits with hot swap,
 * and source allow/deny lists. 0.13: traffic quotas enforced on every TCP path and per UDP
 * datagram (reference §5.10). Depends on nothing.
 */
export const CLIENT_VERSION = '0.13.0';
