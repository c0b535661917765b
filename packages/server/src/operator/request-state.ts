/**
 * What the auth layer and routes record on a request for the audit and metrics hooks: who made it,
 * the error code it ended with, and an optional named action. Declared once as fastify type
 * augmentation so every route sees the same fields.
 */
import type { FastifyRequest } from 'fastify';

import type { AuditSink } from '../services/audit-sink.js';
import type { Identity } from './context.js';

export interface NamedAuditAction {
  action: string;
  resourceKind?: string;
  resourceValue?: string;
  details?: Record<string, unknown>;
  /** Who the row names when no identity is attached (login, onboarding). */
  actor?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    identity?: Identity;
    /** The catalogued error code the request ended with. */
    errorCode?: string;
    auditAction?: NamedAuditAction;
    /**
     * What the request acts on, set by a route as soon as it knows (before the checks that may
     * deny it), so denied rows name it too; a named action's resource wins (audit-record.ts).
     */
    auditResource?: { kind: string; value: string };
  }
  interface FastifyContextConfig {
    /** Reachable without authentication (auth status, onboarding, login). */
    isPublic?: boolean;
  }
}

export {};

/** A use case's audit action, handed to the HTTP audit layer that writes it with this request. */
export function auditTo(request: FastifyRequest): AuditSink {
  return (action) => {
    request.auditAction = action;
  };
}
