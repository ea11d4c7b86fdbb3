/**
 * The page's static files, embedded as strings so they ship inside dist/ with the compiled
 * code (tsc copies nothing else) and need no path lookups at run time. Each carries a
 * strong ETag computed once, so a reload costs a 304.
 */
import { createHash } from 'node:crypto';
import apiJs from './api-js.js';
import appCss from './app-css.js';
import appJs from './app-js.js';
import domJs from './dom-js.js';
import indexHtml from './index-html.js';
import storeJs from './store-js.js';
import viewClusterJs from './view-cluster-js.js';
import viewServicesJs from './view-services-js.js';
import viewSideJs from './view-side-js.js';

export interface Asset {
  readonly contentType: string;
  readonly body: Buffer;
  readonly etag: string;
}

function asset(contentType: string, text: string): Asset {
  const body = Buffer.from(text, 'utf8');
  return { contentType, body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

const JS = 'text/javascript; charset=utf-8';

export const PAGE: Asset = asset('text/html; charset=utf-8', indexHtml);

/** Served at /ui/assets/<name>. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['app.css', asset('text/css; charset=utf-8', appCss)],
  ['app.js', asset(JS, appJs)],
  ['api.js', asset(JS, apiJs)],
  ['dom.js', asset(JS, domJs)],
  ['store.js', asset(JS, storeJs)],
  ['view-cluster.js', asset(JS, viewClusterJs)],
  ['view-services.js', asset(JS, viewServicesJs)],
  ['view-side.js', asset(JS, viewSideJs)],
]);
