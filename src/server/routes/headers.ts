/**
 * Request headers that several write routes share: the exactly-once pair (documented once
 * here, checked by ServerContext.write) and `If-Match` for compare-and-set.
 */

/** Exactly-once: what every write route documents (ServerContext.write reads them). */
export const CLIENT_HEADERS = [
  {
    name: 'x-rollcall-client-id',
    description: "Exactly-once: the client's id (1-128 characters); send with x-rollcall-seq.",
  },
  {
    name: 'x-rollcall-seq',
    description: 'Exactly-once: 1, 2, 3... per new request of this client id; a retry repeats it and applies once.',
  },
] as const;

/** `3`, `"3"` or `W/"3"`; anything else (lists, `*`) is refused. */
export function parseIfMatch(header: string): number | null {
  const m = /^\s*(?:W\/)?"?([0-9]{1,15})"?\s*$/.exec(header);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}
