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
  serverDrainTimeout: 'server.drain_timeout',
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
  ruleEdited: 'operator.rule_edited',
  ruleRevisionRestored: 'operator.rule_revision_restored',
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
  // traffic history (reference §3.3)
  trafficRolledUp: 'traffic.rolled_up',
  trafficRoundFailed: 'traffic.round_failed',
  trafficMaintenanceFailed: 'traffic.maintenance_failed',
  // traffic quotas (reference §5.10, §4.3)
  quotaSet: 'operator.quota_set',
  quotaUpdated: 'operator.quota_updated',
  quotaRemoved: 'operator.quota_removed',
  quotaExhausted: 'traffic_quota.exhausted',
  quotaPeriodRolled: 'traffic_quota.period_rolled',
  quotaRolloverFailed: 'traffic_quota.rollover_failed',
  quotaPushed: 'traffic_quota.pushed',
  // alerts (beyond the reference: webhooks of server.toml's [alerts])
  alertQueued: 'alert.queued',
  alertDelivered: 'alert.delivered',
  alertRetry: 'alert.retry',
  alertFailed: 'alert.failed',
  alertDropped: 'alert.dropped',
  // control stream, server side (reference §4.3)
  controlListening: 'control.listening',
  authFailure: 'auth.failure',
  clientConnected: 'client.connected',
  clientDisconnected: 'client.disconnected',
  clientHelloMissing: 'client.hello_missing',
  clientHelloAfterWelcome: 'client.hello_after_welcome',
  clientEnrollmentRedeemed: 'client.enrollment_redeemed',
  clientEnrollmentRotated: 'client.enrollment_rotated',
  rulesReplayed: 'rules.replayed',
  ruleStatusUnmatched: 'client.rule_status_unmatched',
  ruleStatusWrongClient: 'client.rule_status_wrong_client',
  rulePush: 'audit.rule_push',
  ruleRemove: 'audit.rule_remove',
  ownerRateLimitSet: 'control.owner_rate_limit_set',
  ownerRateLimitRemove: 'control.owner_rate_limit_remove',
  // edge client (reference §1.6, §4.3); catalogued failures (client.bundle_search_failed,
  // control.connect_failed, control.pin_mismatch …) are named in errors.ts instead
  clientBundleLoaded: 'client.bundle_loaded',
  clientEnrolled: 'client.enrolled',
  clientSelfBootstrap: 'client.self_bootstrap',
  clientSelfBootstrapFailed: 'client.self_bootstrap_failed',
  clientStopped: 'client.stopped',
  controlConnecting: 'control.connecting',
  controlConnected: 'control.connected',
  controlDisconnected: 'control.disconnected',
  controlReconnectScheduled: 'control.reconnect_scheduled',
  controlTerminal: 'control.terminal',
  controlStreamError: 'control.stream_error',
  controlStatsSendFailed: 'control.stats_send_failed',
  controlStatusSendFailed: 'control.status_send_failed',
  controlRulePushUnsupported: 'control.rule_push_unsupported',
  controlRuleAlreadyActive: 'control.rule_already_active',
  /** A running rule the server's replay manifest no longer lists: stopped after a reconnect. */
  controlRuleReconciledRemoved: 'control.rule_reconciled_removed',
  controlRuleRemoveUnknown: 'control.rule_remove_unknown',
  controlRuleUpdateMissingRule: 'control.rule_update_missing_rule',
  controlRuleUpdateUnspecifiedAction: 'control.rule_update_unspecified_action',
  /** An OwnerRateLimitUpdate SET / REMOVE applied to the process's owner envelopes. */
  controlOwnerRateLimitSet: 'control.owner_rate_limit_set',
  controlOwnerRateLimitRemoved: 'control.owner_rate_limit_removed',
  controlOwnerRateLimitInvalid: 'control.owner_rate_limit_invalid',
  controlTrafficQuotaSet: 'control.traffic_quota_set',
  controlTrafficQuotaRemove: 'control.traffic_quota_remove',
  controlTrafficQuotaSetWithoutState: 'control.traffic_quota_update_set_without_state',
  controlTrafficQuotaUnspecifiedAction: 'control.traffic_quota_update_unspecified_action',
  // clients and enrollment (reference §1.5 audit names; address and delete are ours)
  clientEnrollmentCreated: 'audit.client_enrollment_created',
  clientReenrollmentCreated: 'audit.client_reenrollment_created',
  clientRevoked: 'audit.revoke',
  clientRenamed: 'audit.client_rename',
  clientAddressUpdated: 'audit.client_address_updated',
  clientDeleted: 'audit.client_deleted',
  // data safety: the TLS identity held in the store for backup and restore
  tlsIdentityRecorded: 'tls.identity_recorded',
  // store faults: one event per disk-full episode and one when it clears; I/O errors
  storeDiskFull: 'store.disk_full',
  storeDiskSpaceRecovered: 'store.disk_space_recovered',
  storeIoError: 'store.io_error',
  // operations: check-config (README "server.toml")
  configChecked: 'config.checked',
  // logging itself
  unexpectedError: 'process.unexpected_error',
  // hardening: the control listener's TLS front (hostile and slow peers)
  controlHandshakeFailed: 'control.tls_handshake_failed',
  controlHandshakeCapacity: 'control.tls_handshake_capacity',
  // portunus-standalone (reference §12); catalogued failures live in errors.ts
  standaloneStarted: 'standalone.started',
  standaloneStats: 'standalone.stats',
  standaloneReloadRequested: 'standalone.reload_requested',
  standaloneReloaded: 'standalone.reloaded',
  standaloneReloadRefused: 'standalone.reload_refused',
  standaloneStatsListening: 'standalone.stats_listening',
  standaloneStatsReaderDropped: 'standalone.stats_reader_dropped',
  standaloneStopped: 'standalone.stopped',
  // the web UI's live rule stats (GET /v1/rules/{id}/stats/stream)
  statsStreamLagged: 'stats_stream.lagged',
  // the CLI's stored API credential (login / logout)
  cliLoggedIn: 'cli.logged_in',
  cliLoggedOut: 'cli.logged_out',
} as const;

export type EventName = (typeof EVENTS)[keyof typeof EVENTS];
