/**
 * Pure checks the web UI runs before a request leaves, mirroring the server's own answers so a
 * form can name the offending field at once. The server stays the authority: these only save a
 * round trip. Browser-safe; no imports.
 */

/** A TCP/UDP port as the API accepts it: an integer 1..65535. */
export function isPort(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= 65535;
}

/** The shortest password the server's policy accepts (reference §6.4). */
export const MIN_PASSWORD_CHARS = 12;

/** The header every cookie-authenticated write must carry (reference §2.1). */
export const CSRF_HEADER = 'X-Portunus-CSRF';
