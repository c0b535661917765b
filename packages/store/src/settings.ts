/**
 * Server-wide settings kept in the singleton `server_settings` row: for now the operator's
 * override of the advertised control endpoint. Depends on core only.
 */
import type { Database } from 'better-sqlite3';

import { prepared } from './statements.js';

export function getAdvertisedEndpointOverride(db: Database): string | null {
  return prepared(db, 'SELECT advertised_endpoint FROM server_settings WHERE id = 1')
    .pluck()
    .get() as string | null;
}

export function setAdvertisedEndpointOverride(
  db: Database,
  endpoint: string | null,
  now: number,
): void {
  prepared(
    db,
    'UPDATE server_settings SET advertised_endpoint = ?, updated_at = ? WHERE id = 1',
  ).run(endpoint, now);
}
