/**
 * The one RFC-1123 host-name grammar (reference §5.4, §6.6, §9.4): at most 253 characters,
 * dot-separated labels of 1..63 letters, digits or hyphens with no hyphen at either end, and not
 * all digits and dots (that is a mistyped IPv4 address, not a name). A target host may end in
 * one dot (a fully qualified name); a client address or an advertised endpoint may not. The
 * store (client addresses), the server (advertised endpoints) and the forwarder's rule checks
 * (targets) judge names with this, so they cannot disagree. SNI patterns and certificate SANs
 * have grammars of their own (api/sni.ts, server tls/san.ts). Pure string logic, no imports.
 */

export const MAX_HOST_NAME_LENGTH = 253;
export const MAX_HOST_LABEL_LENGTH = 63;

export type HostNameProblem =
  | { kind: 'too_long' }
  | { kind: 'not_a_name' }
  | { kind: 'label_too_long'; label: string }
  | { kind: 'label_hyphen'; label: string };

/** Why `name` is not a host name, or undefined when it is one. */
export function hostNameProblem(
  name: string,
  { trailingDot = false }: { trailingDot?: boolean } = {},
): HostNameProblem | undefined {
  const bare = trailingDot && name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length > MAX_HOST_NAME_LENGTH) return { kind: 'too_long' };
  if (/^[\d.]*$/.test(bare)) return { kind: 'not_a_name' };
  for (const label of bare.split('.')) {
    if (label === '' || !/^[A-Za-z0-9-]+$/.test(label)) return { kind: 'not_a_name' };
    if (label.length > MAX_HOST_LABEL_LENGTH) return { kind: 'label_too_long', label };
    if (label.startsWith('-') || label.endsWith('-')) return { kind: 'label_hyphen', label };
  }
  return undefined;
}

/** True when `name` is a host name without a trailing dot. */
export function isHostName(name: string): boolean {
  return hostNameProblem(name) === undefined;
}
