/**
 * The `continue` token of a paginated listing, opaque to clients as in Kubernetes: where
 * the last page stopped (the sort key of the last item it read), the revision the first
 * page was read at, the listing it belongs to, and for a service's list the service's
 * revision at that point (its `x-rollcall-index`). Base64url of a JSON array, versioned.
 */

export interface ContinueToken {
  /** The revision every page of this listing is read at. */
  readonly revision: number;
  /** The sort key of the last item read; the next page starts after it. */
  readonly after: string;
  /** Which listing, with which filters (see `listingSignature`): a token is good for that listing only. */
  readonly listing: string;
  /** A service's list: the service's revision at `revision`. */
  readonly serviceRevision?: number;
}

const VERSION = 1;

export function encodeContinue(t: ContinueToken): string {
  const body: unknown[] = [VERSION, t.revision, t.after, t.listing];
  if (t.serviceRevision !== undefined) body.push(t.serviceRevision);
  return Buffer.from(JSON.stringify(body), 'utf8').toString('base64url');
}

/** The token, or null when it is not one this server wrote. */
export function decodeContinue(raw: string): ContinueToken | null {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(body) || body[0] !== VERSION) return null;
  const [, revision, after, listing, serviceRevision] = body as unknown[];
  if (!isRevision(revision) || typeof after !== 'string' || typeof listing !== 'string') return null;
  if (serviceRevision !== undefined && !isRevision(serviceRevision)) return null;
  return serviceRevision === undefined ? { revision, after, listing } : { revision, after, listing, serviceRevision };
}

/** What a token is bound to: the route and every filter that changes which items a page holds. */
export function listingSignature(
  kind: string,
  filters: Readonly<Record<string, string | boolean | undefined>>,
): string {
  const parts = [kind];
  for (const k of Object.keys(filters).sort()) {
    const v = filters[k];
    if (v !== undefined) parts.push(`${k}=${String(v)}`);
  }
  return parts.join('&');
}

function isRevision(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}
