/**
 * Data-plane log event names (reference inventory §7.5), kept as one `as const` table so a typo
 * does not compile. They live here until they move into core's EVENTS; the names are the
 * contract, the keys are only for call sites. Depends on nothing.
 */
export const FORWARDER_EVENTS = {
  ruleActivated: 'rule.activated',
  ruleRemoved: 'rule.removed',
  ruleFailed: 'rule.failed',
  /** A PUSH of a running rule id took effect (replace): new connections use the new definition. */
  ruleReactivated: 'rule.reactivated',
  dnsFailed: 'rule.dns_failed',
  udpDnsFailed: 'rule.udp_dns_failed',
  targetDialFailed: 'rule.target.dial_failed',
  targetHealthChanged: 'rule.target.health_changed',
  targetProbeOk: 'rule.target.probe_ok',
  targetProbeFailed: 'rule.target.probe_failed',
  connErrorAllTargetsFailed: 'rule.conn_error_all_targets_failed',
  udpAllTargetsFailed: 'rule.udp_all_targets_failed',
  proxyProtocolWriteFailed: 'rule.target.proxy_protocol_write_failed',
  acceptError: 'rule.accept_error',
  connError: 'rule.conn_error',
  connDrainDeadline: 'rule.conn_drain_deadline',
  udpRuntimeStarted: 'rule.udp_runtime_started',
  udpFlowOpened: 'rule.udp_flow_opened',
  udpFlowClosedIdle: 'rule.udp_flow_closed_idle',
  udpFlowEvictedIcmp: 'rule.udp_flow_evicted_icmp',
  udpFlowDroppedOverflow: 'rule.udp_flow_dropped_overflow',
  udpUpstreamConnectFailed: 'rule.udp_upstream_connect_failed',
  udpReplySendFailed: 'rule.udp_reply_send_failed',
  udpListenerError: 'rule.udp_listener_error',
  udpBufferSizeFailed: 'rule.udp_buffer_size_failed',
  // Shared SNI ports (reference §5.7).
  sniRouted: 'tls.sni_routed',
  noSni: 'tls.no_sni',
  sniNoMatch: 'tls.sni_no_match',
  clientHelloTimeout: 'tls.client_hello_timeout',
  parseFailed: 'tls.parse_failed',
  sniPeekCapacity: 'tls.sni_peek_capacity',
  sniListenerStarted: 'tls.sni_listener.started',
  sniListenerStopped: 'tls.sni_listener.stopped',
  sniListenerAcceptError: 'tls.sni_listener.accept_error',
  sniListenerBound: 'tls.sni_listener.bound',
  sniListenerUnbound: 'tls.sni_listener.unbound',
  sniGroupMemberAdded: 'tls.sni_group.member_added',
  sniGroupMemberRemoved: 'tls.sni_group.member_removed',
  /** A connection or new flow refused by a cap (debug, at most one a second per rule). */
  rateLimitReject: 'rule.rate_limit_reject',
  /** A connection or new flow refused by the rule's source lists (debug, like the above). */
  sourceDenied: 'rule.source_denied',
  // The splice fast path (reference inventory "Linux fast path"; docs/fast-path.md).
  /** The first connection of a rule moved by splice(2) (info, once per rule per process). */
  spliceSelected: 'proxy.splice_selected',
  /** Splice cannot be used in this process (addon missing, or the kernel refused): once. */
  spliceUnsupportedFallback: 'proxy.splice_unsupported_fallback',
  /** F_SETPIPE_SZ refused: the pipes keep the kernel's 64 KiB (warn, once). */
  splicePipeSizeFailed: 'proxy.splice_pipe_size_failed',
} as const;

export type ForwarderEventName = (typeof FORWARDER_EVENTS)[keyof typeof FORWARDER_EVENTS];
