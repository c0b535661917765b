/**
 * The enrollment URI `portunus://host:port/enroll?pin=sha256:<64 hex>&code=<code>` (reference
 * §4.5): built by the server when it issues a code, parsed by `portunus-client enroll`. The
 * parser is strict on what matters (scheme, path, pin shape, a code) and ignores unknown
 * parameters so later servers may add some. Depends on core for the error.
 */
import { PortunusError } from '@portunus/core';

export interface EnrollUri {
  /** `host:port` of the control listener. */
  endpoint: string;
  host: string;
  port: number;
  /** 64 lowercase hex: SHA-256 of the server certificate's DER. */
  pinSha256: string;
  code: string;
}

const PIN = /^sha256:([0-9a-fA-F]{64})$/;
const MAX_CODE_BYTES = 256;

export function formatEnrollUri(endpoint: string, pinSha256: string, code: string): string {
  return `portunus://${endpoint}/enroll?pin=sha256:${pinSha256}&code=${encodeURIComponent(code)}`;
}

/** The shell line an operator pastes on the edge host. */
export function enrollCommand(uri: string): string {
  return `portunus-client enroll '${uri}'`;
}

function invalid(why: string): PortunusError {
  return new PortunusError('enroll_uri_invalid', `enrollment URI: ${why}`);
}

export function parseEnrollUri(text: string): EnrollUri {
  const trimmed = text.trim();
  if (!trimmed.startsWith('portunus://')) throw invalid('the scheme must be portunus://');
  let url: URL;
  try {
    // URL only knows hosts and ports for special schemes; parse the same text as http.
    url = new URL(`http://${trimmed.slice('portunus://'.length)}`);
  } catch {
    throw invalid('it is not a URI');
  }
  if (url.pathname !== '/enroll') throw invalid('the path must be /enroll');
  if (url.username || url.password) throw invalid('user info is not allowed');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port);
  if (!host || !url.port || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw invalid('it must name host:port');
  }
  const pin = PIN.exec(url.searchParams.get('pin') ?? '');
  if (!pin?.[1]) throw invalid('pin must be sha256:<64 hex>');
  const code = url.searchParams.get('code') ?? '';
  if (code === '') throw invalid('code is missing');
  if (Buffer.byteLength(code) > MAX_CODE_BYTES) throw invalid('code is too long');
  return { endpoint: url.host, host, port, pinSha256: pin[1].toLowerCase(), code };
}
