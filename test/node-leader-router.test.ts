/**
 * The one retry loop that sends client work to this node or to the leader
 * (src/node/leader-router.ts), driven by a virtual clock: waiting "for a leader change"
 * advances time instead of sleeping.
 */
import { describe, expect, it } from 'vitest';
import { NodeError } from '../src/node/errors.js';
import { ForwardFailure } from '../src/node/forwarding.js';
import type { RouteSpec } from '../src/node/leader-router.js';
import { LeaderRouter } from '../src/node/leader-router.js';

function world(initialLeader: string | null) {
  let now = 0;
  const state = {
    leader: initialLeader,
    connected: new Set(['n2', 'n3']),
    waits: [] as number[],
    onWait: (_ms: number) => {},
  };
  const router = new LeaderRouter({
    id: 'n1',
    clock: { now: () => now, wallNow: () => 1_000_000 + now },
    assertOpen: () => {},
    leader: () => state.leader,
    isConnected: (p) => state.connected.has(p),
    whenLeaderMayHaveChanged: async (ms) => {
      state.waits.push(ms);
      now += ms;
      state.onWait(ms);
    },
  });
  return { router, state, now: () => now };
}

const base: Omit<RouteSpec<string>, 'forward'> = {
  here: () => false,
  runHere: () => 'here',
  retryable: (err) => err instanceof ForwardFailure || (err instanceof NodeError && err.code === 'NO_LEADER'),
  onDeadline: (unknown) => new NodeError('TIMEOUT', unknown ? 'may have applied' : 'nobody took it'),
  waitMs: 100,
};

describe('LeaderRouter', () => {
  it('does the work here when this node can', async () => {
    const w = world('n1');
    expect(await w.router.route({ ...base, here: () => true, forward: async () => 'there' }, 1000)).toBe('here');
  });

  it('forwards to the leader, and after the leader went away to its successor at once', async () => {
    const w = world('n2');
    const sentTo: string[] = [];
    const answer = await w.router.route(
      {
        ...base,
        forward: async (leader) => {
          sentTo.push(leader);
          if (leader === 'n2') {
            w.state.leader = 'n3'; // the leader change that failed it named a successor
            throw new ForwardFailure('peer-gone', 'n2', 'n2 went away');
          }
          return `answered by ${leader}`;
        },
      },
      1000,
    );
    expect(answer).toBe('answered by n3');
    expect(sentTo).toEqual(['n2', 'n3']);
    expect(w.state.waits).toEqual([]); // no wait: the successor was known and connected
  });

  it('gives up at the deadline saying the outcome is unknown once a copy may have applied', async () => {
    const w = world('n2');
    const err = await w.router
      .route({ ...base, forward: async () => Promise.reject(new ForwardFailure('peer-gone', 'n2', 'gone')) }, 1000)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT', message: 'may have applied' });
    expect(w.now()).toBeGreaterThanOrEqual(1000);
  });

  it('answers NO_LEADER soon when there is no leader at all, rather than at the deadline', async () => {
    const w = world(null);
    const err = await w.router
      .route({ ...base, forward: async () => 'never', noLeaderMs: 300 }, 5000)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'NO_LEADER' });
    expect(w.now()).toBeGreaterThan(300);
    expect(w.now()).toBeLessThan(500);
  });

  it('waits while the leader is this node catching up (here() false), then does the work here', async () => {
    const w = world('n1');
    let ready = false;
    w.state.onWait = () => {
      ready = true;
    };
    expect(await w.router.route({ ...base, here: () => ready, forward: async () => 'there' }, 1000)).toBe('here');
    expect(w.state.waits).toEqual([100]);
  });

  it('hands a failure that is not safe to retry straight back', async () => {
    const w = world('n2');
    const refusal = new NodeError('CONF_CHANGE_INVALID', 'no such member');
    await expect(w.router.route({ ...base, forward: async () => Promise.reject(refusal) }, 1000)).rejects.toBe(refusal);
  });

  it('caps each forwarded attempt at attemptMs', async () => {
    const w = world('n2');
    const given: number[] = [];
    await w.router.route(
      {
        ...base,
        attemptMs: 250,
        forward: async (_l, left) => {
          given.push(left);
          return 'ok';
        },
      },
      1000,
    );
    expect(given).toEqual([250]);
  });
});
