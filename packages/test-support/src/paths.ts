/**
 * Where the built binaries and fixture processes are, computed from this package's own location
 * (paths, not imports: test-support depends on core only, so any package's tests may use it).
 */
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SERVER_BIN = fileURLToPath(
  new URL('../../server/dist/bin/portunus-server.js', import.meta.url),
);
export const AUDIT_WRITER_PROCESS = fileURLToPath(
  new URL('../../store/dist/fixtures/audit-writer-process.js', import.meta.url),
);
export const CLIENT_BIN = fileURLToPath(
  new URL('../../client/dist/bin/portunus-client.js', import.meta.url),
);
export const STANDALONE_BIN = fileURLToPath(
  new URL('../../standalone/dist/bin/portunus-standalone.js', import.meta.url),
);
