/**
 * Local passwords (reference §6.4): the policy (at least 12 characters, at most 1024 bytes) and
 * Argon2id hashing with explicit parameters kept in the PHC string. Verifying against an unknown
 * user runs a dummy verification so both cases take the same time. Depends on @node-rs/argon2.
 */
import { hash, verify } from '@node-rs/argon2';

import { PortunusError } from '@portunus/core';

export const MIN_PASSWORD_CHARS = 12;
export const MAX_PASSWORD_BYTES = 1024;

// 2 = Algorithm.Argon2id (a const enum, which verbatimModuleSyntax cannot import).
const PARAMS = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** Throws password_too_short / password_too_long unless the password meets the policy. */
export function checkPasswordPolicy(password: string): void {
  if (Array.from(password).length < MIN_PASSWORD_CHARS) {
    throw new PortunusError(
      'password_too_short',
      `passwords need at least ${MIN_PASSWORD_CHARS} characters`,
    );
  }
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new PortunusError(
      'password_too_long',
      `passwords may be at most ${MAX_PASSWORD_BYTES} bytes`,
    );
  }
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

let dummyHash: Promise<string> | undefined;

/**
 * True when `password` matches `phc`. With no hash (unknown user, no password set) it verifies
 * against a dummy hash and returns false, so the answer takes as long either way.
 */
export async function verifyPassword(
  phc: string | null | undefined,
  password: string,
): Promise<boolean> {
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return false;
  if (!phc) {
    dummyHash ??= hashPassword('portunus-dummy-password-for-timing');
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verify(phc, password);
  } catch {
    return false;
  }
}
