-- Source allow/deny lists on rules (beyond the reference; README "Source lists"): each a JSON
-- array of CIDR strings in the normal spelling @portunus/api's normaliseCidr gives, at most 64
-- entries, checked by the server before they are stored. An empty allow list admits every
-- source; an empty deny list refuses none, so '[]' is the default that leaves existing rules as
-- they were. Rule revisions need no column: they snapshot a rule's whole definition as JSON, and
-- a snapshot written before this migration reads back with both lists empty.
ALTER TABLE rules ADD COLUMN allowed_sources TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(allowed_sources) AND json_type(allowed_sources) = 'array'
         AND json_array_length(allowed_sources) <= 64);
ALTER TABLE rules ADD COLUMN denied_sources TEXT NOT NULL DEFAULT '[]'
  CHECK (json_valid(denied_sources) AND json_type(denied_sources) = 'array'
         AND json_array_length(denied_sources) <= 64);
