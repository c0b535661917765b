/**
 * The public face of @portunus/forwarder, the data plane shared by the client and standalone.
 * It imports only @portunus/core and @portunus/api (DESIGN.md §2): no SQLite, HTTP or control
 * protocol. The stages are folders: tcp/ and udp/ (listeners and copy), connect/ (target choice,
 * health, dialling), dns/ (the resolver), proxy-protocol/ (headers), sni/ (ClientHello peek and
 * routes of shared TLS ports), policy/ (token buckets, rule and owner limiters, admission by
 * source lists and caps); rule-spec.ts is the one definition of a rule and its stats, imported by
 * every layer that handles them.
 */
export { FORWARDER_EVENTS, type ForwarderEventName } from './events.js';
export {
  RuleActivationError,
  isRuleActivationError,
  type ActivationFailureReason,
} from './errors.js';
export {
  MAX_TARGETS,
  PORT_COUNTERS,
  RATE_LIMIT_REJECT_REASONS,
  sameRule,
  simpleRule,
  targetsByPriority,
  type OwnerRateLimitStats,
  type PortCounter,
  type PortStats,
  type RateLimitRejectReason,
  type RateLimitStats,
  type Protocol,
  type ProxyProtocolVersion,
  type RateLimitSpec,
  type RuleSpec,
  type RuleStats,
  type TargetHealthState,
  type TargetSpec,
  type TargetStats,
} from './rule-spec.js';
export {
  isValidPort,
  parseProxyProtocol,
  proxyProtocolFitsProtocol,
  targetHostProblem,
  targetKey,
  type HostProblem,
} from './rule-checks.js';
export {
  QuotaBudget,
  QuotaRegistry,
  type BudgetCreatedListener,
  type QuotaHolder,
} from './policy/quota.js';
export {
  DEFAULT_MAX_RANGE_PORTS,
  Forwarder,
  expandRule,
  type ActivationResult,
  type ForwarderOptions,
} from './rule-runtime.js';
export {
  DEFAULT_BACKLOG,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_TCP_HIGH_WATER_MARK,
  PROXY_HEADER_TIMEOUT_MS,
  ConnectionTally,
  TcpListener,
  type TcpOptions,
  type TcpRoute,
  type TcpPortStats,
  type TcpServerFactory,
  SPLICE_GRANT_BYTES,
  spliceAvailable,
  spliceStats,
} from './tcp/listener.js';
export { type SpliceStats } from './tcp/splice.js';
export {
  DEFAULT_UDP_BUFFER_BYTES,
  DEFAULT_UDP_IDLE_MS,
  DEFAULT_UDP_MAX_FLOWS,
  UdpRuleRuntime,
  type Clock,
  type IntervalScheduler,
  type UdpOptions,
  type UdpPortStats,
  type UdpSocketFactory,
} from './udp/runtime.js';
/** The bounds SniListenerStats' bucket counts follow (one definition, in @portunus/api). */
export { SNI_PEEK_BUCKETS_SECONDS } from '@portunus/api';
export {
  DEFAULT_PEEK_TIMEOUT_MS,
  MAX_PEEKS_IN_FLIGHT,
  MAX_PEEK_BYTES,
  SniDispatch,
  type SniListenerStats,
  type SniMember,
  type SniOptions,
  type SniRouteCounts,
} from './sni/dispatch.js';
export {
  MAX_CLIENT_HELLO_BYTES,
  parseClientHello,
  type ClientHelloInvalid,
  type ClientHelloResult,
} from './sni/client-hello.js';
export { SniRouteTable, type SniLookup, type SniRouteKind } from './sni/route-table.js';
export { RuleConnector, type RuleCounters, type TcpDialer } from './connect/connector.js';
export { FAILURES_TO_FAIL, FAILURE_WINDOW_MS, SUCCESSES_TO_RECOVER } from './connect/health.js';
export {
  DNS_ATTEMPT_TIMEOUT_MS,
  DNS_GRACE_MS,
  DNS_MAX_CONCURRENT,
  DNS_MAX_ENTRIES,
  DNS_MAX_TTL_MS,
  DNS_MIN_TTL_MS,
  DNS_NEGATIVE_RETRY_MS,
  DnsResolver,
  systemDnsBackend,
  type DnsBackend,
  type DnsFailureReason,
  type DnsRecord,
  type ResolverOptions,
  type SystemBackendOptions,
} from './dns/resolver.js';
export {
  PROXY_V2_SIGNATURE,
  parseProxyHeader,
  proxyHeader,
  proxyV1Header,
  proxyV2Header,
  type ParsedProxyHeader,
  type ProxyEndpoints,
} from './proxy-protocol/header.js';
export { TokenBucket, monotonicClock, type MonotonicClock } from './policy/token-bucket.js';
export {
  Limiter,
  OwnerRegistry,
  Pacer,
  systemPolicyClock,
  type PolicyClock,
  type Wake,
} from './policy/limiter.js';
export { REFUSAL_LOG_INTERVAL_MS, RuleGate } from './policy/admission.js';
