/**
 * The public face of @portunus/proto: the control protocol shared by the server and the edge
 * client (DESIGN.md §2, §5). It imports only @portunus/core plus grpc-js: no SQLite, no HTTP
 * framework, no data plane.
 */
export {
  CONTROL_SERVICE,
  ControlClient,
  ENROLLMENT_SERVICE,
  EnrollmentClient,
  PROTO_FILE,
  grpc,
} from './load.js';
export type * from './messages.js';
export { FEATURE_MIN_VERSION, PROTOCOL_VERSION, versionAtLeast } from './versions.js';
export { enrollCommand, formatEnrollUri, parseEnrollUri, type EnrollUri } from './enroll-uri.js';
export { bearerMetadata, parseBearer, type BearerProblem } from './bearer.js';
