/**
 * The typed activation failure: a rule that could not be bound (or was refused before binding)
 * is a catalogued PortunusError whose code is the reference failure reason (inventory §5.11) and,
 * for bind failures, names the first offending port, so the caller reports `Failed{reason}`
 * without parsing messages. Depends only on core's catalogue.
 */
import { PortunusError } from '@portunus/core';

export type ActivationFailureReason =
  | 'port_in_use'
  | 'permission_denied'
  | 'bind_failed'
  | 'range_invalid'
  | 'exceeds_cap'
  | 'duplicate_rule_id'
  | 'unsupported_protocol'
  | 'invalid_target_host'
  // A shared SNI port refuses what the server refuses (docs/sni-routing.md).
  | 'conflict.sni_route_duplicate'
  | 'conflict.sni_fallback_duplicate'
  | 'conflict.legacy_to_sni_unsupported'
  | 'validation.sni_on_unsupported_rule'
  | 'source_list_invalid';

export class RuleActivationError extends PortunusError {
  readonly ruleId: string;
  readonly reason: ActivationFailureReason;
  /** The port whose bind failed first, when the failure is a bind failure. */
  readonly port: number | undefined;

  constructor(
    ruleId: string,
    reason: ActivationFailureReason,
    message: string,
    port?: number,
    options?: ErrorOptions,
  ) {
    super(reason, message, { rule_id: ruleId, ...(port !== undefined ? { port } : {}) }, options);
    this.name = 'RuleActivationError';
    this.ruleId = ruleId;
    this.reason = reason;
    this.port = port;
  }
}

export function isRuleActivationError(value: unknown): value is RuleActivationError {
  return value instanceof RuleActivationError;
}

/** Maps a bind errno to the reference reason: EADDRINUSE and EACCES are named, the rest generic. */
export function bindFailureReason(error: unknown): ActivationFailureReason {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'EADDRINUSE') return 'port_in_use';
  if (code === 'EACCES' || code === 'EPERM') return 'permission_denied';
  return 'bind_failed';
}
