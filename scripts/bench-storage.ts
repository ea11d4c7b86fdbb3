/**
 * Storage benchmark: fsync latency of single-entry synced batches, and entries/s appended
 * in synced batches of 64 (one Ready each, as the node's group commit writes them). Each
 * phase also prints the process CPU it cost (user + system, all threads: LevelDB's own
 * threads included) per synced batch and per entry.
 *
 *   npm run build && node dist/scripts/bench-storage.js [--dir PATH] [--seconds N] [--size BYTES]
 *
 * --dir picks the parent of the temp database (default: the OS temp dir; a tmpfs there
 * makes fsync free and the numbers meaningless). Each phase stops after its count or
 * after --seconds, whichever comes first. Prints one line per measure.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Entry } from '../raft/messages.js';
import { NodeStorage } from '../src/storage/index.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: tmpdir() },
    seconds: { type: 'string', default: '10' },
    size: { type: 'string', default: '256' },
  },
});
const budgetMs = Number(values.seconds) * 1000;
const size = Number(values.size);
const SYNC_SAMPLES = 500;
const WARMUP = 300;
const BATCH = 64;
const MAX_BATCHES = 5000;
const COMPACT_EVERY = 20_000;

function entry(index: number): Entry {
  const data = new Uint8Array(size);
  data.fill(index & 0xff);
  return { index, term: 1, type: 'normal', data };
}

/** Process CPU (user + system, every thread) since `from`, in µs. */
function cpuMicros(from: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(from);
  return d.user + d.system;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(values.dir, 'rollcall-bench-storage-'));
  const storage = await NodeStorage.open(dir);
  try {
    let next = 1;
    const conf = { voters: ['n1'], learners: [] };

    // 1. fsync latency: one entry per synced batch, after a warm-up (JIT compilation runs
    // on other threads and would otherwise count in the CPU of the first few hundred).
    for (let i = 0; i < WARMUP; i++) await storage.persist({ entries: [entry(next++)] });
    const lat: number[] = [];
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    while (lat.length < SYNC_SAMPLES && performance.now() - t0 < budgetMs) {
      const start = process.hrtime.bigint();
      await storage.persist({ entries: [entry(next++)] });
      lat.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    const cpu1 = cpuMicros(cpu0);
    lat.sort((a, b) => a - b);
    console.log(
      `fsync latency (1-entry synced batch, ${size} B): p50 ${percentile(lat, 50).toFixed(3)} ms, ` +
        `p99 ${percentile(lat, 99).toFixed(3)} ms, max ${lat[lat.length - 1]!.toFixed(3)} ms over ${lat.length} writes; ` +
        `CPU ${(cpu1 / lat.length).toFixed(0)} µs per synced batch`,
    );

    // 2. throughput: batches of 64 entries, one synced batch each, compacting as a node would.
    const syncsBefore = storage.stats().syncs;
    let entries = 0;
    const cpu2 = process.cpuUsage();
    const t1 = performance.now();
    for (let b = 0; b < MAX_BATCHES && performance.now() - t1 < budgetMs; b++) {
      const batch: Entry[] = [];
      for (let i = 0; i < BATCH; i++) batch.push(entry(next++));
      await storage.persist({ entries: batch, hardState: { term: 1, vote: 'n1', commit: next - 1 } });
      entries += BATCH;
      if (entries % COMPACT_EVERY < BATCH) await storage.compact(next - 1 - 1000, conf, new Uint8Array(0));
    }
    const secs = (performance.now() - t1) / 1000;
    const cpu3 = cpuMicros(cpu2);
    const syncs = storage.stats().syncs - syncsBefore;
    console.log(
      `append throughput (batches of ${BATCH} x ${size} B, one fsync each): ${Math.round(entries / secs)} entries/s, ` +
        `${Math.round(syncs / secs)} fsyncs/s, ${entries} entries in ${secs.toFixed(2)} s; ` +
        `CPU ${(cpu3 / entries).toFixed(1)} µs per entry, ${((cpu3 / entries) * BATCH).toFixed(0)} µs per batch`,
    );
  } finally {
    await storage.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
