/** Where the built binaries and fixtures are, computed from this package's own location. */
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SERVER_BIN = fileURLToPath(
  new URL('../../server/dist/bin/portunus-server.js', import.meta.url),
);
export const AUDIT_WRITER_PROCESS = fileURLToPath(
  new URL('./audit-writer-process.js', import.meta.url),
);
