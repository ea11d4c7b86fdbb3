/**
 * Reads a node's durable Raft state at open: replays and verifies the whole WAL (every
 * frame against its checksums, every entry against its own, the log contiguous from the
 * snapshot index + 1), then checks the state machine against it (reconcile.ts).
 */
import type { NodeDatabase } from './database.js';
import { FORMAT_VERSION } from './database.js';
import { type RollForward, reconcile } from './reconcile.js';
import type { WalScan } from './wal/reader.js';
import { type ReplayedState, WalReplay } from './wal/replay.js';
import { Wal, type WalOptions, walDir } from './wal/wal.js';

export interface LoadedState {
  readonly wal: Wal;
  readonly state: ReplayedState;
  /** A snapshot install interrupted by a crash, to finish before anything else is written. */
  readonly rollForward: RollForward | undefined;
  /** A torn last write that was cut off (for the node's log). */
  readonly torn: WalScan['torn'];
}

export async function loadNodeState(database: NodeDatabase, options: WalOptions = {}): Promise<LoadedState> {
  const dir = walDir(database.dir);
  const replay = new WalReplay(dir);
  const { wal, scan } = await Wal.open(dir, FORMAT_VERSION, (r) => replay.add(r), options);
  try {
    const state = replay.finish();
    const rollForward = await reconcile(database.dir, database.sm, state, wal.segmentNames().length === 0);
    return { wal, state, rollForward, torn: scan.torn };
  } catch (err) {
    await wal.close().catch(() => undefined);
    throw err;
  }
}
