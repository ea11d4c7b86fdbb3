/**
 * ForwardedRequests: what a follower's forwarded request becomes when it cannot be sent,
 * when the peer it went to goes away, and when the answer comes.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeError } from '../src/node/errors.js';
import { ForwardedRequests, ForwardFailure } from '../src/node/forwarding.js';

describe('ForwardedRequests', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a request the transport refused fails at once as not-sent (safe to send again)', async () => {
    const f = new ForwardedRequests();
    const err = await f.request('n1', 5000, () => false).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForwardFailure);
    expect(err).toMatchObject({ kind: 'not-sent', peer: 'n1', code: 'PROPOSAL_DROPPED' });
  });

  it('failPeer fails only the requests that went to that peer, as peer-gone', async () => {
    const f = new ForwardedRequests();
    const reqs: number[] = [];
    const toA = f.request<string>('a', 5000, (r) => {
      reqs.push(r);
      return true;
    });
    const toB = f.request<string>('b', 5000, (r) => {
      reqs.push(r);
      return true;
    });
    f.failPeer('a', 'the connection to a dropped');
    await expect(toA).rejects.toMatchObject({ kind: 'peer-gone', peer: 'a' });
    f.settle(reqs[1]!, { ok: true, value: 'answered' });
    await expect(toB).resolves.toBe('answered');
    // A late answer for the failed request is ignored.
    f.settle(reqs[0]!, { ok: true, value: 'late' });
  });

  it('a leadership change fails leader-bound requests only; admin work waits for its answer', async () => {
    const f = new ForwardedRequests();
    const reqs: number[] = [];
    const proposal = f.request<string>('a', 5000, (r) => {
      reqs.push(r);
      return true;
    });
    const transfer = f.request<string>(
      'a',
      5000,
      (r) => {
        reqs.push(r);
        return true;
      },
      false,
    );
    f.failPeer('a', 'leadership moved from a', 'leader-bound');
    await expect(proposal).rejects.toMatchObject({ kind: 'peer-gone' });
    f.settle(reqs[1]!, { ok: true, value: 'transferred' });
    await expect(transfer).resolves.toBe('transferred');
  });

  it('a request nobody answers fails with TIMEOUT at its deadline', async () => {
    vi.useFakeTimers();
    const f = new ForwardedRequests();
    const p = f.request('a', 1000, () => true).catch((e: unknown) => e);
    vi.advanceTimersByTime(1000);
    const err = await p;
    expect(err).toBeInstanceOf(NodeError);
    expect(err).not.toBeInstanceOf(ForwardFailure);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
  });
});
