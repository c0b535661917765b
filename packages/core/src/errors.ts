/**
 * The error catalogue: every failure the program can report, each with its stable code, the log
 * event it emits, the process exit code and the HTTP status (DESIGN.md §3). Codes are external
 * contracts (operators' scripts match them): add entries, never rename or reuse one. Every thrown
 * failure is a `PortunusError` built from this table, so a CLI exit, a log line and an HTTP
 * answer can never disagree. Depends only on the exit-code table.
 */
import { EXIT, type ExitCode } from './exit-codes.js';

interface CatalogueEntry {
  readonly event: string;
  readonly exitCode: ExitCode;
  readonly httpStatus: number;
  /** What the code means, for docs and for the default message. */
  readonly summary: string;
}

function entry(
  event: string,
  exitCode: ExitCode,
  httpStatus: number,
  summary: string,
): CatalogueEntry {
  return { event, exitCode, httpStatus, summary };
}

export const ERROR_CATALOGUE = {
  // generic
  internal_error: entry('process.internal_error', EXIT.runtime, 500, 'unexpected internal error'),
  io_error: entry('process.io_error', EXIT.runtime, 500, 'file or socket operation failed'),
  usage_error: entry('cli.usage_error', EXIT.usage, 400, 'invalid command line'),
  not_found: entry('http.not_found', EXIT.notFound, 404, 'no such resource'),
  // configuration and data dir
  config_invalid: entry('config.invalid', EXIT.usage, 400, 'server.toml is invalid'),
  data_dir_unresolvable: entry(
    'startup.data_dir_unresolvable',
    EXIT.runtime,
    500,
    'no data dir: pass --data-dir or set STATE_DIRECTORY, XDG_STATE_HOME or HOME',
  ),
  unsupported_filesystem: entry(
    'startup.unsupported_filesystem',
    EXIT.config,
    500,
    'the data dir is on a filesystem that cannot hold the store safely',
  ),
  tls_key_permissions: entry(
    'startup.tls_key_permissions',
    EXIT.config,
    500,
    'the TLS private key file is readable by group or others; chmod 600 it',
  ),
  tls_error: entry(
    'startup.tls_error',
    EXIT.config,
    500,
    'the TLS certificate or key is missing, unreadable, invalid or does not match',
  ),
  // the store
  store_in_use: entry(
    'startup.store_in_use',
    EXIT.storeInUse,
    503,
    'another process holds the data dir',
  ),
  schema_version_too_new: entry(
    'startup.schema_version_too_new',
    EXIT.config,
    500,
    'the database schema is newer than this binary supports',
  ),
  migration_failed: entry(
    'store.migration_failed',
    EXIT.migrationFailed,
    500,
    'a migration failed',
  ),
  migration_checksum_mismatch: entry(
    'store.migration_checksum_mismatch',
    EXIT.migrationFailed,
    500,
    'an applied migration was edited after it ran',
  ),
  migration_missing: entry(
    'store.migration_missing',
    EXIT.migrationFailed,
    500,
    'the database records a migration this binary does not ship',
  ),
  not_sqlite: entry('store.not_sqlite', EXIT.notSqlite, 422, 'the file is not a SQLite database'),
  store_corrupt: entry(
    'store.corrupt',
    EXIT.notSqlite,
    500,
    'the database failed its integrity check',
  ),
  store_error: entry('store.error', EXIT.runtime, 500, 'store_error'),
  // operator commands on the store
  destination_exists: entry(
    'cli.destination_exists',
    EXIT.conflict,
    409,
    'the destination already exists',
  ),
  data_dir_not_empty: entry(
    'cli.data_dir_not_empty',
    EXIT.conflict,
    409,
    'the data dir already holds a state.db',
  ),
  source_not_found: entry(
    'cli.source_not_found',
    EXIT.notFound,
    404,
    'the source file does not exist',
  ),
  // query validation (shared by the CLI and GET /v1/audit)
  invalid_timestamp: entry(
    'validation.invalid_timestamp',
    EXIT.usage,
    400,
    'expected an RFC3339 timestamp such as 2026-05-01T00:00:00Z',
  ),
  invalid_time_range: entry(
    'validation.invalid_time_range',
    EXIT.usage,
    400,
    'since is after until',
  ),
  invalid_cursor: entry('validation.invalid_cursor', EXIT.usage, 400, 'the cursor is not valid'),
  invalid_limit: entry('validation.invalid_limit', EXIT.usage, 422, 'limit must be 1..1000'),
  invalid_outcome: entry(
    'validation.invalid_outcome',
    EXIT.usage,
    422,
    'outcome must be allow or deny',
  ),
  // traffic history queries (reference §2.3)
  invalid_traffic_range: entry(
    'validation.invalid_traffic_range',
    EXIT.usage,
    400,
    'from and to must be unix seconds with 0 <= from < to, and bucket 1m or 1h',
  ),
  traffic_bucket_out_of_retention: entry(
    'validation.traffic_bucket_out_of_retention',
    EXIT.usage,
    422,
    'from is older than the retention of the bucket (1m: 7 days, 1h: 90 days)',
  ),
  traffic_too_many_rows: entry(
    'validation.traffic_too_many_rows',
    EXIT.usage,
    422,
    'the range holds more than 10000 buckets; use a shorter range or bucket=1h',
  ),
  // traffic quotas (reference §2.3, §5.10; policies beyond it: DESIGN.md §8.9)
  invalid_quota_size: entry(
    'validation.invalid_quota_size',
    EXIT.usage,
    400,
    'monthly_bytes must be an integer from 0 to 9007199254740991',
  ),
  invalid_billing_anchor: entry(
    'validation.invalid_billing_anchor',
    EXIT.usage,
    400,
    'billing_anchor must be unix seconds (an integer >= 0), and not given together with reset_day',
  ),
  invalid_quota_policy: entry(
    'validation.invalid_quota_policy',
    EXIT.usage,
    400,
    'enforcement is hard or soft, period monthly or never, reset_day 1..28 (monthly only)',
  ),
  quota_target_not_found: entry(
    'validation.quota_target_not_found',
    EXIT.usage,
    422,
    'the user has no grant on this client, so it cannot carry a quota there',
  ),
  quota_not_found: entry(
    'not_found.quota',
    EXIT.notFound,
    404,
    'no quota for this user and client',
  ),
  quota_unsupported_by_client: entry(
    'edge.quota_unsupported_by_client',
    EXIT.edge,
    422,
    'the client is not connected or too old to enforce traffic quotas',
  ),
  // operator HTTP: request shape
  invalid_body: entry('http.invalid_body', EXIT.usage, 400, 'the request body is not valid JSON'),
  validation_failed: entry(
    'validation.failed',
    EXIT.usage,
    400,
    'the request does not match the expected shape',
  ),
  unsupported_media_type: entry(
    'http.unsupported_media_type',
    EXIT.usage,
    415,
    'the request body must be application/json',
  ),
  // authentication (DESIGN.md §3: exit 4)
  bootstrap_required: entry(
    'auth.bootstrap_required',
    EXIT.auth,
    503,
    'no superadmin exists yet: finish onboarding first',
  ),
  unauthenticated: entry('auth.unauthenticated', EXIT.auth, 401, 'authentication required'),
  credential_invalid: entry(
    'auth.credential_invalid',
    EXIT.auth,
    401,
    'the credential is unknown, expired or revoked',
  ),
  user_disabled: entry('auth.user_disabled', EXIT.auth, 401, 'the user is disabled'),
  invalid_login: entry('auth.invalid_login', EXIT.auth, 401, 'wrong user id or password'),
  setup_token_required: entry(
    'auth.setup_token_required',
    EXIT.auth,
    401,
    'the onboarding setup token is required',
  ),
  setup_token_invalid: entry(
    'auth.setup_token_invalid',
    EXIT.auth,
    401,
    'the onboarding setup token is wrong or expired',
  ),
  rate_limited: entry(
    'auth.rate_limited',
    EXIT.auth,
    429,
    'too many failed attempts; try again later',
  ),
  password_change_required: entry(
    'auth.password_change_required',
    EXIT.auth,
    403,
    'change your password first (POST /v1/users/me/password)',
  ),
  csrf_origin_required: entry(
    'csrf.origin_required',
    EXIT.auth,
    403,
    'the Origin header is required',
  ),
  csrf_origin_mismatch: entry(
    'csrf.origin_mismatch',
    EXIT.auth,
    403,
    'the Origin header does not match this server',
  ),
  csrf_header_required: entry(
    'csrf.header_required',
    EXIT.auth,
    403,
    'the X-Portunus-CSRF: 1 header is required',
  ),
  csrf_content_type_required: entry(
    'csrf.content_type_required',
    EXIT.auth,
    403,
    'a request body must be application/json',
  ),
  // authorization (exit 4)
  role_required: entry('rbac.role_required', EXIT.auth, 403, 'this needs the superadmin role'),
  not_owner: entry('rbac.not_owner', EXIT.auth, 403, 'only the owner or a superadmin may do this'),
  client_not_granted: entry(
    'rbac.client_not_granted',
    EXIT.auth,
    403,
    'no grant covers this client',
  ),
  protocol_not_granted: entry(
    'rbac.protocol_not_granted',
    EXIT.auth,
    403,
    'no grant for this client allows this protocol',
  ),
  port_outside_grant: entry(
    'rbac.port_outside_grant',
    EXIT.auth,
    403,
    'no single grant covers the whole listen range',
  ),
  // identities: validation (exit 2)
  invalid_user_id: entry(
    'validation.invalid_user_id',
    EXIT.usage,
    422,
    'user ids are 1..32 characters: a lowercase letter, then lowercase letters, digits, _ or -',
  ),
  invalid_display_name: entry(
    'validation.invalid_display_name',
    EXIT.usage,
    422,
    'display names are 1..64 characters after trimming',
  ),
  reserved_user_id: entry(
    'validation.reserved_user_id',
    EXIT.usage,
    422,
    'ids starting with _ are reserved',
  ),
  invalid_role: entry(
    'validation.invalid_role',
    EXIT.usage,
    422,
    'role must be user or superadmin',
  ),
  initial_password_required: entry(
    'validation.initial_password_required',
    EXIT.usage,
    422,
    'an initial password is required',
  ),
  password_too_short: entry(
    'validation.password_too_short',
    EXIT.usage,
    422,
    'passwords need at least 12 characters',
  ),
  password_too_long: entry(
    'validation.password_too_long',
    EXIT.usage,
    422,
    'passwords may be at most 1024 bytes',
  ),
  password_mismatch: entry(
    'validation.password_mismatch',
    EXIT.usage,
    422,
    'the two passwords differ',
  ),
  invalid_port_range: entry(
    'validation.invalid_port_range',
    EXIT.usage,
    422,
    'ports are 1..65535 and the start may not exceed the end',
  ),
  empty_protocol_set: entry(
    'validation.empty_protocol_set',
    EXIT.usage,
    422,
    'at least one protocol (tcp, udp) is required',
  ),
  invalid_protocol: entry(
    'validation.invalid_protocol',
    EXIT.usage,
    400,
    'protocol must be tcp or udp',
  ),
  invalid_client: entry('validation.invalid_client', EXIT.usage, 422, 'the client is not valid'),
  invalid_label: entry(
    'validation.invalid_label',
    EXIT.usage,
    422,
    'labels are at most 128 characters',
  ),
  ambiguous_client_name: entry(
    'validation.ambiguous_client_name',
    EXIT.usage,
    422,
    'several clients share this name; use the client id',
  ),
  // identities: conflicts (exit 3)
  user_already_exists: entry(
    'conflict.user_already_exists',
    EXIT.conflict,
    409,
    'the user already exists',
  ),
  cannot_remove_self: entry(
    'conflict.cannot_remove_self',
    EXIT.conflict,
    409,
    'you cannot remove yourself',
  ),
  last_superadmin: entry(
    'conflict.last_superadmin',
    EXIT.conflict,
    409,
    'the last enabled superadmin cannot be removed',
  ),
  already_bootstrapped: entry(
    'conflict.already_bootstrapped',
    EXIT.conflict,
    409,
    'a superadmin already exists',
  ),
  port_in_use: entry(
    'conflict.port_in_use',
    EXIT.conflict,
    409,
    'the listen port is already in use',
  ),
  // shared SNI ports (reference §5.7; docs/sni-routing.md)
  'conflict.sni_route_duplicate': entry(
    'conflict.sni_route_duplicate',
    EXIT.conflict,
    409,
    'another rule on this SNI port already routes the same sni_pattern',
  ),
  'conflict.sni_fallback_duplicate': entry(
    'conflict.sni_fallback_duplicate',
    EXIT.conflict,
    409,
    'this SNI port already has a fallback rule (a rule without sni_pattern)',
  ),
  'conflict.legacy_to_sni_unsupported': entry(
    'conflict.legacy_to_sni_unsupported',
    EXIT.conflict,
    409,
    'a port is either plain or SNI-routed: a plain rule and SNI rules cannot share it',
  ),
  // not found (exit 5)
  user_not_found: entry('not_found.user', EXIT.notFound, 404, 'no such user'),
  grant_not_found: entry('not_found.grant', EXIT.notFound, 404, 'no such grant'),
  credential_not_found: entry('not_found.credential', EXIT.notFound, 404, 'no such credential'),
  client_not_found: entry('not_found.client', EXIT.notFound, 404, 'no such client'),
  rule_not_found: entry('not_found.rule', EXIT.notFound, 404, 'no such rule'),
  owner_rate_limit_not_found: entry(
    'not_found.owner_rate_limit',
    EXIT.notFound,
    404,
    'this owner has no rate limit on this client',
  ),
  // edge (exit 6)
  activation_failed: entry(
    'edge.activation_failed',
    EXIT.edge,
    422,
    'the client could not activate the rule',
  ),
  ack_timeout: entry(
    'edge.ack_timeout',
    EXIT.edge,
    504,
    'the client did not answer within the ack budget; the rule stays pending',
  ),
  unsupported_protocol: entry(
    'edge.unsupported_protocol',
    EXIT.edge,
    422,
    'the client does not support this protocol',
  ),
  multi_target_unsupported_by_client: entry(
    'edge.multi_target_unsupported_by_client',
    EXIT.edge,
    422,
    'the client is too old for rules with several targets',
  ),
  sni_unsupported_by_client: entry(
    'edge.sni_unsupported_by_client',
    EXIT.edge,
    422,
    'the client is too old for SNI rules',
  ),
  proxy_protocol_unsupported_by_client: entry(
    'edge.proxy_protocol_unsupported_by_client',
    EXIT.edge,
    422,
    'the client is too old for PROXY protocol targets',
  ),
  rate_limit_unsupported_by_client: entry(
    'edge.rate_limit_unsupported_by_client',
    EXIT.edge,
    422,
    'the client is too old for rate limits',
  ),
  source_lists_unsupported_by_client: entry(
    'edge.source_lists_unsupported_by_client',
    EXIT.edge,
    422,
    'the client is too old for source allow/deny lists',
  ),
  permission_denied: entry(
    'rule.permission_denied',
    EXIT.edge,
    422,
    'the client may not bind the listen port',
  ),
  bind_failed: entry('rule.bind_failed', EXIT.edge, 422, 'the client could not bind the port'),
  // a pushed rule whose source CIDR lists the edge cannot parse (the server validates them as
  // validation.source_cidr_invalid first; this is the edge's own refusal of a bad definition)
  source_list_invalid: entry(
    'rule.source_list_invalid',
    EXIT.edge,
    422,
    'a source list holds an invalid CIDR or more than 64 entries',
  ),
  duplicate_rule_id: entry(
    'rule.duplicate_rule_id',
    EXIT.conflict,
    409,
    'a rule with this id is already active on the client',
  ),
  // the data plane's per-connection failures (reference §5.4-5.6): counted and logged by the
  // edge, never a rule failure; the HTTP status is what a gateway would answer
  // one code for every resolution failure; the resolver's reason (nxdomain, timeout, servfail,
  // saturated, negative_cached) travels in the error's fields
  dns_failed: entry('rule.dns_failed', EXIT.edge, 502, 'the target name could not be resolved'),
  target_connect_failed: entry(
    'rule.target.dial_failed',
    EXIT.edge,
    502,
    'the target refused or did not answer the connection',
  ),
  all_targets_failed: entry(
    'rule.conn_error_all_targets_failed',
    EXIT.edge,
    502,
    'no target of the rule could be connected',
  ),
  proxy_protocol_write_failed: entry(
    'rule.target.proxy_protocol_write_failed',
    EXIT.edge,
    502,
    'the PROXY header could not be written to the target in time',
  ),
  // enrollment and client identity (reference §4.5, §1.6)
  enrollment_invalid: entry(
    'client.enrollment_invalid',
    EXIT.runtime,
    401,
    'the enrollment code is not known',
  ),
  enrollment_used: entry(
    'client.enrollment_used',
    EXIT.runtime,
    401,
    'the enrollment code was already used or superseded',
  ),
  enrollment_expired: entry(
    'client.enrollment_expired',
    EXIT.runtime,
    401,
    'the enrollment code has expired',
  ),
  invalid_enrollment_ttl: entry(
    'validation.invalid_enrollment_ttl',
    EXIT.usage,
    400,
    'ttl_secs must be 1..86400',
  ),
  invalid_client_address: entry(
    'validation.invalid_client_address',
    EXIT.usage,
    400,
    'the client address must be a bare IP or hostname without a port',
  ),
  invalid_client_name: entry(
    'validation.invalid_client_name',
    EXIT.usage,
    400,
    'client names are 1..255 bytes, not blank, without control characters',
  ),
  client_not_revoked: entry(
    'conflict.client_not_revoked',
    EXIT.conflict,
    409,
    'only a revoked client can be deleted',
  ),
  enroll_uri_invalid: entry(
    'client.enroll_uri_invalid',
    EXIT.runtime,
    400,
    'the enrollment URI must be portunus://host:port/enroll?pin=sha256:<64 hex>&code=<code>',
  ),
  bundle_not_found: entry(
    'client.bundle_search_failed',
    EXIT.runtime,
    500,
    'no client bundle found',
  ),
  bundle_invalid: entry(
    'client.bundle_load_failed',
    EXIT.runtime,
    500,
    'the client bundle is unreadable or invalid',
  ),
  pin_mismatch: entry(
    'control.pin_mismatch',
    EXIT.runtime,
    500,
    'the server certificate does not match the pinned SHA-256 fingerprint',
  ),
  control_unreachable: entry(
    'control.connect_failed',
    EXIT.runtime,
    500,
    'cannot reach the control endpoint',
  ),
  // control-stream bearer failures (reference §4.1); counted in portunus_auth_failures_total
  missing_token: entry('auth.missing_token', EXIT.auth, 401, 'no bearer token was sent'),
  malformed_token: entry('auth.malformed_token', EXIT.auth, 401, 'the bearer token is malformed'),
  token_not_found: entry('auth.token_not_found', EXIT.auth, 401, 'the bearer token is not known'),
  token_revoked: entry('auth.token_revoked', EXIT.auth, 401, 'the client has been revoked'),
  client_not_connected: entry(
    'edge.client_not_connected',
    EXIT.edge,
    422,
    'the client is not connected; pushes are never queued',
  ),
  // rule pushes: request validation (reference §2.4; exit 2)
  rule_shape_conflict: entry(
    'validation.rule_shape_conflict',
    EXIT.usage,
    400,
    'give either target_host/target_port or targets, not both',
  ),
  rule_shape_missing: entry(
    'validation.rule_shape_missing',
    EXIT.usage,
    400,
    'give target_host/target_port or targets',
  ),
  range_invalid: entry(
    'validation.range_invalid',
    EXIT.usage,
    400,
    'listen and target ranges must be valid and of the same size',
  ),
  targets_empty: entry(
    'validation.targets_empty',
    EXIT.usage,
    400,
    'targets needs at least one entry',
  ),
  targets_too_many: entry('validation.targets_too_many', EXIT.usage, 400, 'at most 8 targets'),
  targets_duplicate: entry(
    'validation.targets_duplicate',
    EXIT.usage,
    400,
    'a target is listed twice',
  ),
  target_invalid_port: entry(
    'validation.target_invalid_port',
    EXIT.usage,
    400,
    'target ports are 1..65535',
  ),
  invalid_target_host: entry(
    'validation.invalid_target_host',
    EXIT.usage,
    400,
    'a target host must be an IP address or a DNS name',
  ),
  health_check_interval_out_of_range: entry(
    'validation.health_check_interval_out_of_range',
    EXIT.usage,
    400,
    'health_check_interval_secs is 1..3600 and needs the targets shape',
  ),
  'validation.sni_on_unsupported_rule': entry(
    'validation.sni_on_unsupported_rule',
    EXIT.usage,
    400,
    'sni_pattern needs a single-port tcp rule',
  ),
  'validation.sni_pattern_malformed': entry(
    'validation.sni_pattern_malformed',
    EXIT.usage,
    400,
    'sni_pattern must be a DNS name, optionally starting with *.',
  ),
  'validation.rate_limit_cap_zero': entry(
    'validation.rate_limit_cap_zero',
    EXIT.usage,
    400,
    'rate-limit caps must be positive',
  ),
  'validation.rate_limit_burst_without_rate': entry(
    'validation.rate_limit_burst_without_rate',
    EXIT.usage,
    400,
    'a burst needs its rate',
  ),
  target_invalid_host: entry(
    'validation.target_invalid_host',
    EXIT.usage,
    400,
    'a target host is empty or not parseable',
  ),
  invalid_target_host_too_long: entry(
    'validation.invalid_target_host_too_long',
    EXIT.usage,
    400,
    'a target hostname is longer than 253 characters',
  ),
  invalid_target_host_label_too_long: entry(
    'validation.invalid_target_host_label_too_long',
    EXIT.usage,
    400,
    'a target hostname label is longer than 63 characters',
  ),
  invalid_target_host_label_hyphen: entry(
    'validation.invalid_target_host_label_hyphen',
    EXIT.usage,
    400,
    'a target hostname label starts or ends with a hyphen',
  ),
  'validation.rate_limit_burst_range': entry(
    'validation.rate_limit_burst_range',
    EXIT.usage,
    400,
    'a burst must lie between rate/100 and rate*60',
  ),
  'validation.rate_limit_burst_unsupported': entry(
    'validation.rate_limit_burst_unsupported',
    EXIT.usage,
    400,
    'concurrent_connections_burst is reserved',
  ),
  'validation.proxy_protocol_invalid': entry(
    'validation.proxy_protocol_invalid',
    EXIT.usage,
    400,
    'proxy_protocol must be v1 or v2',
  ),
  'validation.proxy_protocol_on_unsupported_rule': entry(
    'validation.proxy_protocol_on_unsupported_rule',
    EXIT.usage,
    400,
    'PROXY protocol applies to TCP rules only',
  ),
  'validation.rate_limit_on_legacy_shape': entry(
    'validation.rate_limit_on_legacy_shape',
    EXIT.usage,
    400,
    'rate_limit needs the targets shape',
  ),
  'validation.rate_limit_cap_out_of_range': entry(
    'validation.rate_limit_cap_out_of_range',
    EXIT.usage,
    400,
    'a rate-limit cap must be a whole number within its wire type (u32 or u64)',
  ),
  'validation.rate_limit_no_caps_provided': entry(
    'validation.rate_limit_no_caps_provided',
    EXIT.usage,
    400,
    'an owner rate limit needs at least one cap',
  ),
  'validation.source_cidr_invalid': entry(
    'validation.source_cidr_invalid',
    EXIT.usage,
    400,
    'a source list entry is not an IPv4 or IPv6 CIDR, or repeats another entry',
  ),
  'validation.source_list_too_long': entry(
    'validation.source_list_too_long',
    EXIT.usage,
    400,
    'a source list has more than 64 entries',
  ),
  exceeds_cap: entry(
    'validation.exceeds_cap',
    EXIT.usage,
    400,
    'the port range is larger than allowed',
  ),
  'validation.target_is_self': entry(
    'validation.target_is_self',
    EXIT.usage,
    400,
    "a target is the rule's own listen address on its client: it would forward to itself",
  ),
  'validation.rule_update_shape_mismatch': entry(
    'validation.rule_update_shape_mismatch',
    EXIT.usage,
    400,
    'an edit cannot move a rule to another client; remove it and push a new one',
  ),
  // rule-set revisions
  revision_not_found: entry(
    'not_found.rule_revision',
    EXIT.notFound,
    404,
    'no such rule-set revision (never recorded, or pruned with the audit log)',
  ),
  // settings
  endpoint_invalid: entry(
    'validation.endpoint_invalid',
    EXIT.usage,
    422,
    'the advertised endpoint must be host:port',
  ),
  endpoint_not_in_cert_san: entry(
    'validation.endpoint_not_in_cert_san',
    EXIT.usage,
    422,
    "the advertised host is not covered by the server certificate's SANs",
  ),
  listen_failed: entry('server.listen_failed', EXIT.runtime, 500, 'cannot bind a listener'),
  // CLI talking to a running server
  server_unreachable: entry(
    'cli.server_unreachable',
    EXIT.runtime,
    502,
    'cannot reach the operator HTTP endpoint',
  ),
  operator_token_missing: entry(
    'cli.operator_token_missing',
    EXIT.auth,
    401,
    'run `portunus-server login` or set PORTUNUS_OPERATOR_TOKEN to an operator bearer token',
  ),
  not_logged_in: entry(
    'cli.not_logged_in',
    EXIT.auth,
    401,
    'no stored operator credential; `portunus-server login` creates one',
  ),
  // data safety: restore inputs and the store-held TLS identity
  source_is_directory: entry(
    'cli.source_is_directory',
    EXIT.usage,
    400,
    'the input is a directory; pass the backup file itself',
  ),
  // store faults: a full disk and failing writes/fsyncs (e2e/src/disk-full.e2e.test.ts, io-errors)
  store_full: entry(
    'store.disk_full',
    EXIT.runtime,
    507,
    'the disk holding the store is full; free space and retry',
  ),
  store_io_error: entry(
    'store.io_error',
    EXIT.runtime,
    503,
    'the store could not write or sync its file; the write is not acknowledged',
  ),
  // hardening: hostile input on the operator API and the control listener
  payload_too_large: entry(
    'http.payload_too_large',
    EXIT.usage,
    413,
    'the request body is larger than the server accepts',
  ),
  // portunus-standalone (reference §12): the TOML file, its rules and the stats socket
  standalone_config_missing: entry(
    'standalone.config_missing',
    EXIT.usage,
    400,
    'no portunus.toml: pass --config, set PORTUNUS_STANDALONE_CONFIG or create ./portunus.toml',
  ),
  standalone_config_invalid: entry(
    'standalone.config_invalid',
    EXIT.usage,
    400,
    'portunus.toml is invalid; every problem is named with its key path',
  ),
  standalone_activation_failed: entry(
    'standalone.activation_failed',
    EXIT.runtime,
    500,
    'a rule from portunus.toml could not be started (port in use, bind failure)',
  ),
  standalone_stats_unavailable: entry(
    'standalone.stats_unavailable',
    EXIT.usage,
    503,
    'cannot read the stats socket: is portunus-standalone running with stats enabled?',
  ),
  standalone_tui_unavailable: entry(
    'standalone.tui_unavailable',
    EXIT.usage,
    400,
    'the stats TUI needs a terminal on stdin and stdout; use --once for JSON',
  ),
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

/** Structured context for the log line; never put secrets here (they are redacted anyway). */
export type ErrorFields = Readonly<Record<string, unknown>>;

export class PortunusError extends Error {
  readonly code: ErrorCode;
  readonly event: string;
  readonly exitCode: ExitCode;
  readonly httpStatus: number;
  readonly fields: ErrorFields;

  constructor(code: ErrorCode, message?: string, fields: ErrorFields = {}, options?: ErrorOptions) {
    const known = ERROR_CATALOGUE[code];
    super(message ?? known.summary, options);
    this.name = 'PortunusError';
    this.code = code;
    this.event = known.event;
    this.exitCode = known.exitCode;
    this.httpStatus = known.httpStatus;
    this.fields = fields;
  }
}

export function isPortunusError(value: unknown): value is PortunusError {
  return value instanceof PortunusError;
}

/** The one HTTP error body shape: `{"error":{"code","message"}}`. 5xx details stay in the log. */
export function errorBody(error: PortunusError): { error: { code: string; message: string } } {
  const message = error.httpStatus >= 500 ? ERROR_CATALOGUE[error.code].summary : error.message;
  return { error: { code: error.code, message } };
}
