/**
 * The control stream's bearer: `authorization: Bearer <token>` metadata sent by the client and
 * parsed by the server before the stream opens (reference §4.1). Parsing answers the reference
 * failure reasons rather than throwing, because each reason is counted separately. Depends on
 * grpc-js only.
 */
import { grpc } from './load.js';

export type BearerProblem = 'missing_token' | 'malformed_token';

const MAX_HEADER_BYTES = 256;

export function bearerMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** The token, or why there is none: no header → missing_token; anything but `Bearer <ascii>`. */
export function parseBearer(
  metadata: grpc.Metadata,
): { token: string } | { problem: BearerProblem } {
  const values = metadata.get('authorization');
  const [value] = values;
  if (value === undefined) return { problem: 'missing_token' };
  if (typeof value !== 'string' || values.length > 1) return { problem: 'malformed_token' };
  if (Buffer.byteLength(value) > MAX_HEADER_BYTES || !/^[\x21-\x7e ]*$/.test(value)) {
    return { problem: 'malformed_token' };
  }
  if (!value.startsWith('Bearer ')) return { problem: 'malformed_token' };
  const token = value.slice('Bearer '.length).trim();
  if (token === '' || token.includes(' ')) return { problem: 'malformed_token' };
  return { token };
}
