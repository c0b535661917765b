-- Traffic accounting baselines: the last cumulative byte counters each rule's client reported.
-- A StatsReport carries counters since the client started the rule, so usage is the delta
-- against this row; keeping it in the store (written in the same transaction as the samples it
-- produced) means a server restart neither double-counts nor loses a round, and a failed write
-- leaves the baseline where it was, so the next round carries the bytes instead. Rows go with
-- their rule.
CREATE TABLE traffic_rule_counters (
  rule_id    INTEGER PRIMARY KEY REFERENCES rules (rule_id) ON DELETE CASCADE,
  bytes_in   INTEGER NOT NULL CHECK (bytes_in >= 0),
  bytes_out  INTEGER NOT NULL CHECK (bytes_out >= 0),
  updated_at INTEGER NOT NULL CHECK (updated_at >= 0)
) STRICT;
