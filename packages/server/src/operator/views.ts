/**
 * The JSON shapes the operator API answers with (reference §2.3), built from store records in one
 * place so a list and a single-item route can never disagree.
 */
import type { CredentialView, GrantView, UserView } from '@portunus/api';
import { formatRfc3339 } from '@portunus/core';
import type { Credential, Grant, User } from '@portunus/store';

export function userView(user: User, grantCount: number): UserView {
  return {
    user_id: user.userId,
    display_name: user.displayName,
    role: user.role,
    disabled: user.disabled,
    password_change_required: user.passwordChangeRequired,
    created_at: formatRfc3339(user.createdAt),
    grant_count: grantCount,
  };
}

export function grantView(grant: Grant): GrantView {
  return {
    grant_id: grant.grantId,
    user_id: grant.userId,
    client: grant.clientName,
    client_id: grant.clientId,
    listen_port_start: grant.listenPortStart,
    listen_port_end: grant.listenPortEnd,
    protocols: grant.protocols,
    note: grant.note,
    created_at: formatRfc3339(grant.createdAt),
  };
}

export function credentialView(credential: Credential): CredentialView {
  const time = (value: number | null): string | null =>
    value === null ? null : formatRfc3339(value);
  return {
    credential_id: credential.credentialId,
    user_id: credential.userId,
    label: credential.label,
    status: credential.status,
    issued_at: formatRfc3339(credential.issuedAt),
    revoked_at: time(credential.revokedAt),
    last_used_at: time(credential.lastUsedAt),
  };
}
