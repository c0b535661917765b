/**
 * The routes of one shared SNI port (reference §5.7): exact patterns, single-label wildcards and
 * at most one fallback, each pointing at a member rule's route. Lookup is exact name → the
 * wildcard over the name's parent (one label more, never the apex or two labels; with several
 * wildcards the longest parent is the only one that can match) → fallback → none. The pattern
 * grammar and the match are @portunus/api's (one definition with the server); this module only
 * indexes them. Pure: no sockets, no logging.
 */
import { normaliseServerName, wildcardParent } from '@portunus/api';

export type SniRouteKind = 'exact' | 'wildcard' | 'fallback';

export interface SniLookup<R> {
  route: R;
  kind: SniRouteKind;
}

export class SniRouteTable<R> {
  private readonly exact = new Map<string, R>();
  /** Keyed by the parent the wildcard covers (`*.a.example` under `a.example`). */
  private readonly wildcards = new Map<string, R>();
  private fallbackRoute: R | undefined;

  /** Sets the route of a normalised pattern, or of the fallback for null. */
  set(pattern: string | null, route: R): void {
    if (pattern === null) {
      this.fallbackRoute = route;
      return;
    }
    const parent = wildcardParent(pattern);
    if (parent === undefined) this.exact.set(pattern, route);
    else this.wildcards.set(parent, route);
  }

  delete(pattern: string | null): void {
    if (pattern === null) {
      this.fallbackRoute = undefined;
      return;
    }
    const parent = wildcardParent(pattern);
    if (parent === undefined) this.exact.delete(pattern);
    else this.wildcards.delete(parent);
  }

  get size(): number {
    return this.exact.size + this.wildcards.size + (this.fallbackRoute === undefined ? 0 : 1);
  }

  /** The fallback, for a connection that sent no server name. */
  fallback(): SniLookup<R> | undefined {
    return this.fallbackRoute === undefined
      ? undefined
      : { route: this.fallbackRoute, kind: 'fallback' };
  }

  /** The route for a server name from a ClientHello, or undefined: drop the connection. */
  lookup(serverName: string): SniLookup<R> | undefined {
    const name = normaliseServerName(serverName);
    const exact = this.exact.get(name);
    if (exact !== undefined) return { route: exact, kind: 'exact' };
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = this.wildcards.get(name.slice(dot + 1));
      if (wildcard !== undefined) return { route: wildcard, kind: 'wildcard' };
    }
    return this.fallback();
  }
}
