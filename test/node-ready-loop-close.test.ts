/**
 * Closing a node waits for the Ready being written (ReadyLoop.idle) so nothing is left
 * half-written. That write finishes in real time, whatever clock the node's logic runs on:
 * on virtual time (ManualClock) the wait must end when the write does, with no one moving
 * the clock.
 */
import { describe, expect, it } from 'vitest';
import type { RawNode, Ready } from '../raft/index.js';
import { ManualClock } from '../src/node/manual-clock.js';
import { ReadyLoop } from '../src/node/ready-loop.js';
import type { NodeStorage } from '../src/storage/index.js';
import { readyLoopDeps } from './helpers/ready-loop.js';

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
    const { deps, failures } = readyLoopDeps({ raw, storage, clock });
    const loop = new ReadyLoop(deps);

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
