/**
 * The power-loss benchmark's write load and its ledger: a few concurrent writers send seeded
 * random mutations (create user, create grant, delete grant, create credential) to a running
 * server, and the ledger records only what was answered 2xx before the cut began. Verifying a
 * restarted server counts every acknowledged write that is missing (or, for a delete, came back).
 * Talks HTTP to loopback only; must not depend on the store or server packages, since what it
 * proves is what a client of the API can see.
 */

/** A small deterministic PRNG (mulberry32), so a seed replays the same cut points and writes. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = Record<string, unknown>;

export interface Api {
  origin: string;
  token: string;
}

async function call(api: Api, method: string, urlPath: string, body?: Json): Promise<Response> {
  return fetch(`${api.origin}${urlPath}`, {
    method,
    headers: {
      authorization: `Bearer ${api.token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000),
  });
}

/** Everything acknowledged so far, across every cut of one run. */
export class Ledger {
  readonly users = new Set<string>();
  /** Grants acknowledged and with no delete ever sent (a sent delete may or may not land). */
  readonly grants = new Set<string>();
  readonly deletedGrants = new Set<string>();
  readonly credentials = new Set<string>();
  /** Acknowledged mutations, each of which wrote one audit row before its 2xx. */
  mutations = 0;
  private nextUser = 0;
  /** Set synchronously when the cut starts: later answers are not counted as acknowledged. */
  cutting = false;

  /** Marks the start of the cut; false when another writer already started it. */
  startCut(): boolean {
    if (this.cutting) return false;
    this.cutting = true;
    return true;
  }

  get checked(): number {
    return this.users.size + this.grants.size + this.deletedGrants.size + this.credentials.size;
  }

  /** One random mutation; resolves when answered (or the server is gone). */
  async mutate(api: Api, random: () => number): Promise<void> {
    const roll = random();
    try {
      if (roll < 0.3 || this.users.size === 0) {
        const userId = `u${this.nextUser++}`;
        const answer = await call(api, 'POST', '/v1/users', {
          user_id: userId,
          display_name: `User ${userId}`,
          initial_password: 'correct horse battery staple',
        });
        if (answer.status === 201 && !this.cutting) {
          this.users.add(userId);
          this.mutations++;
        }
      } else if (roll < 0.7) {
        const users = [...this.users];
        const userId = users[Math.floor(random() * users.length)]!;
        const port = 1024 + Math.floor(random() * 60_000);
        const answer = await call(api, 'POST', '/v1/grants', {
          user_id: userId,
          client: '*',
          listen_port_start: port,
          listen_port_end: port,
        });
        const body = (await answer.json()) as Json;
        if (answer.status === 201 && !this.cutting) {
          this.grants.add(String(body['grant_id']));
          this.mutations++;
        }
      } else if (roll < 0.85 && this.grants.size > 0) {
        const grants = [...this.grants];
        const grantId = grants[Math.floor(random() * grants.length)]!;
        // From now on its presence is unknown until the delete is acknowledged.
        this.grants.delete(grantId);
        const answer = await call(api, 'DELETE', `/v1/grants/${grantId}`);
        if (answer.status >= 200 && answer.status < 300 && !this.cutting) {
          this.deletedGrants.add(grantId);
          this.mutations++;
        }
      } else {
        const answer = await call(api, 'POST', '/v1/credentials', { label: 'bench' });
        const body = (await answer.json()) as Json;
        if (answer.status === 201 && !this.cutting) {
          this.credentials.add(String(body['credential_id']));
          this.mutations++;
        }
      }
    } catch (error) {
      // Requests in flight when the server dies fail; they were never acknowledged.
      if (!this.cutting) throw error;
    }
  }

  /** What a restarted server lost: each entry names one acknowledged write that is not there. */
  async verify(api: Api): Promise<string[]> {
    const lost: string[] = [];
    const list = async (urlPath: string, key: string): Promise<Set<unknown>> => {
      const answer = await call(api, 'GET', urlPath);
      if (answer.status !== 200) throw new Error(`GET ${urlPath} answered ${answer.status}`);
      return new Set(((await answer.json()) as Json[]).map((row) => row[key]));
    };
    const users = await list('/v1/users', 'user_id');
    for (const id of this.users) if (!users.has(id)) lost.push(`user ${id}`);
    const grants = await list('/v1/grants', 'grant_id');
    for (const id of this.grants) if (!grants.has(id)) lost.push(`grant ${id}`);
    for (const id of this.deletedGrants) if (grants.has(id)) lost.push(`grant delete ${id}`);
    const credentials = await list('/v1/credentials', 'credential_id');
    for (const id of this.credentials) if (!credentials.has(id)) lost.push(`credential ${id}`);
    const allowed = await countAllowedMutations(api);
    if (allowed < this.mutations) {
      lost.push(`${this.mutations - allowed} audit rows (${allowed} < ${this.mutations})`);
    }
    return lost;
  }
}

async function countAllowedMutations(api: Api): Promise<number> {
  const since = encodeURIComponent('1970-01-01T00:00:00Z');
  let cursor: string | undefined;
  let count = 0;
  for (;;) {
    const answer = await call(
      api,
      'GET',
      `/v1/audit?since=${since}&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    if (answer.status !== 200) throw new Error(`GET /v1/audit answered ${answer.status}`);
    const page = (await answer.json()) as { entries: Json[]; next_cursor?: string };
    count += page.entries.filter(
      (entry) => entry['outcome'] === 'allow' && entry['method'] !== 'GET',
    ).length;
    cursor = page.next_cursor;
    if (cursor === undefined) return count;
  }
}
