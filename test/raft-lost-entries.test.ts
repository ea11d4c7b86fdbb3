/**
 * A leader whose follower rejects an append with a hint below the follower's Match: the
 * follower lost entries it acknowledged (its data directory wiped and the member started
 * again). The core reports it once per follower per leadership for the host to log
 * (RaftConfig.onFollowerLostEntries), and replicates as before: it never backs below
 * Match + 1 (as etcd's raft, Progress.MaybeDecrTo), so such a follower stays stuck until it
 * is removed and added back (docs/operations.md).
 */
import { describe, expect, it } from 'vitest';
import type { AppendMessage, AppendResponseMessage, NodeId } from '../raft/messages.js';
import { SeededRandom } from '../raft/rand.js';
import { RawNode } from '../raft/rawnode.js';
import { MemoryStorage } from '../raft/storage.js';
import { allMessages, enc, flush } from './helpers/raft-network.js';

function leaderOf3(reports: { follower: NodeId; match: number; followerLastIndex: number }[]) {
  const storage = new MemoryStorage({ voters: ['n1', 'n2', 'n3'], learners: [] });
  const raw = new RawNode({
    id: 'n1',
    storage,
    electionTick: 10,
    heartbeatTick: 1,
    random: new SeededRandom(1),
    preVote: false,
    checkQuorum: false,
    onFollowerLostEntries: (follower, match, followerLastIndex) => reports.push({ follower, match, followerLastIndex }),
  });
  raw.campaign();
  flush(raw, storage);
  raw.step({ type: 'voteResponse', from: 'n2', to: 'n1', term: 1, reject: false });
  flush(raw, storage);
  expect(raw.softState().role).toBe('leader');
  return { raw, storage };
}

const response = (
  from: NodeId,
  index: number,
  reject: boolean,
  hintIndex = 0,
  hintTerm = 0,
): AppendResponseMessage => ({
  type: 'appendResponse',
  from,
  to: 'n1',
  term: 1,
  index,
  reject,
  hintIndex,
  hintTerm,
});

describe('a follower that lost entries it acknowledged', () => {
  it('is reported once, and the leader keeps probing at Match + 1', () => {
    const reports: { follower: NodeId; match: number; followerLastIndex: number }[] = [];
    const { raw, storage } = leaderOf3(reports);
    for (const s of ['a', 'b', 'c']) raw.propose(enc(s));
    flush(raw, storage);
    const last = raw.status().lastIndex; // the no-op and three entries
    raw.step(response('n2', last, false));
    raw.step(response('n3', last, false));
    flush(raw, storage);
    expect(raw.status().progress.find((p) => p.id === 'n3')?.match).toBe(last);
    expect(reports).toEqual([]);

    // n3 comes back empty. Its rejection of an append at prevIndex `last` (= Match) is
    // dropped as stale by the leader in replicate state, but reported.
    raw.step(response('n3', last, true, 0, 0));
    flush(raw, storage);
    expect(reports).toEqual([{ follower: 'n3', match: last, followerLastIndex: 0 }]);
    // Raft's handling is unchanged: a rejection above Match sends the leader back to
    // probing at Match (prevIndex `last`), and a rejection of that probe sends it again,
    // never below: the wiped follower never catches up, it has to be added back.
    raw.propose(enc('d'));
    raw.propose(enc('e'));
    flush(raw, storage);
    raw.step(response('n3', last + 1, true, 0, 0));
    let probes = allMessages(flush(raw, storage)).filter(
      (m): m is AppendMessage => m.type === 'append' && m.to === 'n3',
    );
    expect(probes.map((m) => m.prevIndex)).toEqual([last]);
    raw.step(response('n3', last, true, 0, 0));
    probes = allMessages(flush(raw, storage)).filter((m): m is AppendMessage => m.type === 'append' && m.to === 'n3');
    expect(probes.map((m) => m.prevIndex)).toEqual([last]);
    // Reported once per follower.
    expect(reports).toHaveLength(1);
  });

  it('is not reported for an ordinary conflict at or above Match', () => {
    const reports: { follower: NodeId; match: number; followerLastIndex: number }[] = [];
    const { raw, storage } = leaderOf3(reports);
    raw.propose(enc('a'));
    flush(raw, storage);
    // n2 has acknowledged nothing (Match 0) and rejects with a hint at its last index.
    raw.step(response('n2', 2, true, 1, 1));
    raw.step(response('n2', 2, true, 0, 0));
    flush(raw, storage);
    expect(reports).toEqual([]);
  });
});
