/**
 * The TLS ClientHello reader of SNI routing (reference §5.7): given the bytes a connection has
 * sent so far, it answers the server name, "no SNI", "need more bytes" or "invalid" — and never
 * throws, whatever the input, because it runs on bytes from anyone on the network. It reads
 * handshake records (type 0x16) and reassembles the first handshake message across them, which
 * must be a ClientHello (type 1) whose body is at most 16 KiB, then looks for extension 0
 * (server_name) with a host_name entry (RFC 6066 §3). It never decrypts, answers or consumes
 * anything: the caller keeps the bytes and replays them upstream. Pure: no sockets, no clock,
 * no imports.
 */

/** The largest ClientHello body accepted (reference §5.7). */
export const MAX_CLIENT_HELLO_BYTES = 16 * 1024;
/** TLS plaintext records carry at most 2^14 bytes (RFC 8446 §5.1). */
const MAX_RECORD_BYTES = 16 * 1024;
const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXTENSION_SERVER_NAME = 0;
const NAME_TYPE_HOST = 0;

export type ClientHelloInvalid =
  | 'not_handshake'
  | 'bad_version'
  | 'bad_record_length'
  | 'not_client_hello'
  | 'too_large'
  | 'malformed'
  | 'bad_server_name';

export type ClientHelloResult =
  /** `length`: the bytes, from the start, up to the last record that completed the hello. */
  | { kind: 'sni'; name: string; length: number }
  | { kind: 'no_sni'; length: number }
  | { kind: 'need_more' }
  | { kind: 'invalid'; reason: ClientHelloInvalid };

const needMore: ClientHelloResult = { kind: 'need_more' };
const invalid = (reason: ClientHelloInvalid): ClientHelloResult => ({ kind: 'invalid', reason });

/**
 * Reads the ClientHello at the start of `data` (the connection's first bytes). `need_more`
 * means no verdict yet: call again with more bytes.
 */
export function parseClientHello(data: Uint8Array): ClientHelloResult {
  // The handshake message, reassembled from the fragments of consecutive records.
  const fragments: Uint8Array[] = [];
  let have = 0;
  let want = -1; // handshake message length incl. its header, once known
  let offset = 0;
  for (;;) {
    if (data.length - offset < RECORD_HEADER) {
      // Judge what is here already: a wrong first byte need not wait for more.
      if (data.length > offset && data[offset] !== CONTENT_HANDSHAKE) {
        return invalid('not_handshake');
      }
      if (data.length > offset + 1 && data[offset + 1] !== 3) return invalid('bad_version');
      return needMore;
    }
    if (data[offset] !== CONTENT_HANDSHAKE) return invalid('not_handshake');
    if (data[offset + 1] !== 3) return invalid('bad_version');
    const recordLength = (data[offset + 3]! << 8) | data[offset + 4]!;
    if (recordLength === 0 || recordLength > MAX_RECORD_BYTES) return invalid('bad_record_length');
    const start = offset + RECORD_HEADER;
    const available = Math.min(recordLength, data.length - start);
    const fragment = data.subarray(start, start + available);
    fragments.push(fragment);
    have += fragment.length;
    if (want < 0 && have >= HANDSHAKE_HEADER) {
      const head = joined(fragments, HANDSHAKE_HEADER);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('not_client_hello');
      const bodyLength = (head[1]! << 16) | (head[2]! << 8) | head[3]!;
      if (bodyLength > MAX_CLIENT_HELLO_BYTES) return invalid('too_large');
      want = HANDSHAKE_HEADER + bodyLength;
    }
    if (want >= 0 && have >= want) {
      const message = joined(fragments, want);
      const length = start + recordLength;
      // The record that completes the hello may still be arriving; its bytes are replayed anyway.
      return readHello(message.subarray(HANDSHAKE_HEADER), Math.min(length, data.length));
    }
    if (available < recordLength) return needMore;
    offset = start + recordLength;
  }
}

/** The first `length` bytes of the fragments as one array (copied only when they span two). */
function joined(fragments: Uint8Array[], length: number): Uint8Array {
  const [first] = fragments;
  if (first && first.length >= length) return first.subarray(0, length);
  const out = new Uint8Array(length);
  let at = 0;
  for (const fragment of fragments) {
    const take = Math.min(fragment.length, length - at);
    out.set(fragment.subarray(0, take), at);
    at += take;
    if (at === length) break;
  }
  return out;
}

/** Reads a ClientHello body (RFC 8446 §4.1.2, also TLS 1.0-1.2) for its host_name. */
function readHello(body: Uint8Array, length: number): ClientHelloResult {
  let at = 2 + 32; // legacy_version, random
  if (body.length < at + 1) return invalid('malformed');
  at += 1 + body[at]!; // session id
  if (body.length < at + 2) return invalid('malformed');
  const suites = (body[at]! << 8) | body[at + 1]!;
  if (suites < 2 || suites % 2 !== 0) return invalid('malformed');
  at += 2 + suites;
  if (body.length < at + 1) return invalid('malformed');
  const compressions = body[at]!;
  if (compressions < 1) return invalid('malformed');
  at += 1 + compressions;
  if (at > body.length) return invalid('malformed');
  // A hello without extensions (TLS 1.0 style) has no SNI.
  if (at === body.length) return { kind: 'no_sni', length };
  if (body.length < at + 2) return invalid('malformed');
  const extensionsEnd = at + 2 + ((body[at]! << 8) | body[at + 1]!);
  if (extensionsEnd !== body.length) return invalid('malformed');
  at += 2;
  while (at < extensionsEnd) {
    if (extensionsEnd - at < 4) return invalid('malformed');
    const type = (body[at]! << 8) | body[at + 1]!;
    const size = (body[at + 2]! << 8) | body[at + 3]!;
    at += 4;
    if (at + size > extensionsEnd) return invalid('malformed');
    if (type === EXTENSION_SERVER_NAME) return readServerName(body.subarray(at, at + size), length);
    at += size;
  }
  return { kind: 'no_sni', length };
}

/** server_name extension data: a list of (name_type, name); the host_name entry is the one. */
function readServerName(data: Uint8Array, length: number): ClientHelloResult {
  if (data.length < 2) return invalid('bad_server_name');
  const listEnd = 2 + ((data[0]! << 8) | data[1]!);
  if (listEnd !== data.length) return invalid('bad_server_name');
  let at = 2;
  while (at < listEnd) {
    if (listEnd - at < 3) return invalid('bad_server_name');
    const nameType = data[at]!;
    const size = (data[at + 1]! << 8) | data[at + 2]!;
    at += 3;
    if (at + size > listEnd) return invalid('bad_server_name');
    if (nameType === NAME_TYPE_HOST) {
      if (size === 0) return invalid('bad_server_name');
      let name = '';
      for (let i = at; i < at + size; i++) {
        const byte = data[i]!;
        // host_name is ASCII without controls or blanks (RFC 6066 §3).
        if (byte <= 0x20 || byte >= 0x7f) return invalid('bad_server_name');
        name += String.fromCharCode(byte);
      }
      return { kind: 'sni', name, length };
    }
    at += size;
  }
  return { kind: 'no_sni', length };
}
