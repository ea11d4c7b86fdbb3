/**
 * When the Ready loop's messages reach the transport relative to the node's own log write:
 * a Ready's `messages` (those the core lets leave before the write, such as the leader's
 * appends) are flushed to the sockets BEFORE the write starts, since encoding and write()
 * hold the event loop; what the core releases at advance() (a follower's append and vote
 * acknowledgements) is sent only once the write is durable.
 */
import { describe, expect, it } from 'vitest';
import type { Message, RawNode, Ready } from '../raft/index.js';
import { ReadyLoop } from '../src/node/ready-loop.js';
import type { NodeStorage } from '../src/storage/index.js';
import { readyLoopDeps } from './helpers/ready-loop.js';

const msg = (type: string, to: string) => ({ type, from: 'a', to, term: 1 }) as unknown as Message;

/** Runs one Ready through a ReadyLoop whose parts record what happens, in order. */
async function runOne(rd: Ready, acks: readonly Message[]): Promise<string[]> {
  const events: string[] = [];
  let readies = 1;
  const raw = {
    hasReady: () => readies > 0,
    ready: () => {
      readies--;
      return rd;
    },
    advance: () => {
      events.push('advance');
      return acks;
    },
    takeMessages: () => [],
  } as unknown as RawNode;
  let finished!: () => void;
  const done = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const storage = {
    persist: async () => {
      events.push('persist start');
      await new Promise<void>((resolve) => setImmediate(resolve));
      events.push('persist durable');
    },
    firstIndex: () => 1,
  } as unknown as NodeStorage;
  const { deps, failures } = readyLoopDeps({
    raw,
    storage,
    send: (messages: readonly Message[]) => {
      if (messages.length > 0) events.push(`send ${messages.map((m) => m.type).join(',')}`);
      if (messages === acks) finished();
    },
    flushSends: () => void events.push('flush'),
  });
  const loop = new ReadyLoop(deps);
  loop.kick();
  await done;
  await loop.idle();
  expect(failures).toEqual([]);
  return events;
}

const entry = { index: 1, term: 1, type: 'normal', data: new Uint8Array([1]) };
const ready = (messages: readonly Message[], withEntries: boolean): Ready =>
  ({
    softState: null,
    messages,
    entries: withEntries ? [entry] : [],
    snapshot: null,
    committedEntries: [],
    hardState: withEntries ? { term: 1, vote: null, commit: 0 } : null,
    mustSync: withEntries,
    readStates: [],
  }) as unknown as Ready;

describe('ReadyLoop: messages and the log write', () => {
  it("flushes the leader's appends to the sockets before its own log write starts", async () => {
    const app = [msg('app', 'b'), msg('app', 'c')];
    const events = await runOne(ready(app, true), []);
    expect(events).toEqual(['send app,app', 'flush', 'persist start', 'persist durable', 'advance']);
  });

  it("sends a follower's acknowledgement only once its write is durable, and flushes none of it early", async () => {
    const ack = [msg('appResp', 'a')];
    const events = await runOne(ready([], true), ack);
    expect(events).toEqual(['persist start', 'persist durable', 'advance', 'send appResp']);
  });

  it('leaves messages of a Ready with nothing to write to the transport’s own flush', async () => {
    const events = await runOne(ready([msg('heartbeat', 'b')], false), []);
    expect(events).toEqual(['send heartbeat', 'advance']);
  });
});
