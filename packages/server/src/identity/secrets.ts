/**
 * Bearer secrets: generation (32 random bytes as 43-char URL-safe base64, reference §6.3), the
 * BLAKE3 hex under which every token, session secret, setup token and enrollment code is stored
 * (a secret itself never reaches the database or a log), and ULID ids. Depends on @noble/hashes.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';

import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** Longest bearer secret accepted (reference §2.1); anything longer is refused unhashed. */
export const MAX_SECRET_BYTES = 256;

export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function hashSecret(secret: string): string {
  return bytesToHex(blake3(Buffer.from(secret, 'utf8')));
}

export function secretsEqual(a: string, b: string): boolean {
  const left = Buffer.from(a, 'utf8');
  const right = Buffer.from(b, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** A ULID: 48-bit millisecond time + 80 random bits, Crockford base32, sortable by time. */
export function ulid(now: number = Date.now()): string {
  let time = '';
  let remaining = now;
  for (let i = 0; i < 10; i += 1) {
    time = CROCKFORD.charAt(remaining % 32) + time;
    remaining = Math.floor(remaining / 32);
  }
  const random = randomBytes(16);
  let tail = '';
  for (let i = 0; i < 16; i += 1) tail += CROCKFORD.charAt((random[i] ?? 0) % 32);
  return time + tail;
}
