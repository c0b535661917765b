-- Quota policies beyond the reference (DESIGN.md §8.9): how a quota is enforced (`hard` stops the
-- owner's traffic on the edge, `soft` only marks it exhausted and alerts), whether its allowance
-- renews (`monthly`) or is spent once (`never`), the day of the month a monthly period renews on
-- (1..28, an alternative to the anchor timestamp; NULL = renew on the anchor's day), and the alert
-- thresholds already fired in the current period (a JSON array of fractions, cleared at rollover),
-- so `quota.threshold` fires once per period each, across server restarts. Times stay unix ms.
ALTER TABLE traffic_quotas ADD COLUMN enforcement TEXT NOT NULL DEFAULT 'hard'
  CHECK (enforcement IN ('hard', 'soft'));
ALTER TABLE traffic_quotas ADD COLUMN period TEXT NOT NULL DEFAULT 'monthly'
  CHECK (period IN ('monthly', 'never'));
ALTER TABLE traffic_quotas ADD COLUMN reset_day INTEGER
  CHECK (reset_day IS NULL OR (reset_day BETWEEN 1 AND 28 AND period = 'monthly'));
ALTER TABLE traffic_quotas ADD COLUMN alerts_fired TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(alerts_fired) AND json_type(alerts_fired) = 'array');
