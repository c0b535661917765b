/**
 * Whether a rule may hold its listen ports on its client (reference §5.9 with the SNI matrix of
 * §5.7, as docs/sni-routing.md states it): the store lists the rules already holding those ports
 * and @portunus/api's `sniPortConflict` — the same decision the forwarder makes on the edge —
 * says whether the candidate may join them. A refusal is a 409 with the catalogued code naming
 * the port and the rule holding it. Callers run it inside the transaction that stores the
 * change. Depends on the store and @portunus/api; no HTTP.
 */
import type { Database } from 'better-sqlite3';

import { sniPortConflict, type PortMember } from '@portunus/api';
import { PortunusError } from '@portunus/core';
import { findPortHolders, getRule, type Protocol } from '@portunus/store';

export interface PortClaim {
  clientId: string;
  protocol: Protocol;
  listenPort: number;
  listenPortEnd: number | null;
  sniPattern: string | null;
  /** On an edit: the rule's own id, whose current ports it may keep. */
  exceptRuleId?: number;
}

const DESCRIBE = {
  port_in_use: 'is already used by rule',
  'conflict.sni_route_duplicate': 'already routes this sni_pattern through rule',
  'conflict.sni_fallback_duplicate': 'already has a fallback (no sni_pattern): rule',
  'conflict.legacy_to_sni_unsupported': 'cannot mix plain and SNI rules; it is held by rule',
} as const;

/** Throws the 409 of the first port the claim cannot take. */
export function checkPortConflict(db: Database, claim: PortClaim): void {
  const holders = findPortHolders(db, claim);
  const others: PortMember[] = holders;
  const current = claim.exceptRuleId !== undefined ? getRule(db, claim.exceptRuleId) : undefined;
  const conflict = sniPortConflict(
    others,
    { ...claim, ruleId: claim.exceptRuleId ?? 0 },
    current && current.protocol === claim.protocol
      ? {
          ruleId: current.ruleId,
          listenPort: current.listenPort,
          listenPortEnd: current.listenPortEnd,
          sniPattern: current.sniPattern,
        }
      : undefined,
  );
  if (!conflict) return;
  throw new PortunusError(
    conflict.code,
    `${claim.protocol} port ${conflict.port} of this client ${DESCRIBE[conflict.code]} ${conflict.ruleId}`,
    { port: conflict.port, rule_id: conflict.ruleId },
  );
}
