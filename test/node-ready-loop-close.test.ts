/**
 * Closing a node waits for the Ready being written (ReadyLoop.idle) so nothing is left
 * half-written. That write finishes in real time, whatever clock the node's logic runs on:
 * on virtual time (ManualClock) the wait must end when the write does, with no one moving
 * the clock.
 */
import { describe, expect, it } from 'vitest';
import type { RawNode, Ready } from '../raft/index.js';
import { silentLogger } from '../src/log/index.js';
import { ManualClock } from '../src/node/manual-clock.js';
import type { PendingProposals } from '../src/node/proposals.js';
import type { ReadBarriers } from '../src/node/reads.js';
import { ReadyLoop, type ReadyLoopDeps } from '../src/node/ready-loop.js';
import type { Registry } from '../src/registry/index.js';
import type { NodeDatabase, NodeStorage } from '../src/storage/index.js';

describe('ReadyLoop.idle', () => {
  it('resolves once the write in flight finishes, on a clock nobody moves', async () => {
    const clock = new ManualClock();
    const rd = {
      messages: [],
      entries: [{ index: 1, term: 1, type: 'normal', data: new Uint8Array() }],
      committedEntries: [],
      hardState: { term: 1, vote: null, commit: 0 },
      mustSync: true,
      readStates: [],
    } as unknown as Ready;
    let readies = 1;
    const raw = {
      hasReady: () => readies > 0,
      ready: () => {
        readies--;
        return rd;
      },
      advance: () => [],
      takeMessages: () => [],
    } as unknown as RawNode;
    let persistStarted!: () => void;
    const started = new Promise<void>((resolve) => {
      persistStarted = resolve;
    });
    let finishPersist!: () => void;
    const storage = {
      persist: () => {
        persistStarted();
        return new Promise<void>((resolve) => {
          finishPersist = resolve;
        });
      },
      firstIndex: () => 1,
    } as unknown as NodeStorage;
    const failures: unknown[] = [];
    const loop = new ReadyLoop({
      raw,
      storage,
      db: {} as NodeDatabase,
      registry: { appliedIndex: 0 } as unknown as Registry,
      proposals: {} as PendingProposals,
      reads: { onReadState: () => undefined } as unknown as ReadBarriers,
      log: silentLogger(),
      clock,
      dataDir: '/nowhere',
      compactEvery: 1_000_000,
      stallLimitMs: 5000,
      loopBlockedMs: () => 0,
      observer: () => ({}),
      closed: () => false,
      fail: (err: unknown) => void failures.push(err),
      onSoftState: () => undefined,
      send: () => undefined,
    } as unknown as ReadyLoopDeps);

    loop.kick();
    await started;
    expect(loop.busy).toBe(true);
    let idle = false;
    const waiting = loop.idle().then(() => {
      idle = true;
    });
    for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
    expect(idle).toBe(false); // the write is still in flight
    finishPersist();
    await waiting;
    expect(loop.busy).toBe(false);
    expect(failures).toEqual([]);
    expect(clock.now()).toBe(0);
  }, 5000);
});
