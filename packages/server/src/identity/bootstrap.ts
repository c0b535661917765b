/**
 * How the first superadmin comes to exist (reference §6.3): the static `operator_token` of
 * server.toml, which always authenticates as the reserved superadmin `_legacy` (DESIGN.md §8.4:
 * also when added after onboarding), and the one-time setup token that every start issues while
 * no enabled superadmin exists. Tokens are stored only hashed. Shared by `serve` and the offline
 * `onboarding-token` command.
 */
import { EVENTS, PortunusError, type Logger } from '@portunus/core';
import {
  getUser,
  hasEnabledSuperadmin,
  immediate,
  insertUser,
  replaceSetupToken,
  type Store,
} from '@portunus/store';

import { SETUP_TOKEN_TTL_MS } from '../operator/context.js';
import { generateSecret, hashSecret } from './secrets.js';

export const LEGACY_USER_ID = '_legacy';

/** Makes sure `_legacy` exists as an enabled superadmin; returns the operator token's hash. */
export function bootstrapOperatorToken(
  store: Store,
  operatorToken: string,
  logger: Logger,
  now: number,
): string {
  const created = immediate(store.db, () => {
    const existing = getUser(store.db, LEGACY_USER_ID);
    if (existing) return false;
    insertUser(store.db, {
      userId: LEGACY_USER_ID,
      role: 'superadmin',
      displayName: 'operator token',
      now,
    });
    return true;
  });
  logger.info(EVENTS.bootstrapLegacy, { outcome: 'ok', user_id: LEGACY_USER_ID, created });
  return hashSecret(operatorToken);
}

/**
 * Issues a fresh setup token (replacing any earlier one) while no enabled superadmin exists;
 * returns it for the caller to print once. Throws already_bootstrapped otherwise.
 */
export function issueSetupToken(store: Store, logger: Logger, now: number): string {
  const token = generateSecret();
  immediate(store.db, () => {
    if (hasEnabledSuperadmin(store.db)) {
      throw new PortunusError(
        'already_bootstrapped',
        'a superadmin already exists; log in, or use reset-password to recover access',
      );
    }
    replaceSetupToken(store.db, {
      tokenHash: hashSecret(token),
      issuedAt: now,
      expiresAt: now + SETUP_TOKEN_TTL_MS,
    });
  });
  logger.info(EVENTS.onboardingSetupTokenRotated, {
    expires_at: new Date(now + SETUP_TOKEN_TTL_MS).toISOString(),
  });
  return token;
}
