/**
 * The Raft core alone: committed entries per second and heap bytes allocated per
 * entry, for 3 and 5 nodes and proposal batches of 1 and 64, in one process with
 * in-memory storage and instant delivery (no faults, no I/O).
 *
 *   npm run bench:raft [-- --seconds 2]
 *
 * Allocation is read as heap growth between garbage collections, so the script runs
 * itself with a large young generation (see package.json) to avoid a scavenge inside
 * the measured window; the number is approximate and printed as such.
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { decodeConfChange } from '../raft/confchange.js';
import type { Message } from '../raft/index.js';
import { bootstrapEntries, bootstrapHardState, MemoryStorage, RawNode, SeededRandom } from '../raft/index.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
const seconds = Number(values.seconds);

interface BenchNode {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
  applied: number;
}

function makeCluster(size: number): Map<string, BenchNode> {
  const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
  const nodes = new Map<string, BenchNode>();
  for (const id of ids) {
    const storage = new MemoryStorage();
    storage.append(bootstrapEntries(ids));
    storage.setHardState(bootstrapHardState(ids));
    const raw = new RawNode({
      id,
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      random: new SeededRandom(ids.indexOf(id) + 1),
      maxInflightMessages: 4096,
    });
    nodes.set(id, { raw, storage, applied: 0 });
  }
  return nodes;
}

/** Runs Ready cycles and deliveries until nothing is left to do. */
function pump(nodes: Map<string, BenchNode>): void {
  let queue: Message[] = [];
  for (;;) {
    let busy = false;
    for (const n of nodes.values()) {
      while (n.raw.hasReady()) {
        busy = true;
        const rd = n.raw.ready();
        for (const m of rd.messages) queue.push(m);
        if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
        n.storage.append(rd.entries);
        if (rd.hardState) n.storage.setHardState(rd.hardState);
        for (const m of n.raw.advance(rd)) queue.push(m);
        for (const e of rd.committedEntries) {
          if (e.type === 'conf') n.raw.applyConfChange(decodeConfChange(e.data));
          n.applied = e.index;
        }
        n.raw.appliedTo(n.applied);
        // Keep memory flat as a real host does.
        if (n.applied - n.storage.firstIndex() > 20_000)
          n.storage.compact(n.applied - 10_000, n.raw.status().conf, new Uint8Array(0));
      }
    }
    if (queue.length === 0 && !busy) return;
    const q = queue;
    queue = [];
    for (const m of q) nodes.get(m.to)?.raw.step(m);
  }
}

function run(size: number, batch: number): { perSecond: number; bytesPerEntry: number } {
  const nodes = makeCluster(size);
  const leader = nodes.get('n1')!;
  pump(nodes);
  leader.raw.campaign();
  pump(nodes);
  if (leader.raw.status().softState.role !== 'leader') throw new Error('no leader');
  const payload = new Uint8Array(128);
  const proposals = Array.from({ length: batch }, () => payload);
  const step = () => {
    const res = batch === 1 ? leader.raw.propose(payload) : leader.raw.proposeBatch(proposals);
    if (!res.ok) throw res.error;
    pump(nodes);
  };
  // Warm up, then time.
  for (let i = 0; i < 2000 / batch + 10; i++) step();
  const start = leader.applied;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < deadline) for (let i = 0; i < 10; i++) step();
  const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  const perSecond = (leader.applied - start) / elapsed;
  // Allocation: heap growth over a short window that fits in the young generation.
  const before = v8.getHeapStatistics().used_heap_size;
  const a0 = leader.applied;
  for (let i = 0; i < Math.max(1, Math.floor(2000 / batch)); i++) step();
  const grown = v8.getHeapStatistics().used_heap_size - before;
  return { perSecond, bytesPerEntry: Math.max(0, grown) / (leader.applied - a0) };
}

console.log('Raft core in one process (no I/O): committed entries per second');
console.log('nodes  batch  entries/s   ~heap bytes/entry');
for (const size of [3, 5]) {
  for (const batch of [1, 64]) {
    const r = run(size, batch);
    console.log(
      `${String(size).padStart(5)}  ${String(batch).padStart(5)}  ${Math.round(r.perSecond).toLocaleString('en-US').padStart(9)}   ${Math.round(r.bytesPerEntry).toLocaleString('en-US').padStart(8)}`,
    );
  }
}
