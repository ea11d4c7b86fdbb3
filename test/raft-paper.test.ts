/**
 * The Raft paper, sentence by sentence (https://raft.github.io/raft.pdf), in the manner
 * of etcd's raft_paper_test.go: each test sets up a small state by hand, drives the core
 * through its public RawNode API and checks the messages and state that come out. Each
 * test names the section it checks.
 *
 * Unless a test says otherwise the nodes run plain Raft (no PreVote, no CheckQuorum),
 * with electionTick 10 and heartbeatTick 1.
 */
import { describe, expect, it } from 'vitest';
import type {
  AppendMessage,
  AppendResponseMessage,
  Entry,
  HardState,
  HeartbeatMessage,
  Message,
  NodeId,
  VoteMessage,
  VoteResponseMessage,
} from '../raft/messages.js';
import type { RawNode } from '../raft/rawnode.js';
import type { MemoryStorage } from '../raft/storage.js';
import type { Flushed, RawNodeOptions } from './helpers/raft-network.js';
import {
  allMessages,
  enc,
  entriesWithTerms,
  flush,
  ids3,
  makeRawNode,
  makeStorage,
  Network,
  testSeed,
  testSeeds,
  withSeed,
} from './helpers/raft-network.js';

const FILE = 'test/raft-paper.test.ts';
const PLAIN: RawNodeOptions = { preVote: false, checkQuorum: false };

// ---- small builders --------------------------------------------------------------------

function idsBySize(n: number): NodeId[] {
  return Array.from({ length: n }, (_, i) => `n${i + 1}`);
}

interface Lone {
  readonly raw: RawNode;
  readonly storage: MemoryStorage;
}

function lone(
  opts: {
    voters?: readonly NodeId[];
    terms?: readonly number[];
    hardState?: HardState;
    seed?: number;
    id?: NodeId;
  } & RawNodeOptions = {},
): Lone {
  const storage = makeStorage({
    voters: opts.voters ?? ids3,
    ...(opts.terms ? { terms: opts.terms } : {}),
    ...(opts.hardState ? { hardState: opts.hardState } : {}),
  });
  const raw = makeRawNode(opts.id ?? 'n1', storage, opts.seed ?? 1, { ...PLAIN, ...opts });
  return { raw, storage };
}

function entry(index: number, term: number, data = `e${index}`): Entry {
  return { index, term, type: 'normal', data: enc(data) };
}

function noop(index: number, term: number): Entry {
  return { index, term, type: 'normal', data: new Uint8Array(0) };
}

function append(
  from: NodeId,
  to: NodeId,
  term: number,
  prevIndex: number,
  prevTerm: number,
  entries: Entry[],
  commit: number,
): AppendMessage {
  return { type: 'append', from, to, term, prevIndex, prevTerm, entries, commit };
}

function appendOk(from: NodeId, to: NodeId, term: number, index: number): AppendResponseMessage {
  return { type: 'appendResponse', from, to, term, index, reject: false, hintIndex: 0, hintTerm: 0 };
}

function voteReq(from: NodeId, to: NodeId, term: number, lastIndex: number, lastTerm: number): VoteMessage {
  return { type: 'vote', from, to, term, lastIndex, lastTerm, transfer: false };
}

function voteResp(from: NodeId, to: NodeId, term: number, reject: boolean): VoteResponseMessage {
  return { type: 'voteResponse', from, to, term, reject };
}

function heartbeat(from: NodeId, to: NodeId, term: number, commit: number): HeartbeatMessage {
  return { type: 'heartbeat', from, to, term, commit, context: 0 };
}

const byTo = (a: Message, b: Message): number => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0);
type MessageOf<T extends Message['type']> = Message & { readonly type: T };
const ofType = <T extends Message['type']>(msgs: readonly Message[], type: T): MessageOf<T>[] =>
  msgs.filter((m): m is MessageOf<T> => m.type === type);

function role(raw: RawNode): string {
  return raw.status().softState.role;
}

function term(raw: RawNode): number {
  return raw.status().hardState.term;
}

function committed(raw: RawNode): number {
  return raw.status().hardState.commit;
}

function logTerms(raw: RawNode): number[] {
  const st = raw.status();
  const out: number[] = [];
  for (let i = st.firstIndex; i <= st.lastIndex; i++) {
    const t = raw.termAt(i);
    out.push(typeof t === 'number' ? t : -1);
  }
  return out;
}

/** Makes a lone node leader: it campaigns and every peer grants. Returns the leader's first flush (with the no-op appends). */
function becomeLeader(n: Lone): Flushed {
  n.raw.campaign();
  const f = flush(n.raw, n.storage);
  const t = term(n.raw);
  for (const m of ofType(f.acks, 'vote')) n.raw.step(voteResp(m.to, m.from, t, false));
  return flush(n.raw, n.storage);
}

/** Acknowledges every append in `msgs` as the followers would after storing it; returns the next flush. */
function ackAppends(n: Lone, msgs: readonly Message[], only?: readonly NodeId[]): Flushed {
  for (const m of ofType(msgs, 'append')) {
    if (only && !only.includes(m.to)) continue;
    n.raw.step(appendOk(m.to, m.from, m.term, m.prevIndex + m.entries.length));
  }
  return flush(n.raw, n.storage);
}

/** Leader elected and its no-op committed by every follower. */
function leaderWithCommittedNoop(opts: Parameters<typeof lone>[0] = {}): Lone {
  const n = lone(opts);
  const f = becomeLeader(n);
  ackAppends(n, f.messages);
  return n;
}

// ---- §5.1 ------------------------------------------------------------------------------

describe('§5.1 Raft basics: terms', () => {
  it('a follower updates its current term from a message with a larger term (§5.1)', () => {
    const n = lone({ hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(heartbeat('n2', 'n1', 2, 0));
    expect(term(n.raw)).toBe(2);
    expect(n.raw.status().softState).toEqual({ role: 'follower', leader: 'n2', term: 2 });
  });

  it('a candidate that discovers a larger term reverts to follower (§5.1)', () => {
    const n = lone();
    n.raw.campaign();
    flush(n.raw, n.storage);
    expect(role(n.raw)).toBe('candidate');
    n.raw.step(append('n2', 'n1', 2, 0, 0, [], 0));
    expect(term(n.raw)).toBe(2);
    expect(role(n.raw)).toBe('follower');
  });

  it('a leader that discovers a larger term reverts to follower (§5.1)', () => {
    const n = leaderWithCommittedNoop();
    expect(role(n.raw)).toBe('leader');
    n.raw.step(appendOk('n2', 'n1', 5, 1)); // a response from a node that moved on to term 5
    expect(term(n.raw)).toBe(5);
    expect(role(n.raw)).toBe('follower');
    // A vote request with a larger term does the same (no CheckQuorum lease here).
    const m = leaderWithCommittedNoop();
    m.raw.step(voteReq('n3', 'n1', 7, 1, 1));
    expect(term(m.raw)).toBe(7);
    expect(role(m.raw)).toBe('follower');
  });

  it('a request with a stale term is rejected: nothing is appended and the reply carries the newer term (§5.1)', () => {
    // CheckQuorum on: the stale leader is told about the newer term instead of being ignored.
    const n = lone({ terms: [1], hardState: { term: 2, vote: null, commit: 0 }, checkQuorum: true });
    n.raw.step(append('n2', 'n1', 1, 1, 1, [entry(2, 1)], 1));
    n.raw.step(voteReq('n3', 'n1', 1, 5, 1));
    const f = flush(n.raw, n.storage);
    expect(n.raw.status().lastIndex).toBe(1);
    expect(committed(n.raw)).toBe(0);
    expect(term(n.raw)).toBe(2);
    const out = allMessages(f);
    expect(ofType(out, 'voteResponse').filter((m) => !m.reject)).toEqual([]);
    for (const m of out) expect(m.term).toBe(2);
    expect(ofType(out, 'appendResponse').map((m) => m.to)).toEqual(['n2']);

    // The stale leader, on hearing it, steps down to the newer term.
    const old = leaderWithCommittedNoop({ checkQuorum: true });
    const resp = ofType(out, 'appendResponse')[0]!;
    old.raw.step({ ...resp, from: 'n2', to: 'n1' });
    expect(role(old.raw)).toBe('follower');
    expect(term(old.raw)).toBe(2);
  });
});

// ---- §5.2 ------------------------------------------------------------------------------

describe('§5.2 Leader election', () => {
  it('servers start up as followers (§5.2)', () => {
    const n = lone();
    expect(n.raw.status().softState).toEqual({ role: 'follower', leader: null, term: 0 });
  });

  it('a leader sends empty heartbeats to every follower each heartbeat interval (§5.2)', () => {
    const n = leaderWithCommittedNoop();
    n.raw.tick();
    const f = flush(n.raw, n.storage);
    const beats = ofType(f.messages, 'heartbeat').sort(byTo);
    expect(beats).toEqual([
      { type: 'heartbeat', from: 'n1', to: 'n2', term: 1, commit: 1, context: 0 },
      { type: 'heartbeat', from: 'n1', to: 'n3', term: 1, commit: 1, context: 0 },
    ]);
    // Heartbeats do not wait for the disk.
    expect(ofType(f.acks, 'heartbeat')).toEqual([]);
  });

  it('a follower that hears nothing for an election timeout becomes candidate, votes for itself and requests votes (§5.2)', () => {
    const n = lone({ hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(heartbeat('n2', 'n1', 1, 0));
    flush(n.raw, n.storage);
    for (let i = 1; i < 2 * 10; i++) n.raw.tick();
    const f = flush(n.raw, n.storage);
    expect(n.raw.status().softState).toEqual({ role: 'candidate', leader: null, term: 2 });
    expect(n.raw.status().hardState.vote).toBe('n1');
    expect(ofType(allMessages(f), 'vote').sort(byTo)).toEqual([
      voteReq('n1', 'n2', 2, 0, 0),
      voteReq('n1', 'n3', 2, 0, 0),
    ]);
  });

  it('a candidate that neither wins nor loses starts a new election in the next term when its timeout elapses (§5.2)', () => {
    const n = lone();
    n.raw.campaign();
    flush(n.raw, n.storage);
    expect(n.raw.status().softState).toEqual({ role: 'candidate', leader: null, term: 1 });
    for (let i = 1; i < 2 * 10; i++) n.raw.tick();
    const f = flush(n.raw, n.storage);
    expect(n.raw.status().softState).toEqual({ role: 'candidate', leader: null, term: 2 });
    expect(ofType(allMessages(f), 'vote').sort(byTo)).toEqual([
      voteReq('n1', 'n2', 2, 0, 0),
      voteReq('n1', 'n3', 2, 0, 0),
    ]);
  });

  it('one round of RequestVote: the candidate wins with a majority, loses to a majority of denials, or waits (§5.2)', () => {
    const cases: { size: number; votes: Record<string, boolean>; want: string }[] = [
      // wins with votes from a majority
      { size: 1, votes: {}, want: 'leader' },
      { size: 3, votes: { n2: true, n3: true }, want: 'leader' },
      { size: 3, votes: { n2: true }, want: 'leader' },
      { size: 5, votes: { n2: true, n3: true, n4: true, n5: true }, want: 'leader' },
      { size: 5, votes: { n2: true, n3: true, n4: true }, want: 'leader' },
      { size: 5, votes: { n2: true, n3: true }, want: 'leader' },
      // a majority of denials: back to follower
      { size: 3, votes: { n2: false, n3: false }, want: 'follower' },
      { size: 5, votes: { n2: false, n3: false, n4: false, n5: false }, want: 'follower' },
      { size: 5, votes: { n2: true, n3: false, n4: false, n5: false }, want: 'follower' },
      // undecided: stays candidate
      { size: 3, votes: {}, want: 'candidate' },
      { size: 5, votes: { n2: true }, want: 'candidate' },
      { size: 5, votes: { n2: false, n3: false }, want: 'candidate' },
      { size: 5, votes: {}, want: 'candidate' },
    ];
    for (const [i, c] of cases.entries()) {
      const n = lone({ voters: idsBySize(c.size) });
      n.raw.campaign();
      flush(n.raw, n.storage);
      for (const [id, granted] of Object.entries(c.votes)) n.raw.step(voteResp(id, 'n1', 1, !granted));
      expect(role(n.raw), `case ${i}`).toBe(c.want);
      expect(term(n.raw), `case ${i}`).toBe(1);
    }
  });

  it('each server votes for at most one candidate in a term, first come first served (§5.2)', () => {
    const cases: { vote: NodeId | null; from: NodeId; reject: boolean }[] = [
      { vote: null, from: 'n2', reject: false },
      { vote: null, from: 'n3', reject: false },
      { vote: 'n2', from: 'n2', reject: false },
      { vote: 'n3', from: 'n3', reject: false },
      { vote: 'n2', from: 'n3', reject: true },
      { vote: 'n3', from: 'n2', reject: true },
    ];
    for (const [i, c] of cases.entries()) {
      const n = lone({ hardState: { term: 1, vote: c.vote, commit: 0 } });
      n.raw.step(voteReq(c.from, 'n1', 1, 0, 0));
      const f = flush(n.raw, n.storage);
      expect(ofType(allMessages(f), 'voteResponse'), `case ${i}`).toEqual([voteResp('n1', c.from, 1, c.reject)]);
    }
    // First come, first served: after granting n2, n3 is refused in the same term.
    const n = lone({ hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(voteReq('n2', 'n1', 1, 0, 0));
    n.raw.step(voteReq('n3', 'n1', 1, 0, 0));
    const f = flush(n.raw, n.storage);
    expect(ofType(allMessages(f), 'voteResponse')).toEqual([
      voteResp('n1', 'n2', 1, false),
      voteResp('n1', 'n3', 1, true),
    ]);
    expect(n.storage.initialState().hardState.vote).toBe('n2');
  });

  it('a candidate that hears from a leader of its term or newer returns to follower (§5.2)', () => {
    for (const t of [1, 2]) {
      const n = lone();
      n.raw.campaign();
      flush(n.raw, n.storage);
      expect(role(n.raw)).toBe('candidate');
      n.raw.step(append('n2', 'n1', t, 0, 0, [], 0));
      expect(n.raw.status().softState).toEqual({ role: 'follower', leader: 'n2', term: t });
    }
  });

  it('election timeouts are randomized over [electionTick, 2·electionTick) (§5.2)', () => {
    const et = 10;
    for (const state of ['follower', 'candidate'] as const) {
      const seen = new Set<number>();
      for (let round = 0; round < 30 * et; round++) {
        const n = lone({ seed: 1000 + round, electionTick: et });
        if (state === 'candidate') n.raw.campaign();
        flush(n.raw, n.storage);
        // The first Ready after the timeout carries the new term.
        let ticks = 0;
        while (!n.raw.hasReady()) {
          n.raw.tick();
          ticks++;
          if (ticks > 4 * et) throw new Error('no election after 4 election timeouts');
        }
        expect(n.raw.ready().hardState?.term).toBe(state === 'candidate' ? 2 : 1);
        seen.add(ticks);
      }
      const want = Array.from({ length: et }, (_, i) => et + i);
      expect(
        [...seen].sort((a, b) => a - b),
        state,
      ).toEqual(want);
    }
  });

  it('randomized timeouts make it rare for several servers to time out at once (§5.2)', () => {
    const et = 10;
    const rounds = 1000;
    let conflicts = 0;
    for (let round = 0; round < rounds; round++) {
      const nodes = idsBySize(5).map(
        (id, k) => lone({ id, voters: idsBySize(5), seed: round * 5 + k + 1, electionTick: et }).raw,
      );
      let timedOut = 0;
      while (timedOut === 0) {
        for (const r of nodes) {
          r.tick();
          if (r.hasReady() && role(r) !== 'follower') timedOut++;
        }
      }
      if (timedOut > 1) conflicts++;
    }
    expect(conflicts / rounds).toBeLessThanOrEqual(0.3);
  });

  it('split votes: no candidate wins, each times out, and a later term elects exactly one leader (§5.2)', () => {
    const net = new Network({ voters: idsBySize(4), ...PLAIN, seed: testSeed(7) });
    // n1 and n2 campaign at the same time; n3 hears n1 first and n4 hears n2 first.
    net.node('n1').rn.campaign();
    net.node('n2').rn.campaign();
    net.drive('n1');
    net.drive('n2');
    net.cutOneWay('n1', 'n4');
    net.cutOneWay('n2', 'n3');
    net.deliver();
    expect(net.node('n1').role).toBe('candidate');
    expect(net.node('n2').role).toBe('candidate');
    expect(net.node('n1').term).toBe(1);
    expect(net.node('n2').term).toBe(1);
    expect(net.leadersNow()).toEqual([]);
    net.recover();
    const l = net.waitLeader(100);
    expect(net.node(l).term).toBeGreaterThanOrEqual(2);
    expect(net.leadersNow()).toEqual([l]);
  });

  it('Election Safety: at most one leader per term, over many seeded runs with loss, reordering and crashes (§5.2)', () => {
    const name = 'Election Safety: at most one leader per term';
    let termsWithLeader = 0;
    for (const seed of testSeeds(testSeed(100), 24)) {
      withSeed(FILE, name, seed, () => {
        const preVote = seed % 2 === 0;
        const net = new Network({
          voters: idsBySize(5),
          seed,
          preVote,
          checkQuorum: preVote,
          record: false,
          electionTick: 5,
        });
        const rng = net.rng;
        for (let step = 0; step < 400; step++) {
          for (const id of net.upIds()) {
            net.node(id).rn.tick();
            net.drive(id);
          }
          net.deliverRandom(Math.ceil(net.queue.length * 0.7), 0.2, 0.05);
          if (rng.int(40) === 0) {
            const up = net.upIds();
            if (up.length > 3) net.crash(up[rng.int(up.length)]!);
          }
          if (rng.int(15) === 0) {
            const down = net.ids().filter((id) => !net.node(id).up);
            if (down.length > 0) net.restart(down[rng.int(down.length)]!);
          }
        }
        // The network checks Election Safety on every step; count what it saw.
        termsWithLeader += net.leaders.size;
      });
    }
    expect(termsWithLeader).toBeGreaterThan(0);
  });
});

// ---- §5.3 ------------------------------------------------------------------------------

describe('§5.3 Log replication', () => {
  it('a new leader appends a no-op entry of its term and replicates it (§5.2, §8)', () => {
    const n = lone({ terms: [1, 1], hardState: { term: 1, vote: null, commit: 0 } });
    const f = becomeLeader(n);
    expect(term(n.raw)).toBe(2);
    const rd = f.readies[0]!;
    expect(rd.entries).toEqual([noop(3, 2)]);
    expect(ofType(f.messages, 'append').sort(byTo)).toEqual([
      append('n1', 'n2', 2, 2, 1, [noop(3, 2)], 0),
      append('n1', 'n3', 2, 2, 1, [noop(3, 2)], 0),
    ]);
  });

  it('the leader appends a proposal to its log and sends it with the preceding (index, term) to every follower (§5.3)', () => {
    const n = leaderWithCommittedNoop();
    const res = n.raw.propose(enc('some data'));
    expect(res.ok && res.value).toEqual({ firstIndex: 2, lastIndex: 2, term: 1 });
    const f = flush(n.raw, n.storage);
    expect(f.readies[0]!.entries).toEqual([entry(2, 1, 'some data')]);
    expect(f.readies[0]!.mustSync).toBe(true);
    expect(ofType(f.messages, 'append').sort(byTo)).toEqual([
      append('n1', 'n2', 1, 1, 1, [entry(2, 1, 'some data')], 1),
      append('n1', 'n3', 1, 1, 1, [entry(2, 1, 'some data')], 1),
    ]);
    expect(committed(n.raw)).toBe(1);
  });

  it('once a majority stored an entry the leader commits it, hands it out to apply, and tells the followers (§5.3)', () => {
    const n = leaderWithCommittedNoop();
    n.raw.propose(enc('some data'));
    const sent = flush(n.raw, n.storage);
    const f = ackAppends(n, sent.messages, ['n2']);
    expect(committed(n.raw)).toBe(2);
    expect(f.committed).toEqual([entry(2, 1, 'some data')]);
    const appends = ofType(f.messages, 'append');
    expect(appends.map((m) => m.to).sort()).toEqual(['n2', 'n3']);
    for (const m of appends) expect(m.commit).toBe(2);
  });

  it('an entry is committed once the leader that created it has replicated it on a majority (§5.3)', () => {
    const cases: { size: number; acceptors: NodeId[]; committed: boolean }[] = [
      { size: 1, acceptors: [], committed: true },
      { size: 3, acceptors: [], committed: false },
      { size: 3, acceptors: ['n2'], committed: true },
      { size: 3, acceptors: ['n2', 'n3'], committed: true },
      { size: 5, acceptors: [], committed: false },
      { size: 5, acceptors: ['n2'], committed: false },
      { size: 5, acceptors: ['n2', 'n3'], committed: true },
      { size: 5, acceptors: ['n2', 'n3', 'n4'], committed: true },
      { size: 5, acceptors: ['n2', 'n3', 'n4', 'n5'], committed: true },
    ];
    for (const [i, c] of cases.entries()) {
      const n = leaderWithCommittedNoop({ voters: idsBySize(c.size) });
      const li = n.raw.status().lastIndex;
      expect(committed(n.raw), `case ${i}`).toBe(li);
      n.raw.propose(enc('some data'));
      const sent = flush(n.raw, n.storage);
      ackAppends(n, sent.messages, c.acceptors);
      expect(committed(n.raw) > li, `case ${i}`).toBe(c.committed);
    }
  });

  it('committing an entry also commits all preceding entries, including those of earlier leaders (§5.3)', () => {
    const cases: number[][] = [[], [2], [1, 1], [1, 2], [1, 1, 2], [1, 2, 2]];
    for (const [i, terms] of cases.entries()) {
      const n = lone({ terms, hardState: { term: 2, vote: null, commit: 0 } });
      const f = becomeLeader(n);
      const done = ackAppends(n, f.messages);
      const want = [...entriesWithTerms(terms), noop(terms.length + 1, 3)];
      expect(done.committed, `case ${i}`).toEqual(want);
    }
  });

  it('a follower commits min(leaderCommit, index of the last new entry) and applies in log order (§5.3)', () => {
    const cases: { ents: Entry[]; commit: number }[] = [
      { ents: [entry(1, 1)], commit: 1 },
      { ents: [entry(1, 1), entry(2, 1)], commit: 2 },
      { ents: [entry(1, 1), entry(2, 1)], commit: 1 },
      { ents: [entry(1, 1), entry(2, 1)], commit: 5 }, // leader knows more than it sent
    ];
    for (const [i, c] of cases.entries()) {
      const n = lone({ hardState: { term: 1, vote: null, commit: 0 } });
      n.raw.step(append('n2', 'n1', 1, 0, 0, c.ents, c.commit));
      const f = flush(n.raw, n.storage);
      const want = Math.min(c.commit, c.ents.length);
      expect(committed(n.raw), `case ${i}`).toBe(want);
      expect(f.committed, `case ${i}`).toEqual(c.ents.slice(0, want));
    }
  });

  it('the follower commit stops at the last entry the append vouches for, not at its own (possibly stale) last index (§5.3)', () => {
    // Entries 2..3 came from an old leader and may differ from the current leader's.
    const n = lone({ terms: [1, 1, 1], hardState: { term: 2, vote: null, commit: 0 } });
    n.raw.step(append('n2', 'n1', 2, 1, 1, [entry(2, 1)], 3));
    flush(n.raw, n.storage);
    expect(committed(n.raw)).toBe(2);
    // A heartbeat-like empty append vouches only for prevIndex.
    const m = lone({ terms: [1, 1, 1], hardState: { term: 2, vote: null, commit: 0 } });
    m.raw.step(append('n2', 'n1', 2, 1, 1, [], 3));
    flush(m.raw, m.storage);
    expect(committed(m.raw)).toBe(1);
  });

  it('a follower refuses an append whose (prevIndex, prevTerm) it does not hold, with a conflict hint (§5.3, §5.3 "optimization")', () => {
    // Follower log: 1:t1, 2:t2.
    const cases: {
      prevIndex: number;
      prevTerm: number;
      resp: Omit<AppendResponseMessage, 'type' | 'from' | 'to' | 'term'>;
    }[] = [
      { prevIndex: 0, prevTerm: 0, resp: { index: 0, reject: false, hintIndex: 0, hintTerm: 0 } },
      { prevIndex: 1, prevTerm: 1, resp: { index: 1, reject: false, hintIndex: 0, hintTerm: 0 } },
      { prevIndex: 2, prevTerm: 2, resp: { index: 2, reject: false, hintIndex: 0, hintTerm: 0 } },
      // term mismatch at 2: the last index with term ≤ 1 is 1
      { prevIndex: 2, prevTerm: 1, resp: { index: 2, reject: true, hintIndex: 1, hintTerm: 1 } },
      // beyond our log: our last entry is the best guess
      { prevIndex: 3, prevTerm: 3, resp: { index: 3, reject: true, hintIndex: 2, hintTerm: 2 } },
    ];
    for (const [i, c] of cases.entries()) {
      const n = lone({ terms: [1, 2], hardState: { term: 2, vote: null, commit: 0 } });
      n.raw.step(append('n2', 'n1', 2, c.prevIndex, c.prevTerm, [], 0));
      const f = flush(n.raw, n.storage);
      expect(ofType(allMessages(f), 'appendResponse'), `case ${i}`).toEqual([
        { type: 'appendResponse', from: 'n1', to: 'n2', term: 2, ...c.resp },
      ]);
    }
    // The hint skips a whole term of conflicting entries at once.
    const n = lone({ terms: [1, 4, 4, 4, 4], hardState: { term: 4, vote: null, commit: 0 } });
    n.raw.step(append('n2', 'n1', 5, 5, 2, [], 0));
    const f = flush(n.raw, n.storage);
    expect(ofType(allMessages(f), 'appendResponse')).toEqual([
      { type: 'appendResponse', from: 'n1', to: 'n2', term: 5, index: 5, reject: true, hintIndex: 1, hintTerm: 1 },
    ]);
  });

  it('a follower deletes its log only from the first conflicting entry, and appends what is new (§5.3)', () => {
    // Follower log: 1:t1, 2:t2.
    const cases: { prevIndex: number; prevTerm: number; ents: Entry[]; want: number[]; unstable: Entry[] }[] = [
      { prevIndex: 2, prevTerm: 2, ents: [entry(3, 3)], want: [1, 2, 3], unstable: [entry(3, 3)] },
      {
        prevIndex: 1,
        prevTerm: 1,
        ents: [entry(2, 3), entry(3, 4)],
        want: [1, 3, 4],
        unstable: [entry(2, 3), entry(3, 4)],
      },
      { prevIndex: 0, prevTerm: 0, ents: [entry(1, 1)], want: [1, 2], unstable: [] },
      { prevIndex: 0, prevTerm: 0, ents: [entry(1, 3)], want: [3], unstable: [entry(1, 3)] },
    ];
    for (const [i, c] of cases.entries()) {
      const n = lone({ terms: [1, 2], hardState: { term: 2, vote: null, commit: 0 } });
      n.raw.step(append('n2', 'n1', 4, c.prevIndex, c.prevTerm, c.ents, 0));
      expect(logTerms(n.raw), `case ${i}`).toEqual(c.want);
      const f = flush(n.raw, n.storage);
      expect(
        f.readies.flatMap((rd) => rd.entries),
        `case ${i}`,
      ).toEqual(c.unstable);
    }
    // A delayed, shorter append that matches must not cut off entries after it.
    const n = lone({ terms: [1, 2, 2], hardState: { term: 2, vote: null, commit: 0 } });
    n.raw.step(append('n2', 'n1', 2, 1, 1, [entry(2, 2)], 0));
    expect(logTerms(n.raw)).toEqual([1, 2, 2]);
    expect(flush(n.raw, n.storage).readies.flatMap((rd) => rd.entries)).toEqual([]);
  });

  it('Log Matching: the leader brings each follower of Figure 7 to its own log, with few rejections (§5.3, Figure 7)', () => {
    const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
    const followers: Record<string, number[]> = {
      a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
      b: [1, 1, 1, 4],
      c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
      d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
      e: [1, 1, 1, 4, 4, 4, 4],
      f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
    };
    for (const [name, flog] of Object.entries(followers)) {
      const hs: HardState = { term: 8, vote: null, commit: 0 };
      const net = new Network({
        voters: ids3,
        ...PLAIN,
        seed: 1,
        storageFor: (id) => makeStorage({ voters: ids3, terms: id === 'n2' ? flog : leaderLog, hardState: hs }),
      });
      net.elect('n1');
      net.deliver();
      expect(net.node('n1').term, name).toBe(9);
      expect(net.node('n2').logTerms(), name).toEqual(net.node('n1').logTerms());
      expect(net.node('n2').logTerms(), name).toEqual([...leaderLog, 9]);
      const rejections = net.count((m) => m.type === 'appendResponse' && m.reject && m.from === 'n2');
      expect(rejections, name).toBeLessThanOrEqual(2);
    }
  });
});

// ---- §5.4 ------------------------------------------------------------------------------

describe('§5.4 Safety', () => {
  it('election restriction: a voter denies a candidate whose log is less up to date, and the reply carries the request term (§5.4.1)', () => {
    // voter log terms, candidate (lastTerm, lastIndex), granted
    const cases: { log: number[]; lastTerm: number; lastIndex: number; granted: boolean }[] = [
      // same last term: the longer log wins
      { log: [1], lastTerm: 1, lastIndex: 1, granted: true },
      { log: [1], lastTerm: 1, lastIndex: 2, granted: true },
      { log: [1, 1], lastTerm: 1, lastIndex: 1, granted: false },
      // a later last term wins regardless of length
      { log: [1], lastTerm: 2, lastIndex: 1, granted: true },
      { log: [1, 1], lastTerm: 2, lastIndex: 1, granted: true },
      { log: [2], lastTerm: 1, lastIndex: 1, granted: false },
      { log: [2], lastTerm: 1, lastIndex: 5, granted: false },
      { log: [1, 2], lastTerm: 1, lastIndex: 2, granted: false },
      { log: [], lastTerm: 0, lastIndex: 0, granted: true },
    ];
    for (const [i, c] of cases.entries()) {
      const n = lone({ terms: c.log, hardState: { term: 2, vote: null, commit: 0 } });
      n.raw.step(voteReq('n2', 'n1', 3, c.lastIndex, c.lastTerm));
      const f = flush(n.raw, n.storage);
      expect(ofType(allMessages(f), 'voteResponse'), `case ${i}`).toEqual([voteResp('n1', 'n2', 3, !c.granted)]);
      expect(n.storage.initialState().hardState.vote, `case ${i}`).toBe(c.granted ? 'n2' : null);
    }
  });

  it('a leader commits an entry of an earlier term only by committing one of its own term (§5.4.2)', () => {
    // The leader-to-be holds 1:t1, 2:t2 from earlier leaders.
    const n = lone({ terms: [1, 2], hardState: { term: 2, vote: null, commit: 0 } });
    const f = becomeLeader(n); // term 3, no-op at 3
    expect(term(n.raw)).toBe(3);
    // Both followers now hold index 2 (a majority with the leader), but not the no-op.
    for (const m of ofType(f.messages, 'append')) n.raw.step(appendOk(m.to, 'n1', 3, 2));
    flush(n.raw, n.storage);
    expect(committed(n.raw)).toBe(0);
    // One follower stores the no-op: the no-op and everything before it commit.
    n.raw.step(appendOk('n2', 'n1', 3, 3));
    const done = flush(n.raw, n.storage);
    expect(committed(n.raw)).toBe(3);
    expect(done.committed.map((e) => [e.index, e.term])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  describe('Figure 8: an entry of an old term stored on a majority is not yet committed', () => {
    const S = ['s1', 's2', 's3', 's4', 's5'];
    const logs: Record<string, { terms: number[]; hs: HardState }> = {
      // (b) s1 led term 2 and replicated index 2 to s2, then crashed; s5 led term 3 with
      // votes of s3, s4, s5 and wrote index 2 in term 3, then crashed. s1 saw term 3 since.
      s1: { terms: [1, 2], hs: { term: 3, vote: null, commit: 1 } },
      s2: { terms: [1, 2], hs: { term: 2, vote: 's1', commit: 1 } },
      s3: { terms: [1], hs: { term: 3, vote: 's5', commit: 1 } },
      s4: { terms: [1], hs: { term: 3, vote: 's5', commit: 1 } },
      s5: { terms: [1, 3], hs: { term: 3, vote: 's5', commit: 1 } },
    };

    function figure8(): Network {
      const net = new Network({
        voters: S,
        ...PLAIN,
        seed: 8,
        maxMessageBytes: 1, // one entry per append, so the no-op can be held back alone
        storageFor: (id) => makeStorage({ voters: S, terms: logs[id]!.terms, hardState: logs[id]!.hs }),
      });
      net.crash('s5');
      // (c) s1 is elected in term 4 and replicates its term-2 entry to s3, but its no-op
      // of term 4 reaches nobody.
      net.cut('s1', 's4');
      net.intercept = (m) =>
        m.type === 'append' && m.from === 's1' ? [{ ...m, entries: m.entries.filter((e) => e.term < 4) }] : [m];
      net.elect('s1');
      expect(net.node('s1').term).toBe(4);
      expect(net.node('s3').logTerms()).toEqual([1, 2]);
      expect(net.node('s2').logTerms()).toEqual([1, 2]);
      return net;
    }

    it('the term-2 entry on s1, s2, s3 is not committed by counting replicas in term 4 (§5.4.2, Figure 8 c)', () => {
      const net = figure8();
      expect(net.node('s1').committed).toBe(1);
      expect(net.node('s1').sm.applied).toBe(1);
    });

    it('so s5 may still be elected and overwrite it, and no committed entry is lost (§5.4.2, Figure 8 d)', () => {
      const net = figure8();
      net.crash('s1');
      net.intercept = null;
      net.recover();
      net.restart('s5');
      // s5 times out (only its clock runs) until it wins: s2, s3, s4 grant a later term
      // because s5's last entry (term 3) is newer than theirs (term 2).
      net.campaign('s5');
      for (let i = 0; i < 100 && net.node('s5').role !== 'leader'; i++) net.tick('s5');
      expect(net.node('s5').role).toBe('leader');
      net.restart('s1');
      net.tickAll(5);
      const want = [1, 3, net.node('s5').term];
      for (const id of S) expect(net.node(id).logTerms(), id).toEqual(want);
      for (const id of S) expect(net.node(id).sm.applied, id).toBe(3);
    });

    it('once s1 commits an entry of its own term, the earlier entry is committed with it and s5 can no longer win (§5.4.2, Figure 8 e)', () => {
      const net = figure8();
      net.intercept = null;
      net.tick('s1'); // heartbeat: s2 and s3 receive and store the no-op
      expect(net.node('s1').committed).toBe(3);
      expect(net.node('s1').sm.entries.map((e) => [e.index, e.term])).toEqual([
        [1, 1],
        [2, 2],
        [3, 4],
      ]);
      net.crash('s1');
      net.recover();
      net.restart('s5');
      // s5 times out again and again (only its clock runs) and never wins: s2 and s3
      // hold an entry of term 4, newer than s5's last entry of term 3.
      net.campaign('s5');
      for (let i = 0; i < 100; i++) {
        net.tick('s5');
        expect(net.node('s5').role).not.toBe('leader');
      }
      const l = net.waitLeader(200, ['s2', 's3', 's4', 's5']);
      expect(['s2', 's3']).toContain(l);
      net.restart('s1');
      net.tickAll(5);
      for (const id of S) expect(net.node(id).logTerms().slice(0, 3), id).toEqual([1, 2, 4]);
    });
  });
});

// ---- Figure 2: persistent state ---------------------------------------------------------

describe('Figure 2 "persistent state": nothing vouches for state that is not yet durable', () => {
  it('a vote grant leaves only through advance(), after the vote is written with mustSync (Figure 2, §5.2)', () => {
    const n = lone();
    n.raw.step(voteReq('n2', 'n1', 1, 0, 0));
    const rd = n.raw.ready();
    expect(rd.messages.filter((m) => m.type === 'voteResponse')).toEqual([]);
    expect(rd.hardState).toEqual({ term: 1, vote: 'n2', commit: 0 });
    expect(rd.mustSync).toBe(true);
    n.storage.setHardState(rd.hardState!);
    const acks = n.raw.advance(rd);
    expect(acks).toEqual([voteResp('n1', 'n2', 1, false)]);
  });

  it('an append acknowledgement leaves only through advance(), after the entries are written with mustSync (Figure 2, §5.3)', () => {
    const n = lone({ hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(append('n2', 'n1', 1, 0, 0, [entry(1, 1), entry(2, 1)], 0));
    const rd = n.raw.ready();
    expect(rd.messages.filter((m) => m.type === 'appendResponse')).toEqual([]);
    expect(rd.entries).toEqual([entry(1, 1), entry(2, 1)]);
    expect(rd.mustSync).toBe(true);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    expect(n.raw.advance(rd)).toEqual([appendOk('n1', 'n2', 1, 2)]);
  });

  it('a rejected append is answered only after the new term it taught us is durable (Figure 2)', () => {
    const n = lone({ hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(append('n2', 'n1', 3, 5, 3, [], 0));
    const rd = n.raw.ready();
    expect(rd.hardState?.term).toBe(3);
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.filter((m) => m.type === 'appendResponse')).toEqual([]);
    n.storage.setHardState(rd.hardState!);
    const acks = n.raw.advance(rd);
    expect(acks.map((m) => [m.type, m.term])).toEqual([['appendResponse', 3]]);
  });

  it("a candidate's vote requests leave only once its new term and self-vote are durable (Figure 2, §5.2)", () => {
    const n = lone();
    n.raw.campaign();
    const rd = n.raw.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: 'n1', commit: 0 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages.filter((m) => m.type === 'vote')).toEqual([]);
    n.storage.setHardState(rd.hardState!);
    expect(n.raw.advance(rd).map((m) => m.type)).toEqual(['vote', 'vote']);
  });

  it('a pre-vote changes no durable state, so its requests leave at once (§9.6)', () => {
    const n = lone({ preVote: true, hardState: { term: 1, vote: null, commit: 0 } });
    for (let i = 0; i < 20 && role(n.raw) === 'follower'; i++) n.raw.tick();
    expect(role(n.raw)).toBe('preCandidate');
    const rd = n.raw.ready();
    expect(rd.hardState).toBeNull();
    expect(rd.mustSync).toBe(false);
    expect(ofType(rd.messages, 'preVote').map((m) => [m.to, m.term])).toEqual([
      ['n2', 2],
      ['n3', 2],
    ]);
    n.raw.advance(rd);
    expect(term(n.raw)).toBe(1);
  });

  it("a pre-vote grant carries the pre-vote term and changes neither the voter's term nor its vote (§9.6)", () => {
    const n = lone({ preVote: true, hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step({ type: 'preVote', from: 'n2', to: 'n1', term: 2, lastIndex: 0, lastTerm: 0, transfer: false });
    const f = flush(n.raw, n.storage);
    expect(ofType(allMessages(f), 'preVoteResponse')).toEqual([
      { type: 'preVoteResponse', from: 'n1', to: 'n2', term: 2, reject: false },
    ]);
    expect(n.raw.status().hardState).toEqual({ term: 1, vote: null, commit: 0 });
    // A pre-vote for a less up-to-date log is refused with the voter's own term.
    const m = lone({ preVote: true, terms: [1, 1], hardState: { term: 1, vote: null, commit: 0 } });
    m.raw.step({ type: 'preVote', from: 'n2', to: 'n1', term: 2, lastIndex: 1, lastTerm: 1, transfer: false });
    const g = flush(m.raw, m.storage);
    expect(ofType(allMessages(g), 'preVoteResponse')).toEqual([
      { type: 'preVoteResponse', from: 'n1', to: 'n2', term: 1, reject: true },
    ]);
    expect(term(m.raw)).toBe(1);
  });

  it('a Ready that only moves the commit index does not need fsync (Figure 2: commitIndex is volatile)', () => {
    const n = lone({ terms: [1, 1], hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(heartbeat('n2', 'n1', 1, 2));
    const rd = n.raw.ready();
    expect(rd.hardState).toEqual({ term: 1, vote: null, commit: 2 });
    expect(rd.entries).toEqual([]);
    expect(rd.mustSync).toBe(false);
  });

  it('a leader counts its own copy of an entry only once it is durable (Figure 2, §10.2.1)', () => {
    const n = lone({ voters: ['n1'] });
    n.raw.campaign();
    flush(n.raw, n.storage);
    expect(role(n.raw)).toBe('leader');
    n.raw.propose(enc('x'));
    const rd = n.raw.ready();
    expect(rd.entries.map((e) => e.index)).toEqual([2]);
    expect(committed(n.raw)).toBe(1);
    n.storage.append(rd.entries);
    n.raw.advance(rd);
    expect(committed(n.raw)).toBe(2);
    expect(flush(n.raw, n.storage).committed).toEqual([entry(2, 1, 'x')]);
  });

  it('only one Ready is outstanding: ready() throws until advance() (rawnode contract)', () => {
    const n = lone();
    n.raw.campaign();
    const rd = n.raw.ready();
    expect(n.raw.hasReady()).toBe(false);
    expect(() => n.raw.ready()).toThrow();
    n.raw.advance(rd);
    expect(() => n.raw.advance(rd)).toThrow();
  });

  it('committed entries count as applied only at appliedTo, which may come before or after advance() (rawnode contract)', () => {
    const n = lone({ terms: [1, 1, 1], hardState: { term: 1, vote: null, commit: 0 } });
    n.raw.step(heartbeat('n2', 'n1', 1, 3));
    const rd = n.raw.ready();
    expect(rd.committedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(() => n.raw.appliedTo(4)).toThrow(); // never handed out
    n.raw.appliedTo(1); // applied while the write is in flight
    n.storage.setHardState(rd.hardState!);
    n.raw.advance(rd);
    expect(n.raw.status().applied).toBe(1);
    expect(n.raw.hasReady()).toBe(false); // handed out once, whether acknowledged or not
    n.raw.appliedTo(3);
    n.raw.appliedTo(2); // at or below the acknowledged index: ignored
    expect(n.raw.status().applied).toBe(3);
    // A restart at an applied index counts it applied and hands out only what follows.
    const m = makeRawNode('n1', n.storage, 1, PLAIN, 2);
    expect(m.status().applied).toBe(2);
    expect(m.ready().committedEntries.map((e) => e.index)).toEqual([3]);
  });

  it('a single voter that wins at once sends nothing to its learner before its new term is durable', () => {
    const storage = makeStorage({ voters: ['n1'] });
    const raw = makeRawNode('n1', storage, 1, PLAIN);
    raw.applyConfChange({ type: 'addLearner', node: 'n2' });
    raw.campaign();
    expect(role(raw)).toBe('leader');
    const rd = raw.ready();
    expect(rd.messages.filter((m) => m.to === 'n2')).toEqual([]);
    expect(raw.takeMessages()).toEqual([]);
    storage.setHardState(rd.hardState!);
    storage.append(rd.entries);
    const held = raw.advance(rd);
    expect(held.some((m) => m.type === 'append' && m.to === 'n2')).toBe(true);
  });

  it('takeMessages hands out heartbeats while a Ready is outstanding, never what waits for the disk (rawnode contract)', () => {
    const n = lone();
    n.raw.campaign();
    const first = n.raw.ready(); // the vote requests wait for the new term to be durable
    n.storage.setHardState(first.hardState!);
    for (const m of n.raw.advance(first)) expect(m.type).toBe('vote');
    n.raw.step(voteResp('n2', 'n1', 1, false));
    const rd = n.raw.ready(); // leader now: its no-op is being written
    expect(role(n.raw)).toBe('leader');
    // The host's write of rd is slow; ticks go on, and the heartbeats leave at once.
    for (let i = 0; i < 3; i++) n.raw.tick();
    const now = n.raw.takeMessages();
    expect([...new Set(ofType(now, 'heartbeat').map((m) => m.to))].sort()).toEqual(['n2', 'n3']);
    expect(n.raw.takeMessages()).toEqual([]);
    // A follower: the heartbeat answer leaves at once for a durable term; an append's
    // acknowledgement waits for advance().
    const f = lone({ id: 'n2', terms: [1], hardState: { term: 1, vote: 'n1', commit: 1 } });
    f.raw.step(append('n1', 'n2', 1, 1, 1, [entry(2, 1)], 1));
    const frd = f.raw.ready();
    f.raw.step(heartbeat('n1', 'n2', 1, 1));
    expect(f.raw.takeMessages().map((m) => m.type)).toEqual(['heartbeatResponse']);
    f.storage.append(frd.entries);
    expect(f.raw.advance(frd).map((m) => m.type)).toEqual(['appendResponse']);
    void rd;
  });
});
