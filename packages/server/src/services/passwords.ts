/**
 * The password reset use case (reference §2.3, §1.2) that `POST /v1/users/{id}/password` and the
 * offline `reset-password` both perform: the user must exist; no new password means a generated
 * one that its owner must replace; the policy is checked and the hash computed before the one
 * transaction that stores it, revokes the user's web sessions and records the audit action, so a
 * refused reset changes nothing. The caller adds where it ran (its AuditSink). Depends on the
 * store and the identity helpers; no HTTP.
 */
import type { Database } from 'better-sqlite3';

import { EVENTS } from '@portunus/core';
import { getUserOrThrow, immediate, revokeUserWebSessions, setPassword } from '@portunus/store';

import { checkPasswordPolicy, hashPassword } from '../identity/passwords.js';
import { generateSecret } from '../identity/secrets.js';
import type { AuditSink } from './audit-sink.js';

export interface PasswordReset {
  /** The generated password, when none was given; shown once to whoever asked. */
  generated?: string;
  changeRequired: boolean;
  sessionsRevoked: number;
}

export async function resetPassword(
  deps: { db: Database; now: () => number },
  userId: string,
  request: { newPassword?: string; temporary?: boolean },
  audit: AuditSink,
): Promise<PasswordReset> {
  getUserOrThrow(deps.db, userId);
  const generated = request.newPassword === undefined ? generateSecret() : undefined;
  const password = request.newPassword ?? generated ?? '';
  checkPasswordPolicy(password);
  // A generated password is only a way in: its owner must replace it.
  const changeRequired = generated !== undefined || request.temporary === true;
  const passwordHash = await hashPassword(password);
  const sessionsRevoked = immediate(deps.db, () => {
    // Checked again: the user may have been removed while the hash was computed.
    getUserOrThrow(deps.db, userId);
    setPassword(deps.db, userId, passwordHash, changeRequired, deps.now());
    const count = revokeUserWebSessions(deps.db, userId, deps.now());
    audit({
      action: EVENTS.passwordReset,
      resourceKind: 'user',
      resourceValue: userId,
      details: {
        sessions_revoked: count,
        temporary_password_generated: generated !== undefined,
        password_change_required: changeRequired,
      },
    });
    return count;
  });
  return { ...(generated !== undefined ? { generated } : {}), changeRequired, sessionsRevoked };
}
