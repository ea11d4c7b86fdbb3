/**
 * The registry keeps string keys; the node database's state machine sublevel stores
 * bytes. These adapt one to the other (UTF-8 both ways, so the storage layer's reserved
 * meta keys and the registry's are the same bytes).
 */
import { decode } from '../codec/index.js';
import type { BatchOp, SmStore } from '../registry/index.js';
import type { NodeDatabase } from '../storage/index.js';
import { scanBatches } from '../storage/index.js';
import type { PeerAddress } from '../transport/index.js';
import { parseHostPort } from '../transport/index.js';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Member addresses, replicated with membership changes (a meta key the registry skips). */
export const PEERS_KEY = '\x00meta/peers';

export async function readPeers(db: NodeDatabase): Promise<Map<string, PeerAddress>> {
  const out = new Map<string, PeerAddress>();
  const raw = await db.sm.get(encoder.encode(PEERS_KEY));
  if (raw === undefined) return out;
  for (const [id, text] of Object.entries(decode<Record<string, string>>(raw))) {
    const address = parseHostPort(text);
    if (address) out.set(id, address);
  }
  return out;
}

export function smStore(db: NodeDatabase): SmStore {
  return {
    async *batches() {
      for await (const batch of scanBatches<Uint8Array, Uint8Array>(db.sm)) yield batch.map(([key, value]) => [decoder.decode(key), value] as const);
    },
  };
}

/** Writes one applied batch (state and applied index together) atomically. */
export async function writeStateOps(db: NodeDatabase, ops: readonly BatchOp[]): Promise<void> {
  if (ops.length === 0) return;
  await db.sm.batch(
    ops.map((op) => (op.type === 'put' ? { type: 'put' as const, key: encoder.encode(op.key), value: op.value } : { type: 'del' as const, key: encoder.encode(op.key) })),
  );
}
