/**
 * The dependencies of a ReadyLoop over fakes, for unit tests of the loop: every part does
 * nothing (no Ready to take, nothing to write, nothing applied) unless the test overrides
 * it. Failures the loop reports through `fail` land in `failures`, unless `fail` is given.
 */
import type { RawNode } from '../../raft/index.js';
import { silentLogger } from '../../src/log/index.js';
import { ManualClock } from '../../src/node/manual-clock.js';
import type { PendingProposals } from '../../src/node/proposals.js';
import type { ReadBarriers } from '../../src/node/reads.js';
import type { ReadyLoopDeps } from '../../src/node/ready-loop.js';
import type { Registry } from '../../src/registry/index.js';
import type { NodeDatabase, NodeStorage } from '../../src/storage/index.js';

export function readyLoopDeps(overrides: Partial<ReadyLoopDeps> = {}): {
  deps: ReadyLoopDeps;
  failures: unknown[];
} {
  const failures: unknown[] = [];
  const deps: ReadyLoopDeps = {
    raw: { hasReady: () => false, takeMessages: () => [] } as unknown as RawNode,
    storage: { firstIndex: () => 1 } as unknown as NodeStorage,
    db: {} as NodeDatabase,
    registry: { appliedIndex: 0 } as unknown as Registry,
    proposals: { onSnapshot: () => undefined, onApplied: () => undefined } as unknown as PendingProposals,
    reads: { onReadState: () => undefined, onApplied: () => undefined } as unknown as ReadBarriers,
    log: silentLogger(),
    clock: new ManualClock(),
    dataDir: '/nowhere',
    compactEvery: 1_000_000,
    stallLimitMs: 5000,
    loopBlockedMs: () => 0,
    observer: () => ({}),
    closed: () => false,
    fail: (err: unknown) => void failures.push(err),
    onSoftState: () => undefined,
    send: () => undefined,
    applyConfChange: () => ({ voters: ['a'], learners: [] }),
    conf: () => ({ voters: ['a'], learners: [] }),
    encodedMemberAddresses: () => new Uint8Array(),
    resetMemberAddresses: () => undefined,
    fillMemberAddresses: () => false,
    buildVersion: 1,
    onAppliedInMemory: () => undefined,
    onApplied: () => undefined,
    onSnapshotInstalled: async () => undefined,
    ...overrides,
  };
  return { deps, failures };
}
