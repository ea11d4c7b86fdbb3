/**
 * Committed entries are answered once applied to the in-memory registry, while their
 * (unsynced) LevelDB write of the state machine still runs; everything that reads that
 * LevelDB at an applied index waits for the write: the corruption check's hash
 * (waitApplied), a backup (whenStateWritten) and the log compaction (never past what
 * LevelDB holds). A ReadyLoop over fakes whose state-machine write finishes only when the
 * test says so.
 */
import { describe, expect, it } from 'vitest';
import type { Entry, RawNode, Ready } from '../raft/index.js';
import { encodeConfChange } from '../raft/index.js';
import type { PendingProposals } from '../src/node/proposals.js';
import type { ReadBarriers } from '../src/node/reads.js';
import { ReadyLoop } from '../src/node/ready-loop.js';
import type { AppliedEntry, ApplyOutcome, Registry } from '../src/registry/index.js';
import type { NodeDatabase, NodeStorage } from '../src/storage/index.js';
import { readyLoopDeps } from './helpers/ready-loop.js';

const turns = async (n = 5) => {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
};

function setup(withConfChange = false) {
  const entries: Entry[] = [1, 2].map((index) => ({ index, term: 1, type: 'normal', data: new Uint8Array() }));
  if (withConfChange)
    entries[1] = { index: 2, term: 1, type: 'conf', data: encodeConfChange({ type: 'addLearner', node: 'd' }) };
  const rd = {
    softState: null,
    messages: [],
    entries: [],
    snapshot: null,
    committedEntries: entries,
    hardState: null,
    mustSync: false,
    readStates: [],
  } as unknown as Ready;
  let readies = 1;
  const appliedTo: number[] = [];
  const raw = {
    hasReady: () => readies > 0,
    ready: () => {
      readies--;
      return rd;
    },
    advance: () => [],
    takeMessages: () => [],
    appliedTo: (i: number) => {
      appliedTo.push(i);
      order.push(`appliedTo ${i}`);
    },
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
  let finishWrite!: () => void;
  let writes = 0;
  const db = {
    sm: {
      batch: () => {
        writes++;
        return new Promise<void>((resolve) => {
          finishWrite = resolve;
        });
      },
    },
  } as unknown as NodeDatabase;
  const compactions: number[] = [];
  const storage = {
    firstIndex: () => 1,
    compact: async (to: number) => void compactions.push(to),
  } as unknown as NodeStorage;
  const answered: number[] = [];
  const order: string[] = [];
  const readsReleased: number[] = [];
  const { deps, failures } = readyLoopDeps({
    raw,
    storage,
    db,
    registry: registry as unknown as Registry,
    proposals: {
      onApplied: (index: number) => {
        answered.push(index);
        order.push(`answer ${index}`);
      },
    } as unknown as PendingProposals,
    reads: {
      onReadState: () => undefined,
      onApplied: (i: number) => void readsReleased.push(i),
    } as unknown as ReadBarriers,
    // Compact as soon as two entries are applied (to index 1, keeping one).
    compactEvery: 2,
    applyConfChange: () => ({ voters: ['a'], learners: ['d'] }),
  });
  const loop = new ReadyLoop(deps);
  return {
    loop,
    registry,
    answered,
    readsReleased,
    compactions,
    appliedTo,
    order,
    failures,
    writes: () => writes,
    finishWrite: () => finishWrite(),
  };
}

describe('ReadyLoop: answers from memory, LevelDB readers wait for the state write', () => {
  it('answers the entries and releases reads before the state write ends', async () => {
    const t = setup();
    t.loop.kick();
    await turns();
    expect(t.writes()).toBe(1); // the state write was started and has not ended
    expect(t.registry.appliedIndex).toBe(2);
    expect(t.answered).toEqual([1, 2]);
    expect(t.readsReleased).toEqual([2]);
    await expect(t.loop.waitAppliedInMemory(2, 1000)).resolves.toBeUndefined();
    t.finishWrite();
    await t.loop.idle();
    expect(t.appliedTo).toEqual([2]);
    expect(t.failures).toEqual([]);
  });

  it('a hash of LevelDB at the applied index (waitApplied) waits for the state write', async () => {
    const t = setup();
    t.loop.kick();
    await turns();
    expect(t.registry.appliedIndex).toBe(2); // in memory, with LevelDB's write still running
    let hashMayRead = false;
    const hash = t.loop.waitApplied(2, 1000).then(() => {
      hashMayRead = true;
    });
    await turns();
    expect(hashMayRead).toBe(false);
    t.finishWrite();
    await hash;
    await t.loop.idle();
    expect(t.failures).toEqual([]);
  });

  it('a backup (whenStateWritten) waits for the state write', async () => {
    const t = setup();
    t.loop.kick();
    await turns();
    let backupMayRead = false;
    const backup = t.loop.whenStateWritten().then(() => {
      backupMayRead = true;
    });
    await turns();
    expect(backupMayRead).toBe(false);
    t.finishWrite();
    await backup;
    await t.loop.idle();
    await expect(t.loop.whenStateWritten()).resolves.toBeUndefined(); // nothing in flight: at once
  });

  it('answers a batch with a membership change only after its write and appliedTo, as before', async () => {
    const t = setup(true);
    t.loop.kick();
    await turns();
    // Entry 1 is applied on its own (a membership change starts a batch of its own) and
    // answered from memory; the change waits.
    expect(t.order).toEqual(['answer 1']);
    t.finishWrite();
    await turns();
    expect(t.writes()).toBe(2);
    // The next change an admin sends at once must not find this one pending.
    expect(t.order).toEqual(['answer 1', 'appliedTo 1']);
    t.finishWrite();
    await t.loop.idle();
    expect(t.order).toEqual(['answer 1', 'appliedTo 1', 'appliedTo 2', 'answer 2']);
    expect(t.failures).toEqual([]);
  });

  it('compacts the log only once LevelDB holds what it compacts to', async () => {
    const t = setup();
    t.loop.kick();
    await turns();
    expect(t.compactions).toEqual([]);
    t.finishWrite();
    await t.loop.idle();
    await turns();
    expect(t.compactions).toEqual([1]);
  });
});
