/**
 * Target name resolution for the data plane (reference inventory §5.4): `/etc/hosts` first, then
 * the system's DNS servers (or servers given, for tests) through node's `dns.promises.Resolver`,
 * with a cache that lives as long as the process, so control-stream reconnects and rule
 * replaces keep it. TTLs are clamped to [5 s, 300 s]; at most 8,192 names are held (expired
 * first, then nearest expiry, are evicted); a failed refresh keeps serving the last answer for a
 * 30 s grace and asks again at most every 3 s, after which the failure itself is cached for 3 s;
 * each attempt has 3 s; one query per name is in flight at a time, and at most 64 altogether
 * (beyond that a lookup fails at once instead of queueing behind a slow server). IPv4 first
 * unless the rule prefers IPv6; the other family is asked only when the first has no address.
 * A failure is a `dns_failed` PortunusError for one connection or flow, never a rule failure.
 * Depends on node:dns, node:fs, node:net and @portunus/core; the clock and the backend are
 * injected so tests control time and point it at their own DNS server.
 */
import dns from 'node:dns';
import fs from 'node:fs';
import net from 'node:net';

import { PortunusError } from '@portunus/core';

export interface DnsRecord {
  address: string;
  /** Seconds. */
  ttl: number;
}

export type DnsFailureReason =
  'nxdomain' | 'timeout' | 'servfail' | 'saturated' | 'negative_cached';

/** One family's records for a name: [] when the name exists without such records. */
export interface DnsBackend {
  query(host: string, family: 4 | 6): Promise<DnsRecord[]>;
}

export interface Clock {
  now(): number;
}

export interface ResolverOptions {
  backend?: DnsBackend;
  clock?: Clock;
  maxEntries?: number;
  minTtlMs?: number;
  maxTtlMs?: number;
  graceMs?: number;
  negativeRetryMs?: number;
  attemptTimeoutMs?: number;
  maxConcurrent?: number;
}

export const DNS_MIN_TTL_MS = 5_000;
export const DNS_MAX_TTL_MS = 300_000;
export const DNS_MAX_ENTRIES = 8_192;
export const DNS_GRACE_MS = 30_000;
export const DNS_NEGATIVE_RETRY_MS = 3_000;
export const DNS_ATTEMPT_TIMEOUT_MS = 3_000;
export const DNS_MAX_CONCURRENT = 64;

export function dnsFailure(host: string, reason: DnsFailureReason, cause?: unknown): PortunusError {
  return new PortunusError(
    'dns_failed',
    `cannot resolve ${host}: ${reason}`,
    { host, reason },
    cause === undefined ? undefined : { cause },
  );
}

function reasonOf(error: unknown): DnsFailureReason {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === dns.NOTFOUND) return 'nxdomain';
  if (code === dns.TIMEOUT || code === 'ETIMEDOUT') return 'timeout';
  return 'servfail';
}

/** Hosts-file entries: name → addresses of each family. Re-read when the file changes. */
class HostsFile {
  private mtimeMs = -1;
  private entries = new Map<string, { 4: string[]; 6: string[] }>();

  constructor(private readonly path: string) {}

  lookup(host: string, family: 4 | 6): string[] | undefined {
    this.refresh();
    // A name the file knows is answered from it alone, even for a family it lists nothing of.
    return this.entries.get(host.toLowerCase())?.[family];
  }

  private refresh(): void {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.path);
    } catch {
      this.entries.clear();
      return;
    }
    if (stat.mtimeMs === this.mtimeMs) return;
    this.mtimeMs = stat.mtimeMs;
    this.entries = new Map();
    for (const line of fs.readFileSync(this.path, 'utf8').split('\n')) {
      const [address, ...names] = (line.split('#')[0] ?? '').trim().split(/\s+/);
      if (!address || names.length === 0) continue;
      const family = net.isIPv4(address) ? 4 : net.isIPv6(address) ? 6 : 0;
      if (family === 0) continue;
      for (const name of names) {
        const key = name.toLowerCase();
        const entry = this.entries.get(key) ?? { 4: [], 6: [] };
        entry[family].push(address);
        this.entries.set(key, entry);
      }
    }
  }
}

export interface SystemBackendOptions {
  /** DNS servers (`ip` or `ip:port`); the system's resolv.conf servers when omitted. */
  servers?: string[];
  hostsPath?: string;
  attemptTimeoutMs?: number;
}

/**
 * The real backend: the hosts file, then DNS. Hosts entries answer with the minimum TTL, so an
 * edit shows within seconds; c-ares gets one try per attempt (retries are the cache's job).
 */
export function systemDnsBackend(options: SystemBackendOptions = {}): DnsBackend {
  const hosts = new HostsFile(options.hostsPath ?? '/etc/hosts');
  const resolver = new dns.promises.Resolver({
    timeout: options.attemptTimeoutMs ?? DNS_ATTEMPT_TIMEOUT_MS,
    tries: 1,
  });
  if (options.servers) resolver.setServers(options.servers);
  return {
    async query(host, family) {
      const fromHosts = hosts.lookup(host, family);
      if (fromHosts) return fromHosts.map((address) => ({ address, ttl: 0 }));

      try {
        return family === 4
          ? await resolver.resolve4(host, { ttl: true })
          : await resolver.resolve6(host, { ttl: true });
      } catch (error) {
        // NODATA: the name exists but has no address of this family.
        if ((error as { code?: unknown }).code === dns.NODATA) return [];
        throw error;
      }
    },
  };
}

interface Entry {
  /** The last good answer, in family-preference order. */
  addresses: string[] | undefined;
  expiresAt: number;
  /** Set at the first failed refresh after a good answer: stale answers are served until then. */
  graceUntil: number | undefined;
  /** No new query before this (after a failure). */
  retryAt: number;
  lastFailure: PortunusError | undefined;
  inflight: Promise<string[]> | undefined;
}

const systemClock: Clock = { now: () => Date.now() };

export class DnsResolver {
  private readonly backend: DnsBackend;
  private readonly clock: Clock;
  private readonly maxEntries: number;
  private readonly minTtlMs: number;
  private readonly maxTtlMs: number;
  private readonly graceMs: number;
  private readonly negativeRetryMs: number;
  private readonly attemptTimeoutMs: number;
  private readonly maxConcurrent: number;
  private readonly entries = new Map<string, Entry>();
  private inflightCount = 0;
  /** Backend queries made, for tests and benchmarks. */
  queries = 0;

  constructor(options: ResolverOptions = {}) {
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? DNS_ATTEMPT_TIMEOUT_MS;
    this.backend = options.backend ?? systemDnsBackend({ attemptTimeoutMs: this.attemptTimeoutMs });
    this.clock = options.clock ?? systemClock;
    this.maxEntries = options.maxEntries ?? DNS_MAX_ENTRIES;
    this.minTtlMs = options.minTtlMs ?? DNS_MIN_TTL_MS;
    this.maxTtlMs = options.maxTtlMs ?? DNS_MAX_TTL_MS;
    this.graceMs = options.graceMs ?? DNS_GRACE_MS;
    this.negativeRetryMs = options.negativeRetryMs ?? DNS_NEGATIVE_RETRY_MS;
    this.maxConcurrent = options.maxConcurrent ?? DNS_MAX_CONCURRENT;
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * The addresses of `host` in the order to try them. An IP literal is returned as is, without
   * touching the cache. Rejects with a `dns_failed` PortunusError.
   */
  resolve(host: string, preferIpv6 = false): Promise<string[]> {
    if (net.isIP(host) !== 0) return Promise.resolve([host]);
    const name = host.toLowerCase().replace(/\.$/, '');
    const key = `${preferIpv6 ? 6 : 4}|${name}`;
    const now = this.clock.now();
    const entry = this.entries.get(key);
    if (entry) {
      if (entry.addresses && now < entry.expiresAt) return Promise.resolve(entry.addresses);
      if (entry.inflight) return entry.inflight;
      if (now < entry.retryAt) return this.staleOrFail(entry, name, now, 'negative_cached');
    }
    if (this.inflightCount >= this.maxConcurrent) {
      return entry
        ? this.staleOrFail(entry, name, now, 'saturated')
        : Promise.reject(dnsFailure(name, 'saturated'));
    }
    const target = entry ?? this.insert(key, now);
    const flight = this.query(name, preferIpv6).then(
      ({ addresses, ttlSecs }) => {
        const at = this.clock.now();
        const ttlMs = Math.min(this.maxTtlMs, Math.max(this.minTtlMs, ttlSecs * 1000));
        target.addresses = addresses;
        target.expiresAt = at + ttlMs;
        target.graceUntil = undefined;
        target.retryAt = 0;
        target.lastFailure = undefined;
        return addresses;
      },
      (error: unknown) => {
        const at = this.clock.now();
        const failure = dnsFailure(name, reasonOf(error), error);
        target.lastFailure = failure;
        target.retryAt = at + this.negativeRetryMs;
        if (target.addresses && target.graceUntil === undefined) {
          target.graceUntil = at + this.graceMs;
        }
        return this.staleOrFail(target, name, at, undefined);
      },
    );
    target.inflight = flight.finally(() => {
      target.inflight = undefined;
    });
    return target.inflight;
  }

  private staleOrFail(
    entry: Entry,
    name: string,
    now: number,
    reason: DnsFailureReason | undefined,
  ): Promise<string[]> {
    if (entry.addresses && entry.graceUntil !== undefined && now < entry.graceUntil) {
      return Promise.resolve(entry.addresses);
    }
    if (entry.addresses && entry.graceUntil === undefined && reason === 'saturated') {
      // Expired but never failed: an answer a moment old beats failing the connection.
      return Promise.resolve(entry.addresses);
    }
    return Promise.reject(
      reason === undefined
        ? (entry.lastFailure ?? dnsFailure(name, 'servfail'))
        : dnsFailure(name, reason, entry.lastFailure),
    );
  }

  private insert(key: string, now: number): Entry {
    if (this.entries.size >= this.maxEntries) this.evict(now);
    const entry: Entry = {
      addresses: undefined,
      expiresAt: 0,
      graceUntil: undefined,
      retryAt: 0,
      lastFailure: undefined,
      inflight: undefined,
    };
    this.entries.set(key, entry);
    return entry;
  }

  /** Drops every expired entry not in use; if none, the one that expires soonest. */
  private evict(now: number): void {
    let soonest: [string, number] | undefined;
    let dropped = 0;
    for (const [key, entry] of this.entries) {
      if (entry.inflight) continue;
      const until = Math.max(entry.expiresAt, entry.graceUntil ?? 0, entry.retryAt);
      if (until <= now) {
        this.entries.delete(key);
        dropped++;
      } else if (!soonest || until < soonest[1]) soonest = [key, until];
    }
    if (dropped === 0 && soonest) this.entries.delete(soonest[0]);
  }

  private async query(
    name: string,
    preferIpv6: boolean,
  ): Promise<{ addresses: string[]; ttlSecs: number }> {
    this.inflightCount++;
    try {
      const [first, second]: [4 | 6, 4 | 6] = preferIpv6 ? [6, 4] : [4, 6];
      let records = await this.attempt(name, first);
      if (records.length === 0) records = await this.attempt(name, second);
      if (records.length === 0)
        throw Object.assign(new Error('no address'), { code: dns.NOTFOUND });
      return {
        addresses: records.map((r) => r.address),
        ttlSecs: Math.min(...records.map((r) => r.ttl)),
      };
    } finally {
      this.inflightCount--;
    }
  }

  private attempt(name: string, family: 4 | 6): Promise<DnsRecord[]> {
    this.queries++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(Object.assign(new Error('dns attempt timed out'), { code: dns.TIMEOUT }));
      }, this.attemptTimeoutMs);
      timer.unref();
      this.backend.query(name, family).then(
        (records) => {
          clearTimeout(timer);
          resolve(records);
        },
        (error: unknown) => {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }
}
