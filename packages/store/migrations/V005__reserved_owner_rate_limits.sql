-- Reserved: V005 belongs to the owner rate-limit migration of the limits-server branch, which
-- lands in parallel. This empty file only keeps the numbering gap-free on the quota branch
-- (migrate.ts refuses gaps); when both branches merge, the limits-server file replaces it.
SELECT 1;
