/**
 * The public face of @portunus/forwarder, the data plane shared by the client and standalone.
 * It imports only @portunus/core (DESIGN.md §2): no SQLite, HTTP or control protocol.
 */
export { FORWARDER_EVENTS, type ForwarderEventName } from './events.js';
export {
  RuleActivationError,
  isRuleActivationError,
  type ActivationFailureReason,
} from './errors.js';
export {
  DEFAULT_MAX_RANGE_PORTS,
  Forwarder,
  expandRule,
  type ActivationResult,
  type ForwarderOptions,
  type PortStats,
  type Protocol,
  type RuleSpec,
  type RuleStats,
} from './rule-runtime.js';
export {
  DEFAULT_BACKLOG,
  DEFAULT_CONNECT_TIMEOUT_MS,
  TcpPortForwarder,
  type TcpDialer,
  type TcpOptions,
  type TcpPortStats,
  type TcpServerFactory,
} from './tcp.js';
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
} from './udp.js';
