/**
 * ReadBarriers (src/node/reads.ts) against a scripted ReadIndex source: one round in
 * flight, reads that arrive during a round share the next one and are never answered by
 * the round in flight, lost rounds are asked again, leader changes abandon the round, and
 * every read ends by its deadline.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/node/clock.js';
import { NodeError } from '../src/node/errors.js';
import { ReadBarriers, ROUND_RETRY_MS } from '../src/node/reads.js';

class FakeSource {
  /** Contexts of the ReadIndex requests sent, in order. */
  readonly requests: Uint8Array[] = [];
  applied = 0;
  currentLeader: string | null = 'n1';
  readonly noLeaderWaitMs = 300;

  requestReadIndex(context: Uint8Array): { ok: true } | { ok: false; error: NodeError } {
    if (this.currentLeader === null) return { ok: false, error: new NodeError('NO_LEADER', 'no leader') };
    this.requests.push(context);
    return { ok: true };
  }

  appliedIndex(): number {
    return this.applied;
  }

  hasLeader(): boolean {
    return this.currentLeader !== null;
  }

  leader(): string | null {
    return this.currentLeader;
  }
}

type Outcome = { ok: true; applied: number } | { ok: false; code: string };

function track(p: Promise<number>): { outcome: Outcome | null } {
  const t: { outcome: Outcome | null } = { outcome: null };
  p.then(
    (applied) => (t.outcome = { ok: true, applied }),
    (err: NodeError) => (t.outcome = { ok: false, code: err.code }),
  );
  return t;
}

/** Lets setImmediate flushes and promise callbacks run. */
const turn = async (): Promise<void> => {
  await vi.advanceTimersByTimeAsync(0);
};

describe('ReadBarriers', () => {
  let src: FakeSource;
  let rb: ReadBarriers;

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'Date'] });
    src = new FakeSource();
    // The system clock's timers, reading the time vi.useFakeTimers fakes (Date).
    rb = new ReadBarriers(src, { ...systemClock, now: () => Date.now() });
  });

  afterEach(() => {
    rb.close(new NodeError('SHUTTING_DOWN', 'test over'));
    vi.useRealTimers();
  });

  const answer = (round: number, index: number): void => rb.onReadState({ context: src.requests[round]!, index });

  it('keeps one round in flight: N reads during a round share the next round, not N rounds', async () => {
    const first = Array.from({ length: 5 }, () => track(rb.barrier(5000)));
    await turn();
    expect(src.requests.length).toBe(1);

    // 50 reads arrive one per event-loop turn while round 0 is in flight: no new request.
    const during: { outcome: Outcome | null }[] = [];
    for (let i = 0; i < 50; i++) {
      during.push(track(rb.barrier(5000)));
      await turn();
    }
    expect(src.requests.length).toBe(1);

    src.applied = 7;
    answer(0, 7);
    await turn();
    expect(first.map((t) => t.outcome)).toEqual(first.map(() => ({ ok: true, applied: 7 })));
    // Round 0 started before these reads arrived: it must not answer them.
    expect(during.every((t) => t.outcome === null)).toBe(true);
    // They share exactly one more round.
    expect(src.requests.length).toBe(2);
    expect(rb.stats).toEqual({ rounds: 2, abandoned: 0 });

    src.applied = 9;
    answer(1, 9);
    await turn();
    expect(during.map((t) => t.outcome)).toEqual(during.map(() => ({ ok: true, applied: 9 })));
    await turn();
    expect(src.requests.length).toBe(2); // nothing queued: no further round
  });

  it('does not answer a read from the round that was in flight when it arrived, even if that answer comes late', async () => {
    const a = track(rb.barrier(5000));
    await turn();
    const b = track(rb.barrier(5000)); // arrives while round 0 is in flight
    await turn();
    src.applied = 3;
    answer(0, 3);
    await turn();
    expect(a.outcome).toEqual({ ok: true, applied: 3 });
    expect(b.outcome).toBeNull();
    // Replaying round 0's answer changes nothing for b.
    answer(0, 3);
    await turn();
    expect(b.outcome).toBeNull();
    answer(1, 3);
    await turn();
    expect(b.outcome).toEqual({ ok: true, applied: 3 });
  });

  it('waits until the read index is applied here', async () => {
    const a = track(rb.barrier(5000));
    await turn();
    src.applied = 4;
    answer(0, 10);
    await turn();
    expect(a.outcome).toBeNull();
    src.applied = 10;
    rb.onApplied(10);
    await turn();
    expect(a.outcome).toEqual({ ok: true, applied: 10 });
  });

  it("asks again when a round gets no answer, and ignores that round's late answer", async () => {
    const a = track(rb.barrier(5000));
    await turn();
    expect(src.requests.length).toBe(1);
    const b = track(rb.barrier(5000));
    // (+1: an immediate queued by a timer at the end of an advance runs on the next one)
    await vi.advanceTimersByTimeAsync(ROUND_RETRY_MS + 1);
    // The lost round is abandoned; a and b go together in the new round.
    expect(src.requests.length).toBe(2);
    expect(rb.stats).toEqual({ rounds: 2, abandoned: 1 });
    answer(0, 5); // the abandoned round's late answer: ignored
    src.applied = 5;
    await turn();
    expect([a.outcome, b.outcome]).toEqual([null, null]);
    answer(1, 5);
    await turn();
    expect([a.outcome, b.outcome]).toEqual([
      { ok: true, applied: 5 },
      { ok: true, applied: 5 },
    ]);
  });

  it('abandons the round in flight when a read arrives after the leader changed', async () => {
    const a = track(rb.barrier(5000));
    await turn();
    src.currentLeader = 'n2';
    const b = track(rb.barrier(5000));
    await turn();
    expect(src.requests.length).toBe(2);
    expect(rb.stats.abandoned).toBe(1);
    src.applied = 2;
    answer(1, 2);
    await turn();
    expect([a.outcome, b.outcome]).toEqual([
      { ok: true, applied: 2 },
      { ok: true, applied: 2 },
    ]);
  });

  it('fails a read by its deadline when no round ever answers (TIMEOUT with a leader, NO_LEADER without)', async () => {
    const a = track(rb.barrier(1200));
    await vi.advanceTimersByTimeAsync(1199);
    expect(a.outcome).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect(a.outcome).toEqual({ ok: false, code: 'TIMEOUT' });
    expect(rb.stats.rounds).toBe(3); // asked at 0, 500 and 1000 ms

    src.currentLeader = null;
    const b = track(rb.barrier(5000));
    await vi.advanceTimersByTimeAsync(src.noLeaderWaitMs + 50);
    expect(b.outcome).toEqual({ ok: false, code: 'NO_LEADER' });
  });

  it('serves reads queued while leaderless once a leader is known', async () => {
    src.currentLeader = null;
    const a = track(rb.barrier(5000));
    await vi.advanceTimersByTimeAsync(100);
    expect(src.requests.length).toBe(0);
    src.currentLeader = 'n3';
    await vi.advanceTimersByTimeAsync(50);
    expect(src.requests.length).toBe(1);
    src.applied = 1;
    answer(0, 1);
    await turn();
    expect(a.outcome).toEqual({ ok: true, applied: 1 });
  });

  it('fails every waiting read on close, wherever it waits', async () => {
    const a = track(rb.barrier(5000));
    await turn();
    const b = track(rb.barrier(5000));
    await turn();
    answer(0, 9); // a now waits for apply, b for the next round
    await turn();
    rb.close(new NodeError('SHUTTING_DOWN', 'closing'));
    await turn();
    expect([a.outcome, b.outcome]).toEqual([
      { ok: false, code: 'SHUTTING_DOWN' },
      { ok: false, code: 'SHUTTING_DOWN' },
    ]);
  });
});
