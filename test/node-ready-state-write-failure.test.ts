/**
 * A state-machine write (LevelDB, not synced) that fails after its entries were answered
 * from memory (disk full): the node must stop rather than go on with memory ahead of its
 * disk. The answered entries are committed, so durable in a majority's log; this node's
 * LevelDB never claims them (its applied index stays behind), so a restart replays them
 * from its log. What that takes of the Ready loop: fail() with the write's error, no
 * appliedTo, nothing that reads LevelDB at the answered index let through, no compaction
 * (the log must keep what LevelDB lacks), and no further Ready. A ReadyLoop over fakes.
 */
import { describe, expect, it } from 'vitest';
import type { Entry, RawNode, Ready } from '../raft/index.js';
import { ManualClock } from '../src/node/manual-clock.js';
import type { PendingProposals } from '../src/node/proposals.js';
import { ReadyLoop } from '../src/node/ready-loop.js';
import type { AppliedEntry, ApplyOutcome, Registry } from '../src/registry/index.js';
import type { NodeDatabase, NodeStorage } from '../src/storage/index.js';
import { readyLoopDeps } from './helpers/ready-loop.js';

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

function setup() {
  const committed: Entry[] = [1, 2].map((index) => ({ index, term: 1, type: 'normal', data: new Uint8Array() }));
  const rd = {
    softState: null,
    messages: [],
    entries: [],
    snapshot: null,
    committedEntries: committed,
    hardState: null,
    mustSync: false,
    readStates: [],
  } as unknown as Ready;
  let readies = 0;
  const appliedTo: number[] = [];
  const raw = {
    // A Ready is always there to take: only the failure may stop the loop taking it.
    hasReady: () => true,
    ready: () => {
      readies++;
      return rd;
    },
    advance: () => [],
    takeMessages: () => [],
    appliedTo: (i: number) => void appliedTo.push(i),
  } as unknown as RawNode;
  const registry = {
    appliedIndex: 0,
    clusterVersion: 1,
    revision: 0,
    applyBatch(applied: readonly AppliedEntry[]): ApplyOutcome {
      this.appliedIndex = applied[applied.length - 1]!.index;
      return {
        results: new Map(),
        instances: new Map(),
        events: [],
        ops: [{ type: 'put', key: '\u0000meta/applied', value: new Uint8Array([this.appliedIndex]) }],
      };
    },
  };
  let failWrite!: (err: Error) => void;
  const db = {
    sm: {
      batch: () =>
        new Promise<void>((_resolve, reject) => {
          failWrite = reject;
        }),
    },
  } as unknown as NodeDatabase;
  const compactions: number[] = [];
  const storage = {
    firstIndex: () => 1,
    compact: async (to: number) => void compactions.push(to),
  } as unknown as NodeStorage;
  const answered: number[] = [];
  const failures: unknown[] = [];
  const clock = new ManualClock();
  const { deps } = readyLoopDeps({
    raw,
    storage,
    db,
    registry: registry as unknown as Registry,
    proposals: { onApplied: (index: number) => void answered.push(index) } as unknown as PendingProposals,
    clock,
    compactEvery: 2,
    // As RollcallNode: a failed node counts as closed for the loop.
    closed: () => failures.length > 0,
    fail: (err: unknown) => void failures.push(err),
  });
  const loop = new ReadyLoop(deps);
  return {
    loop,
    clock,
    registry,
    answered,
    appliedTo,
    compactions,
    failures,
    readies: () => readies,
    failWrite: (err: Error) => failWrite(err),
  };
}

describe('ReadyLoop: a state-machine write that fails after the answer', () => {
  it('stops the node: no appliedTo, no LevelDB reader let through, no compaction, no next Ready', async () => {
    const t = setup();
    t.loop.kick();
    await turns();
    expect(t.answered).toEqual([1, 2]); // answered from memory, the write still running
    const backup = t.loop.whenStateWritten();
    const hash = t.loop.waitApplied(2, 1000);
    // Both must not resolve: observe them without leaving a rejection unhandled.
    const backupOutcome = backup.then(
      () => 'read',
      (err: Error) => err.message,
    );
    const hashOutcome = hash.then(
      () => 'read',
      (err: Error) => err.message,
    );

    const enospc = Object.assign(new Error('IO error: No space left on device'), { code: 'ENOSPC' });
    t.failWrite(enospc);
    await t.loop.idle();
    await turns();

    expect(t.failures).toEqual([enospc]);
    expect(await backupOutcome).toBe('IO error: No space left on device');
    // The core is never told: the entries are not applied as far as Raft (and LevelDB) know.
    expect(t.appliedTo).toEqual([]);
    // The log keeps what LevelDB lacks: a restart replays the answered entries from it.
    expect(t.compactions).toEqual([]);
    // A hash at the answered index never reads a LevelDB without it.
    t.clock.advance(1000);
    expect(await hashOutcome).toMatch(/was not applied on this node within 1000 ms/);
    // Nothing more is taken from the core once the node failed.
    const readies = t.readies();
    t.loop.kick();
    await turns();
    expect(t.readies()).toBe(readies);
    expect(t.loop.busy).toBe(false);
  });
});
