/**
 * The page's static files. The HTML and the CSS are strings here; the scripts are TypeScript
 * in ../browser/, compiled for the browser by `npm run build` into dist/src/ui/browser/ and
 * read from there, found from this module's own location (never the cwd). Each carries a
 * strong ETag computed once, so a reload costs a 304.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import appCss from './app-css.js';
import indexHtml from './index-html.js';

export interface Asset {
  readonly contentType: string;
  readonly body: Buffer;
  readonly etag: string;
}

const JS = 'text/javascript; charset=utf-8';

function bytes(body: Buffer): { body: Buffer; etag: string } {
  return { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

function asset(contentType: string, text: string): Asset {
  return { contentType, ...bytes(Buffer.from(text, 'utf8')) };
}

// Built, this module is dist/src/ui/assets/index.js, beside dist/src/ui/browser/. Run from
// source (the tests, under vitest), it is src/ui/assets/index.ts, and the scripts it serves are
// still the compiled ones in dist/ (`npm test` builds first).
const SCRIPTS = import.meta.url.endsWith('.ts')
  ? new URL('../../../dist/src/ui/browser/', import.meta.url)
  : new URL('../browser/', import.meta.url);

/**
 * A compiled script, read on first use rather than at import: every server test imports this
 * module through the app, and only the page's own tests need the scripts built.
 */
function script(name: string): Asset {
  let loaded: { body: Buffer; etag: string } | null = null;
  const load = () => {
    if (loaded !== null) return loaded;
    const file = fileURLToPath(new URL(name, SCRIPTS));
    try {
      loaded = bytes(readFileSync(file));
    } catch (err) {
      throw new Error(`the monitoring page's script ${file} is missing: run npm run build`, { cause: err });
    }
    return loaded;
  };
  return {
    contentType: JS,
    get body() {
      return load().body;
    },
    get etag() {
      return load().etag;
    },
  };
}

export const PAGE: Asset = asset('text/html; charset=utf-8', indexHtml);

/** Served at /ui/assets/<name>. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['app.css', asset('text/css; charset=utf-8', appCss)],
  ...[
    'app.js',
    'api.js',
    'dom.js',
    'store.js',
    'view-cluster.js',
    'view-datacenters.js',
    'view-services.js',
    'view-side.js',
    'token-scope.js',
  ].map((name) => [name, script(name)] as const),
]);
