/**
 * The public face of @portunus/store. store imports only core (DESIGN.md §2); the server uses
 * these typed functions and never writes SQL of its own.
 */
export {
  ensureDataDir,
  resolveDataDir,
  type DataDirSource,
  type Env,
  type ResolvedDataDir,
} from './data-dir.js';
export { REFUSED_FILESYSTEMS, checkFilesystem, type StatfsType } from './filesystem.js';
export { getTlsIdentity, recordTlsIdentity, type StoredTlsIdentity } from './tls-identity.js';
export { acquireStoreLock, type StoreLock } from './lock.js';
export { STATE_DB, storePaths, type StorePaths } from './paths.js';
export {
  SQLITE_MAGIC,
  assertSqliteFile,
  hasSqliteHeader,
  readHeaderUserVersion,
} from './sqlite-header.js';
export {
  MIGRATIONS_DIR,
  latestVersion,
  loadMigrations,
  migrate,
  migrationChecksum,
  migrationFromText,
  readSchemaVersion,
  type Migration,
  type MigrationResult,
} from './migrate.js';
export {
  BUSY_TIMEOUT_MS,
  openDatabase,
  openStore,
  type OpenDatabaseOptions,
  type OpenStoreOptions,
  type OpenedDatabase,
  type Store,
} from './open.js';
export {
  AUDIT_DEFAULT_LIMIT,
  AUDIT_MAX_LIMIT,
  appendAudit,
  auditEntryJson,
  auditEnvelopeJson,
  auditLimit,
  countAuditBefore,
  decodeAuditCursor,
  deleteAuditBefore,
  encodeAuditCursor,
  queryAudit,
  type AuditEntry,
  type AuditEntryJson,
  type AuditOutcome,
  type AuditPage,
  type AuditQuery,
  type AuditRecord,
} from './audit.js';
export { AuditWriter, type AuditWriterOptions } from './audit-writer.js';
export { StoreFaults, isDiskFull, isIoError, translateStoreError } from './store-faults.js';
export { backupStore, resolveBackupTarget, type BackupResult } from './backup.js';
export { restoreStore, type RestoreOptions, type RestoreResult } from './restore.js';
export { resetStore, type ResetResult } from './reset.js';
export { pruneAudit, type AuditPruneResult } from './audit-prune.js';
export { immediate, prepared, totalChanges } from './statements.js';
export {
  countGrants,
  deleteUser,
  getUser,
  getUserOrThrow,
  hasEnabledSuperadmin,
  insertUser,
  listUsers,
  setPassword,
  type NewUser,
  type Role,
  type User,
  type UserRemoval,
  type UserWithGrantCount,
} from './users.js';
export {
  findCredentialByHash,
  getCredential,
  insertCredential,
  listCredentials,
  revokeCredential,
  touchCredential,
  type Credential,
} from './credentials.js';
export {
  findLiveWebSession,
  insertWebSession,
  pruneWebSessions,
  revokeUserWebSessions,
  revokeWebSession,
  type WebSession,
} from './web-sessions.js';
export {
  THROTTLE_BASE_LOCK_MS,
  THROTTLE_FREE_FAILURES,
  THROTTLE_MAX_LOCK_MS,
  THROTTLE_WINDOW_MS,
  clearFailures,
  lockDurationMs,
  lockedForMs,
  recordFailure,
  type ThrottleAction,
  type ThrottleKey,
} from './login-attempts.js';
export {
  clearSetupToken,
  getSetupToken,
  replaceSetupToken,
  type SetupToken,
} from './onboarding.js';
export {
  MAX_CLIENT_ADDRESS_CHARS,
  MAX_CLIENT_NAME_BYTES,
  checkClientAddress,
  checkClientName,
  clientByTokenHash,
  deleteClient,
  findClientsByName,
  getClient,
  getClientOrThrow,
  insertClient,
  listClients,
  recordClientConnected,
  renameClient,
  resolveClient,
  revokeClient,
  revokeClientsByName,
  setClientAddress,
  supersedeEnrollments,
  type Client,
} from './clients.js';
export {
  ENROLLMENT_TTL_DEFAULT_SECS,
  ENROLLMENT_TTL_MAX_SECS,
  checkEnrollmentTtl,
  createEnrollment,
  provisionPendingClient,
  redeemEnrollment,
  type IssuedEnrollment,
  type NewEnrollment,
  type RedeemedEnrollment,
} from './enrollments.js';
export {
  PROTOCOL_BITS,
  deleteGrant,
  enforcePush,
  getGrant,
  insertGrant,
  listGrants,
  protocolBits,
  protocolsFromBits,
  type Grant,
  type NewGrant,
  type Protocol,
} from './grants.js';
export {
  RATE_LIMIT_COLUMNS,
  countActiveSniRules,
  definitionOf,
  deleteRule,
  findPortHolders,
  getRule,
  getRuleOrThrow,
  insertPendingRule,
  insertRule,
  listRules,
  listRulesJson,
  replaceRuleDefinition,
  sameDefinition,
  setRuleState,
  type NewRule,
  type PortHolder,
  type RateLimit,
  type Rule,
  type RuleDefinition,
  type RuleFilter,
  type RuleState,
  type RuleStateKind,
  type RuleTarget,
} from './rules.js';
export {
  REVISIONS_DEFAULT_LIMIT,
  REVISIONS_MAX_LIMIT,
  addRevisionChange,
  countRevisionsBefore,
  currentRuleSet,
  deleteRevisionIfEmpty,
  deleteRevisionsBefore,
  diffRuleSets,
  discardRuleHistory,
  getRevision,
  getRevisionOrThrow,
  headRevision,
  listRevisions,
  openRevision,
  recordRevision,
  removalChanges,
  ruleSetAt,
  setRevisionSummary,
  type RevisionAction,
  type RevisionAuthor,
  type RuleChange,
  type RuleRevision,
  type RuleSet,
  type RuleSetDiff,
} from './rule-revisions.js';
export {
  deleteOwnerRateLimit,
  getOwnerRateLimit,
  getOwnerRateLimitOrThrow,
  listClientOwners,
  listOwnerRateLimits,
  upsertOwnerRateLimit,
  type ClientOwner,
  type OwnerRateLimit,
} from './owner-rate-limits.js';
export { getAdvertisedEndpointOverride, setAdvertisedEndpointOverride } from './settings.js';
export {
  addQuotaUsage,
  deleteQuota,
  getQuota,
  getQuotaOrThrow,
  listQuotas,
  setQuotaAlertsFired,
  writeQuota,
  type QuotaEnforcement,
  type QuotaPeriodKind,
  type QuotaUsageChange,
  type QuotaWrite,
  type TrafficQuota,
} from './quotas.js';
export { SCHEMA_SNAPSHOT_FILE, renderSchemaSnapshot } from './schema-snapshot.js';
export {
  BUCKET_MS,
  HOUR_MS,
  MINUTE_MS,
  TRAFFIC_RETENTION_MS,
  counterDelta,
  maintainTraffic,
  queryTraffic,
  recordTrafficRound,
  trafficRolledUntil,
  type ByteCounts,
  type OwnerDelta,
  type RuleCounterReading,
  type TrafficBucket,
  type TrafficMaintenanceResult,
  type TrafficRoundResult,
  type TrafficSample,
  type TrafficScope,
} from './traffic.js';
