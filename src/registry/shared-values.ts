/**
 * One frozen copy of each metadata map and tag list that many instances hold (issue 21:
 * memory per instance). A write's command carries its own copy of every string, decoded
 * from the Raft entry; instances of one service mostly hold the same metadata (zone,
 * version, a long label set), so keeping each instance's own copy costs hundreds of bytes
 * an instance. Values are frozen and never changed, so sharing one is invisible to readers.
 *
 * A cache, not an index: bounded (emptied when full), so values that do not repeat cost at
 * most its size and a canonical string per write; losing an entry loses only sharing. At
 * worst (4,096 keys of 1,024 characters each kind, and the values they keep alive after
 * their instances have changed) that is ~9 MB a kind, ~18 MB for both; up to twice that for
 * text outside Latin-1, which V8 keeps two bytes a character (measured with heapUsed).
 */

/** Distinct values kept for each kind; at this size the cache starts again. */
const MAX_ENTRIES = 4096;
/** Values whose canonical text is longer are not kept: what bounds the cache's memory. */
const MAX_TEXT = 1024;

const names = new Map<string, string>();
const metadataByText = new Map<string, Readonly<Record<string, string>>>();
const tagsByText = new Map<string, readonly string[]>();
/** The value each kind gave last: a run of writes with the same one (a bulk registration) skips the key. */
let lastMetadata: Readonly<Record<string, string>> = Object.freeze({});
let lastTags: readonly string[] = Object.freeze([]);

function shared<T>(cache: Map<string, T>, value: T, leastText: number): T {
  // A value whose JSON cannot fit is not keyed: encoding up to 256 KB of metadata on
  // every write of it would be work for nothing.
  if (leastText > MAX_TEXT) return value;
  const text = JSON.stringify(value);
  if (text.length > MAX_TEXT) return value;
  const known = cache.get(text);
  if (known !== undefined) return known;
  if (cache.size >= MAX_ENTRIES) cache.clear();
  cache.set(text, value);
  return value;
}

function sameMetadata(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i] || a[ka[i]!] !== b[kb[i]!]) return false;
  return true;
}

function sameTags(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A lower bound of JSON.stringify(metadata).length: `{}`, and `"k":"v"` and a comma per entry (escapes only add). */
function metadataTextAtLeast(metadata: Readonly<Record<string, string>>): number {
  let n = 1;
  for (const k in metadata) n += k.length + metadata[k]!.length + 6;
  return n;
}

/** A lower bound of JSON.stringify(tags).length: `[]`, and `"t"` and a comma per tag. */
function tagsTextAtLeast(tags: readonly string[]): number {
  let n = 1;
  for (const t of tags) n += t.length + 3;
  return n;
}

/**
 * The kept copy of a frozen metadata map equal to `metadata` (same keys in the same order,
 * same values), or `metadata` itself, now kept.
 */
export function sharedMetadata(metadata: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  if (metadata === lastMetadata || sameMetadata(metadata, lastMetadata)) return lastMetadata;
  lastMetadata = shared(metadataByText, metadata, metadataTextAtLeast(metadata));
  return lastMetadata;
}

/** The kept copy of a frozen tag list equal to `tags`, or `tags` itself, now kept. */
export function sharedTags(tags: readonly string[]): readonly string[] {
  if (tags === lastTags || sameTags(tags, lastTags)) return lastTags;
  lastTags = shared(tagsByText, tags, tagsTextAtLeast(tags));
  return lastTags;
}

/**
 * The kept copy of a namespace, service or cluster name: each write decodes its own, and
 * every instance of a service holds all three.
 */
export function sharedName(name: string): string {
  const known = names.get(name);
  if (known !== undefined) return known;
  if (names.size >= MAX_ENTRIES) names.clear();
  names.set(name, name);
  return name;
}
