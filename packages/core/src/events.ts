/**
 * Log event names: the stable dotted `event` field that tests and operators match on. Kept as
 * one `as const` table so a typo does not compile and a rename is a visible contract change.
 * Failure events of catalogued errors live in the error catalogue instead (errors.ts), so each
 * name is defined exactly once. Depends on nothing.
 */
export const EVENTS = {
  // boot sequence, in order (DESIGN.md §4)
  dataDirResolved: 'startup.data_dir_resolved',
  filesystemChecked: 'startup.filesystem_checked',
  storeLocked: 'store.locked',
  storeOpened: 'store.opened',
  storeAutoVacuumEnabled: 'store.auto_vacuum_enabled',
  migrationApplied: 'store.migration_applied',
  storeReady: 'store.ready',
  storeClosed: 'store.closed',
  // TLS identity
  tlsCertGenerated: 'tls.cert_generated',
  tlsCertRegenerated: 'tls.cert_regenerated',
  tlsCertLoaded: 'tls.cert_loaded',
  tlsOperatorCertInUse: 'tls.operator_cert_in_use',
  tlsFingerprint: 'tls.fingerprint',
  tlsAdvertisedHostNotCovered: 'tls.advertised_host_not_covered',
  tlsInterruptedWriteRecovered: 'tls.interrupted_write_recovered',
  // serve lifecycle
  serverListening: 'server.listening',
  shutdownSignal: 'shutdown.signal',
  serverDraining: 'server.draining',
  serverStopped: 'server.stopped',
  onboardingSetupTokenRotated: 'operator.onboarding_setup_token_rotated',
  bootstrapLegacy: 'operator.bootstrap_legacy',
  // operator actions (log lines and named audit rows)
  userAdded: 'operator.user_added',
  userRemoved: 'operator.user_removed',
  grantAdded: 'operator.grant_added',
  grantRevoked: 'operator.grant_revoked',
  credentialCreated: 'operator.credential_created',
  credentialRevoked: 'operator.credential_revoked',
  passwordReset: 'operator.password_reset',
  ruleRemoved: 'operator.rule_removed',
  settingsUpdated: 'operator.settings_updated',
  // audit writer
  auditFlushed: 'audit.flushed',
  auditHandoffOverflow: 'audit.handoff_overflow',
  auditFlushFailed: 'audit.flush_failed',
  // operator commands
  backupComplete: 'cli.backup_complete',
  restoreComplete: 'cli.restore_complete',
  resetComplete: 'cli.reset_complete',
  resetDryRun: 'cli.reset_dry_run',
  auditPruneComplete: 'cli.audit_prune_complete',
  // logging itself
  unexpectedError: 'process.unexpected_error',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];
