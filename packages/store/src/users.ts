/**
 * The users aggregate: RBAC identities with an optional Argon2id password hash (computed by the
 * caller; this module never sees a password). Owns the invariants that need the database to
 * check: unique ids, and that the last enabled superadmin cannot be removed. Removing a user
 * cascades (foreign keys) to credentials, grants, rules, sessions and quotas; the ids removed are
 * returned so callers can audit them and stop the rules on live clients. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { PortunusError } from '@portunus/core';

import { recordRevision, removalChanges, type RevisionAuthor } from './rule-revisions.js';
import { immediate, isUniqueViolation, prepared } from './statements.js';

export type Role = 'superadmin' | 'user';

export interface User {
  userId: string;
  role: Role;
  displayName: string;
  disabled: boolean;
  passwordHash: string | null;
  passwordChangeRequired: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface UserWithGrantCount extends User {
  grantCount: number;
}

export interface NewUser {
  userId: string;
  role: Role;
  displayName: string;
  passwordHash?: string | null;
  passwordChangeRequired?: boolean;
  now: number;
}

export interface UserRemoval {
  userId: string;
  removedCredentialIds: string[];
  revokedGrantIds: string[];
  removedRuleIds: number[];
}

interface UserRow {
  user_id: string;
  role: Role;
  display_name: string;
  disabled: number;
  password_hash: string | null;
  password_change_required: number;
  created_at: number;
  updated_at: number;
  grant_count?: number;
}

function fromRow(row: UserRow): User {
  return {
    userId: row.user_id,
    role: row.role,
    displayName: row.display_name,
    disabled: row.disabled === 1,
    passwordHash: row.password_hash,
    passwordChangeRequired: row.password_change_required === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function insertUser(db: Database, user: NewUser): User {
  try {
    prepared(
      db,
      `INSERT INTO users (user_id, role, display_name, password_hash, password_change_required,
         created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      user.userId,
      user.role,
      user.displayName,
      user.passwordHash ?? null,
      user.passwordChangeRequired ? 1 : 0,
      user.now,
      user.now,
    );
  } catch (error) {
    if (isUniqueViolation(error)) {
      throw new PortunusError('user_already_exists', `user ${user.userId} already exists`, {
        user_id: user.userId,
      });
    }
    throw error;
  }
  return getUserOrThrow(db, user.userId);
}

export function getUser(db: Database, userId: string): User | undefined {
  const row = prepared(db, 'SELECT * FROM users WHERE user_id = ?').get(userId) as
    UserRow | undefined;
  return row ? fromRow(row) : undefined;
}

export function getUserOrThrow(db: Database, userId: string): User {
  const user = getUser(db, userId);
  if (!user) throw new PortunusError('user_not_found', `no user ${userId}`, { user_id: userId });
  return user;
}

export function listUsers(db: Database): UserWithGrantCount[] {
  const rows = prepared(
    db,
    `SELECT u.*, (SELECT count(*) FROM grants g WHERE g.user_id = u.user_id) AS grant_count
     FROM users u ORDER BY u.user_id`,
  ).all() as UserRow[];
  return rows.map((row) => ({ ...fromRow(row), grantCount: row.grant_count ?? 0 }));
}

export function countGrants(db: Database, userId: string): number {
  return prepared(db, 'SELECT count(*) FROM grants WHERE user_id = ?')
    .pluck()
    .get(userId) as number;
}

/** True while at least one enabled superadmin exists (the bootstrap gate). */
export function hasEnabledSuperadmin(db: Database): boolean {
  return (
    prepared(db, "SELECT 1 FROM users WHERE role = 'superadmin' AND disabled = 0 LIMIT 1").get() !==
    undefined
  );
}

export function setPassword(
  db: Database,
  userId: string,
  passwordHash: string,
  changeRequired: boolean,
  now: number,
): void {
  const result = prepared(
    db,
    `UPDATE users SET password_hash = ?, password_change_required = ?, updated_at = ?
     WHERE user_id = ?`,
  ).run(passwordHash, changeRequired ? 1 : 0, now, userId);
  if (result.changes === 0) {
    throw new PortunusError('user_not_found', `no user ${userId}`, { user_id: userId });
  }
}

/**
 * Removes a user and everything that belongs to it, in one transaction. Refuses to remove the
 * last enabled superadmin.
 */
export function deleteUser(db: Database, userId: string, author?: RevisionAuthor): UserRemoval {
  return immediate(db, () => {
    const user = getUserOrThrow(db, userId);
    if (user.role === 'superadmin' && !user.disabled) {
      const others = prepared(
        db,
        "SELECT count(*) FROM users WHERE role = 'superadmin' AND disabled = 0 AND user_id <> ?",
      )
        .pluck()
        .get(userId) as number;
      if (others === 0) {
        throw new PortunusError(
          'last_superadmin',
          `${userId} is the last enabled superadmin; create another superadmin first`,
          { user_id: userId },
        );
      }
    }
    const ids = (sql: string): unknown[] => prepared(db, sql).pluck().all(userId);
    const removal: UserRemoval = {
      userId,
      removedCredentialIds: ids(
        'SELECT credential_id FROM credentials WHERE user_id = ? ORDER BY credential_id',
      ) as string[],
      revokedGrantIds: ids(
        'SELECT grant_id FROM grants WHERE user_id = ? ORDER BY grant_id',
      ) as string[],
      removedRuleIds: ids(
        'SELECT rule_id FROM rules WHERE owner_user_id = ? ORDER BY rule_id',
      ) as number[],
    };
    if (author) {
      const rules = removal.removedRuleIds.join(', ');
      recordRevision(
        db,
        author,
        'user_removed',
        `remove user ${userId}: rules ${rules}`,
        removalChanges(db, removal.removedRuleIds),
      );
    }
    prepared(db, 'DELETE FROM users WHERE user_id = ?').run(userId);
    return removal;
  });
}
