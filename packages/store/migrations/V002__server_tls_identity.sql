-- The server's self-generated TLS identity (one row), kept in the store so that a backup carries
-- it and a restore onto a fresh data dir can reinstall it: enrolled clients pin its SHA-256
-- fingerprint and would otherwise all be refused after a restore. An operator-supplied pair is
-- never recorded here (it stays the operator's files).
CREATE TABLE server_tls_identity (
  id                 INTEGER PRIMARY KEY CHECK (id = 1),
  cert_pem           TEXT    NOT NULL CHECK (cert_pem LIKE '-----BEGIN CERTIFICATE-----%'),
  key_pem            TEXT    NOT NULL CHECK (key_pem LIKE '-----BEGIN %PRIVATE KEY-----%'),
  fingerprint_sha256 TEXT    NOT NULL CHECK (length(fingerprint_sha256) = 64),
  recorded_at        INTEGER NOT NULL CHECK (recorded_at >= 0)
) STRICT;
