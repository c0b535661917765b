-- Numbered revisions of the rule set: every accepted change to the rules (push, edit, remove,
-- restore, and the cascades of a user removal, a grant revocation or a client deletion) is one
-- revision with who and when. A revision stores, per rule it changed, the full definition before
-- and after (NULL before = the rule was added, NULL after = it was removed), written in the same
-- transaction as the change itself. The rule set of revision n is the current set with every
-- later revision undone, so pruning old revisions (with the audit log) never breaks newer ones.
-- actor has no foreign key on purpose: the record outlives the user.
CREATE TABLE rule_revisions (
  revision INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL CHECK (at >= 0),
  actor    TEXT    NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
  action   TEXT    NOT NULL CHECK (action IN ('push', 'edit', 'remove', 'restore', 'user_removed',
                                              'grant_revoked', 'client_deleted')),
  summary  TEXT    NOT NULL
) STRICT;
-- pruning by age
CREATE INDEX rule_revisions_at ON rule_revisions (at);

CREATE TABLE rule_revision_changes (
  revision    INTEGER NOT NULL REFERENCES rule_revisions (revision) ON DELETE CASCADE,
  rule_id     INTEGER NOT NULL,
  before_json TEXT    CHECK (before_json IS NULL OR json_valid(before_json)),
  after_json  TEXT    CHECK (after_json IS NULL OR json_valid(after_json)),
  CHECK (before_json IS NOT NULL OR after_json IS NOT NULL),
  PRIMARY KEY (revision, rule_id)
) STRICT, WITHOUT ROWID;
-- undoing from the newest revision back, and discarding a push that was never sent
CREATE INDEX rule_revision_changes_rule ON rule_revision_changes (rule_id, revision);
