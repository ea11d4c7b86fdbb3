/**
 * A member that applies its own removal and then its own re-add (a member removed, added
 * back and started with --join replays both from the leader's log) is a member again: it
 * must not retire two election timeouts after the removal, which stopped its Raft tick and
 * every duty of the duty timer, publishing itself in the started-member record among them
 * (src/node/member-publication.ts). Regression: removedAt was never cleared.
 */
import { describe, expect, it } from 'vitest';
import type { ConfState, RawNode } from '../raft/index.js';
import { silentLogger } from '../src/log/index.js';
import { ManualClock } from '../src/node/manual-clock.js';
import { Membership } from '../src/node/membership.js';
import { PeerBook } from '../src/node/peer-book.js';
import { PendingProposals } from '../src/node/proposals.js';

function membership(clock: ManualClock, conf: { current: ConfState }): Membership {
  return new Membership({
    id: 'n3',
    raw: {} as unknown as RawNode,
    proposals: new PendingProposals(clock),
    log: silentLogger(),
    clock,
    book: new PeerBook('n3', new Map(), new Map(), new Map(), conf.current),
    setPeers: () => {},
    soft: () => ({ role: 'follower', leader: 'n1', term: 2 }),
    conf: () => conf.current,
    kick: () => {},
  });
}

describe('a member removed and added back', () => {
  it('does not retire once its re-add is applied', () => {
    const clock = new ManualClock();
    const conf = { current: { voters: ['n1', 'n2', 'n3'], learners: [] } as ConfState };
    const m = membership(clock, conf);
    conf.current = { voters: ['n1', 'n2'], learners: [] };
    m.onApplied({ type: 'removeNode', node: 'n3' }, 10);
    conf.current = { voters: ['n1', 'n2'], learners: ['n3'] };
    m.onApplied({ type: 'addLearner', node: 'n3' }, 11);
    clock.advance(5_000);
    expect(m.retired(1_000)).toBe(false);
  });

  it('still retires when removed for good', () => {
    const clock = new ManualClock();
    const conf = { current: { voters: ['n1', 'n2', 'n3'], learners: [] } as ConfState };
    const m = membership(clock, conf);
    conf.current = { voters: ['n1', 'n2'], learners: [] };
    m.onApplied({ type: 'removeNode', node: 'n3' }, 10);
    clock.advance(5_000);
    expect(m.retired(1_000)).toBe(true);
  });
});
