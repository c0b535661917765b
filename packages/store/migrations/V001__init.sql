-- V001: the initial Portunus schema.
--
-- Conventions (DESIGN.md §4): STRICT tables; every *_at column is unix milliseconds UTC
-- (INTEGER); enums and ranges are CHECK constraints; every foreign key states its ON DELETE.
-- Clients are keyed by a stable ULID client_id; display names are free-form and may repeat
-- (DESIGN.md §8.6). auto_vacuum=INCREMENTAL is set by the store before this file runs, because
-- it must precede the first table.

PRAGMA application_id = 1347572853; -- 'PRTU': marks the file as a Portunus store

-- RBAC users. Reserved ids start with '_' (_legacy, _superadmin, _local_cli, _anonymous).
CREATE TABLE users (
  user_id                  TEXT    PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 32),
  role                     TEXT    NOT NULL CHECK (role IN ('superadmin', 'user')),
  display_name             TEXT    NOT NULL CHECK (length(display_name) BETWEEN 1 AND 64),
  disabled                 INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  password_hash            TEXT,
  password_change_required INTEGER NOT NULL DEFAULT 0 CHECK (password_change_required IN (0, 1)),
  created_at               INTEGER NOT NULL CHECK (created_at >= 0),
  updated_at               INTEGER NOT NULL CHECK (updated_at >= created_at)
) STRICT;
-- "does an enabled superadmin exist?" is asked on every protected request.
CREATE INDEX users_enabled_role ON users (role) WHERE disabled = 0;

-- API bearer credentials: BLAKE3 hex of the token, never the token.
CREATE TABLE credentials (
  credential_id TEXT    PRIMARY KEY,
  user_id       TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  hash          TEXT    NOT NULL UNIQUE CHECK (length(hash) = 64),
  label         TEXT    NOT NULL DEFAULT '' CHECK (length(label) <= 128),
  status        TEXT    NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
  issued_at     INTEGER NOT NULL CHECK (issued_at >= 0),
  revoked_at    INTEGER CHECK (revoked_at IS NULL OR revoked_at >= issued_at),
  last_used_at  INTEGER,
  CHECK ((status = 'revoked') = (revoked_at IS NOT NULL))
) STRICT;
CREATE INDEX credentials_user ON credentials (user_id);

-- Edge clients. token_hash is NULL until the first enrollment code is redeemed.
CREATE TABLE clients (
  client_id        TEXT    PRIMARY KEY CHECK (length(client_id) = 26),
  client_name      TEXT    NOT NULL CHECK (length(CAST(client_name AS BLOB)) BETWEEN 1 AND 255),
  token_hash       TEXT    UNIQUE CHECK (token_hash IS NULL OR length(token_hash) = 64),
  token_issued_at  INTEGER,
  client_address   TEXT    CHECK (client_address IS NULL OR length(client_address) BETWEEN 1 AND 253),
  provisioned_at   INTEGER NOT NULL CHECK (provisioned_at >= 0),
  revoked_at       INTEGER,
  last_connected_at INTEGER,
  last_remote_addr TEXT
) STRICT;
CREATE INDEX clients_name ON clients (client_name);

-- Grants: (user, client or every client, listen-port range, protocol set). protocols is a
-- bitmask: tcp = 1, udp = 2. client_id NULL means '*'.
CREATE TABLE grants (
  grant_id          TEXT    PRIMARY KEY,
  user_id           TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  client_id         TEXT    REFERENCES clients (client_id) ON DELETE CASCADE,
  listen_port_start INTEGER NOT NULL CHECK (listen_port_start BETWEEN 1 AND 65535),
  listen_port_end   INTEGER NOT NULL CHECK (listen_port_end BETWEEN listen_port_start AND 65535),
  protocols         INTEGER NOT NULL CHECK (protocols BETWEEN 1 AND 3),
  note              TEXT    NOT NULL DEFAULT '' CHECK (length(note) <= 256),
  created_at        INTEGER NOT NULL CHECK (created_at >= 0)
) STRICT;
CREATE INDEX grants_user ON grants (user_id);
CREATE INDEX grants_client ON grants (client_id);

-- Forwarding rules as pushed to a client. Targets live in rule_targets (a single-target rule
-- has one row). rl_* are the optional per-rule rate-limit caps (NULL = uncapped).
CREATE TABLE rules (
  rule_id                    INTEGER PRIMARY KEY AUTOINCREMENT,
  client_id                  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  owner_user_id              TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  protocol                   TEXT    NOT NULL CHECK (protocol IN ('tcp', 'udp')),
  listen_port                INTEGER NOT NULL CHECK (listen_port BETWEEN 1 AND 65535),
  listen_port_end            INTEGER CHECK (listen_port_end IS NULL OR listen_port_end BETWEEN listen_port AND 65535),
  prefer_ipv6                INTEGER NOT NULL DEFAULT 0 CHECK (prefer_ipv6 IN (0, 1)),
  health_check_interval_secs INTEGER CHECK (health_check_interval_secs IS NULL OR health_check_interval_secs BETWEEN 1 AND 3600),
  sni_pattern                TEXT    CHECK (sni_pattern IS NULL OR length(sni_pattern) BETWEEN 1 AND 253),
  rl_bandwidth_in_bps        INTEGER CHECK (rl_bandwidth_in_bps IS NULL OR rl_bandwidth_in_bps > 0),
  rl_bandwidth_out_bps       INTEGER CHECK (rl_bandwidth_out_bps IS NULL OR rl_bandwidth_out_bps > 0),
  rl_new_connections_per_sec INTEGER CHECK (rl_new_connections_per_sec IS NULL OR rl_new_connections_per_sec > 0),
  rl_concurrent_connections  INTEGER CHECK (rl_concurrent_connections IS NULL OR rl_concurrent_connections > 0),
  rl_bandwidth_in_burst      INTEGER CHECK (rl_bandwidth_in_burst IS NULL OR rl_bandwidth_in_burst > 0),
  rl_bandwidth_out_burst     INTEGER CHECK (rl_bandwidth_out_burst IS NULL OR rl_bandwidth_out_burst > 0),
  rl_new_connections_burst   INTEGER CHECK (rl_new_connections_burst IS NULL OR rl_new_connections_burst > 0),
  state_kind                 TEXT    NOT NULL DEFAULT 'pending' CHECK (state_kind IN ('pending', 'active', 'failed', 'removed')),
  state_reason               TEXT,
  created_at                 INTEGER NOT NULL CHECK (created_at >= 0),
  updated_at                 INTEGER NOT NULL,
  last_state_change_at       INTEGER NOT NULL,
  CHECK (state_kind = 'failed' OR state_reason IS NULL)
) STRICT;
-- the conflict check: overlapping ports of one client and protocol
CREATE INDEX rules_client_port ON rules (client_id, protocol, listen_port);
CREATE INDEX rules_owner ON rules (owner_user_id);

CREATE TABLE rule_targets (
  rule_id        INTEGER NOT NULL REFERENCES rules (rule_id) ON DELETE CASCADE,
  idx            INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 7),
  host           TEXT    NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
  port           INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
  port_end       INTEGER CHECK (port_end IS NULL OR port_end BETWEEN port AND 65535),
  priority       INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 99),
  proxy_protocol TEXT    CHECK (proxy_protocol IS NULL OR proxy_protocol IN ('v1', 'v2')),
  PRIMARY KEY (rule_id, idx)
) STRICT, WITHOUT ROWID;

-- The durable audit log. seq is AUTOINCREMENT so a pruned seq is never reused (cursors stay
-- valid). actor has no foreign key on purpose: the record outlives the user.
CREATE TABLE audit (
  seq            INTEGER PRIMARY KEY AUTOINCREMENT,
  ts             INTEGER NOT NULL CHECK (ts >= 0),
  actor          TEXT    NOT NULL CHECK (length(actor) >= 1),
  role           TEXT,
  outcome        TEXT    NOT NULL CHECK (outcome IN ('allow', 'deny')),
  method         TEXT    NOT NULL DEFAULT '',
  path           TEXT    NOT NULL DEFAULT '',
  reason         TEXT,
  action         TEXT,
  resource_kind  TEXT,
  resource_value TEXT,
  correlation_id TEXT    NOT NULL DEFAULT '',
  details_json   TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(details_json))
) STRICT;
-- (ts, seq): newest-first pages, time windows and prune all walk this index.
CREATE INDEX audit_ts ON audit (ts, seq);
CREATE INDEX audit_outcome_ts ON audit (outcome, ts, seq);
CREATE INDEX audit_actor_ts ON audit (actor, ts);

-- Per-(client, owner) rate-limit envelopes.
CREATE TABLE rate_limit_owner (
  client_id                  TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  owner_user_id              TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  rl_bandwidth_in_bps        INTEGER CHECK (rl_bandwidth_in_bps IS NULL OR rl_bandwidth_in_bps > 0),
  rl_bandwidth_out_bps       INTEGER CHECK (rl_bandwidth_out_bps IS NULL OR rl_bandwidth_out_bps > 0),
  rl_new_connections_per_sec INTEGER CHECK (rl_new_connections_per_sec IS NULL OR rl_new_connections_per_sec > 0),
  rl_concurrent_connections  INTEGER CHECK (rl_concurrent_connections IS NULL OR rl_concurrent_connections > 0),
  rl_bandwidth_in_burst      INTEGER CHECK (rl_bandwidth_in_burst IS NULL OR rl_bandwidth_in_burst > 0),
  rl_bandwidth_out_burst     INTEGER CHECK (rl_bandwidth_out_burst IS NULL OR rl_bandwidth_out_burst > 0),
  rl_new_connections_burst   INTEGER CHECK (rl_new_connections_burst IS NULL OR rl_new_connections_burst > 0),
  updated_at                 INTEGER NOT NULL CHECK (updated_at >= 0),
  PRIMARY KEY (client_id, owner_user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX rate_limit_owner_owner ON rate_limit_owner (owner_user_id);

-- Monthly traffic quotas per (user, client). No row = unlimited.
CREATE TABLE traffic_quotas (
  user_id                   TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  client_id                 TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  monthly_bytes             INTEGER NOT NULL CHECK (monthly_bytes >= 0),
  billing_anchor            INTEGER NOT NULL CHECK (billing_anchor >= 0),
  current_period_started_at INTEGER NOT NULL CHECK (current_period_started_at >= 0),
  current_period_bytes_used INTEGER NOT NULL DEFAULT 0 CHECK (current_period_bytes_used >= 0),
  exhausted_at              INTEGER,
  created_at                INTEGER NOT NULL CHECK (created_at >= 0),
  updated_at                INTEGER NOT NULL,
  PRIMARY KEY (user_id, client_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX traffic_quotas_client ON traffic_quotas (client_id);

-- Traffic history: 1-minute samples (kept 7 days) rolled up into 1-hour samples (90 days).
CREATE TABLE traffic_samples_1m (
  user_id   TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  client_id TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  ts_minute INTEGER NOT NULL CHECK (ts_minute >= 0 AND ts_minute % 60000 = 0),
  bytes_in  INTEGER NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
  bytes_out INTEGER NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
  PRIMARY KEY (user_id, client_id, ts_minute)
) STRICT, WITHOUT ROWID;
CREATE INDEX traffic_samples_1m_ts ON traffic_samples_1m (ts_minute);
CREATE INDEX traffic_samples_1m_client ON traffic_samples_1m (client_id, ts_minute);

CREATE TABLE traffic_samples_1h (
  user_id   TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  client_id TEXT    NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
  ts_hour   INTEGER NOT NULL CHECK (ts_hour >= 0 AND ts_hour % 3600000 = 0),
  bytes_in  INTEGER NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
  bytes_out INTEGER NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
  PRIMARY KEY (user_id, client_id, ts_hour)
) STRICT, WITHOUT ROWID;
CREATE INDEX traffic_samples_1h_ts ON traffic_samples_1h (ts_hour);
CREATE INDEX traffic_samples_1h_client ON traffic_samples_1h (client_id, ts_hour);

-- Web UI sessions: BLAKE3 hex of the cookie secret.
CREATE TABLE web_sessions (
  session_hash        TEXT    PRIMARY KEY CHECK (length(session_hash) = 64),
  user_id             TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  created_at          INTEGER NOT NULL CHECK (created_at >= 0),
  last_seen_at        INTEGER NOT NULL CHECK (last_seen_at >= created_at),
  absolute_expires_at INTEGER NOT NULL CHECK (absolute_expires_at > created_at),
  revoked_at          INTEGER,
  remote_addr         TEXT,
  user_agent          TEXT    CHECK (user_agent IS NULL OR length(user_agent) <= 512)
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions (user_id);
CREATE INDEX web_sessions_expiry ON web_sessions (absolute_expires_at);

-- Throttle state per (subject, remote address, action).
CREATE TABLE login_attempts (
  subject         TEXT    NOT NULL,
  remote_addr     TEXT    NOT NULL,
  action          TEXT    NOT NULL CHECK (action IN ('login', 'onboarding', 'password_reset')),
  failures        INTEGER NOT NULL CHECK (failures >= 0),
  first_failed_at INTEGER NOT NULL,
  last_failed_at  INTEGER NOT NULL CHECK (last_failed_at >= first_failed_at),
  locked_until    INTEGER,
  PRIMARY KEY (subject, remote_addr, action)
) STRICT, WITHOUT ROWID;

-- The first-run setup token (singleton row).
CREATE TABLE onboarding_setup (
  id         INTEGER PRIMARY KEY CHECK (id = 1),
  token_hash TEXT    NOT NULL CHECK (length(token_hash) = 64),
  issued_at  INTEGER NOT NULL CHECK (issued_at >= 0),
  expires_at INTEGER NOT NULL CHECK (expires_at > issued_at)
) STRICT;

-- One-time client enrollment codes. client_id has no foreign key on purpose: a brand-new
-- client's row is created only when its code is redeemed (and re-created if it was deleted
-- in between), so the code must be able to name a client that does not exist yet.
CREATE TABLE client_enrollments (
  enrollment_id       INTEGER PRIMARY KEY AUTOINCREMENT,
  client_id           TEXT    NOT NULL CHECK (length(client_id) = 26),
  client_name         TEXT    NOT NULL CHECK (length(CAST(client_name AS BLOB)) BETWEEN 1 AND 255),
  client_address      TEXT,
  advertised_endpoint TEXT,
  code_hash           TEXT    NOT NULL UNIQUE CHECK (length(code_hash) = 64),
  issued_at           INTEGER NOT NULL CHECK (issued_at >= 0),
  expires_at          INTEGER NOT NULL CHECK (expires_at > issued_at),
  consumed_at         INTEGER
) STRICT;
CREATE INDEX client_enrollments_client ON client_enrollments (client_id) WHERE consumed_at IS NULL;
CREATE INDEX client_enrollments_expiry ON client_enrollments (expires_at);

-- Server-wide settings (singleton row, seeded).
CREATE TABLE server_settings (
  id                          INTEGER PRIMARY KEY CHECK (id = 1),
  advertised_endpoint         TEXT    CHECK (advertised_endpoint IS NULL OR length(advertised_endpoint) BETWEEN 3 AND 263),
  traffic_last_rolled_up_hour INTEGER NOT NULL DEFAULT 0 CHECK (traffic_last_rolled_up_hour >= 0),
  updated_at                  INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO server_settings (id) VALUES (1);
