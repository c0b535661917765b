/**
 * Serves the built web UI (packages/webui/dist) on the operator listener (reference §2.3 last
 * row): an asset by its path, `index.html` for any other GET outside `/v1/` (the SPA routes on
 * the client), with the reference's cache headers — `index.html` revalidated every time, hashed
 * `assets/*` immutable for a year, anything else 300 s — and `X-Frame-Options: DENY` so no other
 * site can frame the console. Unknown `/v1/*` paths never reach this: they stay a JSON 404.
 * The files are read once at start into memory (a few hundred KB), so a request is a map lookup
 * and no request path ever touches the filesystem (no traversal to guard). Must not depend on
 * React or Vite: it only knows a directory of static files.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import type { FastifyReply } from 'fastify';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

const INDEX_CACHE = 'max-age=0, must-revalidate';
const ASSET_CACHE = 'public, max-age=31536000, immutable';
const OTHER_CACHE = 'public, max-age=300';

/** Shown when the UI was not built (e.g. a server-only install); the API works regardless. */
const STUB_INDEX =
  '<!doctype html><meta charset="utf-8"><title>Portunus</title>' +
  '<p>The Portunus web UI is not built. Run <code>npm ci</code> (or <code>npm run build</code>) ' +
  'in the repository; the operator API at <code>/v1/</code> works without it.</p>';

interface Asset {
  body: Buffer;
  type: string;
  cacheControl: string;
}

export interface WebUi {
  /** Whether a built UI was found (false: the stub page is served). */
  readonly isBuilt: boolean;
  /** Answers a GET for `urlPath` (no query) with an asset or index.html. */
  send(urlPath: string, reply: FastifyReply): FastifyReply;
}

/** Where the build lands: the dist/ folder next to @portunus/webui's package.json. */
export function defaultWebUiDir(): string | undefined {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve('@portunus/webui/package.json')), 'dist');
  } catch {
    return undefined;
  }
}

function* filesUnder(dir: string, prefix = ''): Generator<[string, string]> {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const urlPath = `${prefix}/${entry.name}`;
    if (entry.isDirectory()) yield* filesUnder(full, urlPath);
    else if (entry.isFile()) yield [urlPath, full];
  }
}

export function loadWebUi(dir: string | undefined = defaultWebUiDir()): WebUi {
  const assets = new Map<string, Asset>();
  const isBuilt = dir !== undefined && fs.existsSync(path.join(dir, 'index.html'));
  if (isBuilt) {
    for (const [urlPath, full] of filesUnder(dir)) {
      assets.set(urlPath, {
        body: fs.readFileSync(full),
        type: TYPES[path.extname(full)] ?? 'application/octet-stream',
        cacheControl: urlPath.startsWith('/assets/') ? ASSET_CACHE : OTHER_CACHE,
      });
    }
  }
  const index: Asset = {
    body: assets.get('/index.html')?.body ?? Buffer.from(STUB_INDEX),
    type: TYPES['.html']!,
    cacheControl: INDEX_CACHE,
  };
  return {
    isBuilt,
    send(urlPath, reply) {
      const asset = urlPath === '/index.html' ? index : (assets.get(urlPath) ?? index);
      return reply
        .status(200)
        .header('content-type', asset.type)
        .header('cache-control', asset.cacheControl)
        .header('x-frame-options', 'DENY')
        .header('x-content-type-options', 'nosniff')
        .send(asset.body);
    },
  };
}
