/**
 * The registry keeps string keys; the node database's state machine sublevel stores
 * bytes. These adapt one to the other (UTF-8 both ways, so the storage layer's reserved
 * meta keys and the registry's are the same bytes).
 */
import { decode } from '../codec/index.js';
import type { BatchOp, SmStore } from '../registry/index.js';
import type { NodeDatabase } from '../storage/index.js';
import { SM_LEGACY_PEERS_KEY, scanBatches } from '../storage/index.js';
import type { PeerAddress } from '../transport/index.js';
import { parseHostPort } from '../transport/index.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Replicated: the address each member was added with (from its conf change), the same on
 * every replica; rewritten with every applied conf change. See peer-book.ts.
 */
export const MEMBER_ADDRESSES_KEY = '\x00meta/member-addresses';
/**
 * Node-local, read-only: the peer book builds before the PeerBook stored here (this node's
 * flags mixed with what it learned, or, after a snapshot install, the leader's). Never
 * written again, never sent or replaced by a snapshot (SM_NODE_LOCAL_KEYS).
 */
const LEGACY_PEERS_KEY = SM_LEGACY_PEERS_KEY;

/** The replicated record of added members' addresses (empty if none was ever added). */
export async function readMemberAddresses(db: NodeDatabase): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [id, text] of Object.entries(await readRecord(db, MEMBER_ADDRESSES_KEY)))
    if (typeof text === 'string') out.set(id, text);
  return out;
}

/** The address book an older build stored, if this data directory has one. */
export async function readLegacyPeers(db: NodeDatabase): Promise<Map<string, PeerAddress>> {
  const out = new Map<string, PeerAddress>();
  for (const [id, text] of Object.entries(await readRecord(db, LEGACY_PEERS_KEY))) {
    const address = typeof text === 'string' ? parseHostPort(text) : null;
    if (address) out.set(id, address);
  }
  return out;
}

async function readRecord(db: NodeDatabase, key: string): Promise<Record<string, unknown>> {
  const raw = await db.sm.get(encoder.encode(key));
  if (raw === undefined) return {};
  const rec = decode<unknown>(raw);
  if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
    throw new Error(`state machine record ${JSON.stringify(key)} is not a map of member ids to addresses`);
  return rec as Record<string, unknown>;
}

export function smStore(db: NodeDatabase): SmStore {
  return {
    async *batches() {
      // Keys decoded to strings by classic-level itself: cheaper than a Buffer each, decoded here.
      yield* scanBatches<string, Uint8Array>(db.sm, undefined, 'utf8');
    },
  };
}

/** Records per batch of pairsStore(), with a turn of the event loop between batches. */
const PAIRS_PER_BATCH = 2000;

/**
 * The state machine's records as a snapshot install just wrote them (decoded by the
 * install, NodeStorage.takeInstalledPairs): the registry reloads from these instead of
 * reading back from LevelDB the 257 MB just written (a million instances).
 */
export function pairsStore(pairs: readonly (readonly [Uint8Array, Uint8Array])[]): SmStore {
  return {
    async *batches() {
      for (let at = 0; at < pairs.length; at += PAIRS_PER_BATCH) {
        if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
        yield pairs.slice(at, at + PAIRS_PER_BATCH).map(([key, value]) => [decoder.decode(key), value] as const);
      }
    },
  };
}

/** Writes one applied batch (state and applied index together) atomically. */
export async function writeStateOps(db: NodeDatabase, ops: readonly BatchOp[]): Promise<void> {
  if (ops.length === 0) return;
  await db.sm.batch(
    ops.map((op) =>
      op.type === 'put'
        ? { type: 'put' as const, key: encoder.encode(op.key), value: op.value }
        : { type: 'del' as const, key: encoder.encode(op.key) },
    ),
  );
}
