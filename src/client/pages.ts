/**
 * Reading a listing in pages (`limit` + `continue`, as Kubernetes and etcd page a list):
 * every page is read at the first page's revision, so the pages together are one
 * consistent picture. A page whose revision has left the node's history (410 COMPACTED)
 * makes the walk start over, a few times at most.
 */
import { ApiError } from './errors.js';

/** The page size `list`, `listNamespace` and `listServices` read with (the server caps a page at its --list-max-items, 10,000 by default). */
export const DEFAULT_PAGE_SIZE = 2_000;
const WALK_ATTEMPTS = 3;

export interface PageOptions {
  /** At most this many items (the server may cap it lower); `continue` is set when more are left. */
  readonly limit?: number;
  /** The `continue` of the previous page. */
  readonly continue?: string;
}

/** Every page of one listing, in order, all at one revision. */
export async function readAllPages<P extends { readonly continue?: string }>(
  page: (token: string | undefined) => Promise<P>,
): Promise<P[]> {
  for (let attempt = 1; ; attempt++) {
    const pages: P[] = [];
    let token: string | undefined;
    try {
      do {
        const p = await page(token);
        pages.push(p);
        token = p.continue;
      } while (token !== undefined);
      return pages;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'COMPACTED' && attempt < WALK_ATTEMPTS) continue;
      throw err;
    }
  }
}

/** True for an older server's refusal of `limit` (it knew no pages): read unpaginated from it. */
export function pagesUnsupported(err: unknown): boolean {
  return (
    err instanceof ApiError && err.code === 'INVALID_ARGUMENT' && (err.field === 'limit' || err.field === 'continue')
  );
}
