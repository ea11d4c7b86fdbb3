/**
 * An interaction environment for data-driven tests of the core, after etcd-io/raft's
 * rafttest.InteractionEnv: a handful of RawNodes over MemoryStorage, a network that holds
 * every message until a command delivers it, and commands that drive the nodes one step at
 * a time and print what happened. Run it with {@link runDataDriven} over a transcript file
 * (test/raft/testdata/*.txt); the transcript is the expected output.
 *
 * Nothing here is random: an election timeout is `electionTick + jitter` with a fixed
 * `jitter` per node (see add-nodes), so a transcript replays exactly.
 *
 * Commands (node ids are "1", "2", ... in the order nodes were added):
 *
 *     add-nodes <n> voters=(1,2,3) [learners=(4)] [index=<i>] [prevote=true] [checkquorum=true]
 *               [election=10] [heartbeat=1] [jitter=0] [max-msg-bytes=<b>] [snapshot-chunk-bytes=<b>]
 *         n new nodes with this membership; with `index`, each starts from a snapshot at
 *         (term 1, index), as a bootstrapped node that has applied `index` entries.
 *     campaign <id>             RawNode.campaign(): an election now, skipping pre-vote and the lease
 *     campaign-soon <id>        RawNode.campaignSoon(): the host just started and hears no leader
 *     leader-unreachable <id> id=<peer>   RawNode.leaderUnreachable(peer): peer's process is gone
 *     tick <id>... [n=1]  tick-heartbeat <id>...  tick-election <id>...
 *     propose <id> <data>       propose-conf-change <id> type=addVoter|addLearner|removeNode node=<n>
 *     transfer-leadership from=<id> to=<id>     read-index <id> ctx=<text>
 *     process-ready <id>...     take, persist, advance and apply one Ready on each node
 *     deliver-msgs <id>... [type=<message type>] [drop=(<id>,...)]
 *                               hand pending messages to (or drop those for) these nodes
 *     stabilize [<id>...]       process Readies and deliver messages until nothing is left
 *     isolate <id>   cut <a> <b>   heal          cut links drop what crosses them, on delivery
 *     restart <id>              a crash and restart: the RawNode and state machine are rebuilt
 *                               from the storage (every processed Ready was durable)
 *     compact <id> [index=<i>]  snapshot the state machine, compact the log (default: at applied)
 *     raft-state   raft-log <id>   status <id>   queries; they print even at log-level none
 *     log-level none|info       none hides the narration of the commands above
 *
 * Every apply, snapshot and new leader goes through the {@link SafetyChecker}, and
 * stabilize ends with log matching: a broken invariant throws rather than print.
 */
import { decodeConfChange } from '../confchange.js';
import type { RaftError } from '../errors.js';
import type { ConfChange, ConfState, Message, NodeId, SoftState } from '../messages.js';
import type { RaftConfig } from '../raft.js';
import type { RandomSource } from '../rand.js';
import { RawNode } from '../rawnode.js';
import { MemoryStorage } from '../storage.js';
import type { LogView } from './checker.js';
import { durableLog, SafetyChecker } from './checker.js';
import type { CmdArg, TestData } from './datadriven.js';
import { describeConf, describeEntry, describeMessage, describeReady } from './describe.js';
import type { RecordingStateMachine } from './host.js';
import { decodeRecording, encodeRecording, persistReady, recordedEntry } from './host.js';
import { LinkCuts } from './network.js';

const encoder = new TextEncoder();

/** A random source that always draws `jitter` (capped below n): election timeouts become fixed. */
function fixedJitter(jitter: number): RandomSource {
  return { int: (n: number) => Math.min(jitter, n - 1) };
}

export interface InteractionNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  /** Replaced on restart. */
  raw: RawNode;
  /** The config a restart builds the RawNode from again (with the applied index of that moment). */
  readonly config: Omit<RaftConfig, 'applied'>;
  readonly electionTick: number;
  readonly heartbeatTick: number;
  sm: RecordingStateMachine;
  conf: ConfState;
  /** The soft state last reported in the transcript. */
  reported: SoftState;
}

export class InteractionEnv {
  readonly nodes = new Map<NodeId, InteractionNode>();
  /** Sent and not yet delivered or dropped, oldest first. */
  messages: Message[] = [];
  readonly cuts = new LinkCuts();
  readonly checker = new SafetyChecker();
  private out: string[] = [];
  private indent = '';
  private quiet = false;

  /** Runs one command and returns its output ("ok" when it printed nothing). */
  handle(d: TestData): string {
    this.out = [];
    this.indent = '';
    this.dispatch(d);
    return this.out.length === 0 ? 'ok' : this.out.join('\n');
  }

  private dispatch(d: TestData): void {
    switch (d.cmd) {
      case 'add-nodes':
        return this.addNodes(d.args);
      case 'campaign':
        return this.each(d.args, (n) => n.raw.campaign());
      case 'campaign-soon':
        return this.each(d.args, (n) => n.raw.campaignSoon());
      case 'leader-unreachable': {
        const peer = str(d.args, 'id');
        return this.each(d.args, (n) => n.raw.leaderUnreachable(peer));
      }
      case 'tick':
        return this.tick(d.args, () => int(d.args, 'n', 1));
      case 'tick-heartbeat':
        return this.tick(d.args, (n) => n.heartbeatTick);
      case 'tick-election':
        return this.tick(d.args, (n) => n.electionTick);
      case 'propose': {
        const [id, data] = positional(d.args);
        if (id === undefined || data === undefined) throw new Error('usage: propose <id> <data>');
        return this.result(this.node(id), this.node(id).raw.propose(encoder.encode(data)));
      }
      case 'propose-conf-change': {
        const n = this.node(ids(d.args)[0]);
        const type = str(d.args, 'type');
        if (type !== 'addVoter' && type !== 'addLearner' && type !== 'removeNode')
          throw new Error(`unknown conf change type ${type}`);
        const cc: ConfChange = { type, node: str(d.args, 'node') };
        return this.result(n, n.raw.proposeConfChange(cc));
      }
      case 'transfer-leadership': {
        const n = this.node(str(d.args, 'from'));
        return this.result(n, n.raw.transferLeadership(str(d.args, 'to')));
      }
      case 'read-index':
        return this.each(d.args, (n) => this.result(n, n.raw.readIndex(encoder.encode(str(d.args, 'ctx')))));
      case 'process-ready':
        return this.processReadies(ids(d.args));
      case 'deliver-msgs':
        return this.deliverCommand(d.args);
      case 'stabilize':
        return this.stabilize(ids(d.args).length > 0 ? ids(d.args) : [...this.nodes.keys()]);
      case 'isolate':
        for (const id of ids(d.args)) this.cuts.isolate(id, this.nodes.keys());
        return;
      case 'cut': {
        const [a, b] = ids(d.args);
        if (a === undefined || b === undefined) throw new Error('usage: cut <a> <b>');
        this.cuts.cutBoth(a, b);
        return;
      }
      case 'heal':
        this.cuts.heal();
        return;
      case 'restart':
        for (const id of ids(d.args)) this.restart(this.node(id));
        return;
      case 'compact':
        return this.compact(this.node(ids(d.args)[0]), d.args);
      case 'raft-state':
        return this.raftState();
      case 'raft-log':
        return this.raftLog(this.node(ids(d.args)[0]));
      case 'status':
        return this.status(this.node(ids(d.args)[0]));
      case 'log-level': {
        const level = ids(d.args)[0];
        if (level !== 'none' && level !== 'info') throw new Error(`log-level none|info, not ${String(level)}`);
        this.quiet = level === 'none';
        return;
      }
      default:
        throw new Error(`unknown command ${d.cmd}`);
    }
  }

  // ---- output ------------------------------------------------------------------------

  /** Narration: hidden at log-level none. */
  private say(line: string): void {
    if (!this.quiet) this.out.push(this.indent + line);
  }

  /** Answers to queries and refusals: always printed. */
  private print(line: string): void {
    this.out.push(this.indent + line);
  }

  private indented(run: () => void): void {
    const prev = this.indent;
    this.indent += '  ';
    try {
      run();
    } finally {
      this.indent = prev;
    }
  }

  /**
   * Reports a change of role, term or leader since the last report, as etcd's logger would
   * (the core itself logs nothing), and hands a new leader to the checker.
   */
  private noteSoftState(n: InteractionNode): void {
    const s = n.raw.softState();
    const p = n.reported;
    if (s.role === 'leader') this.checker.onLeader(n.id, s.term, (i) => n.raw.termAt(i));
    if (s.role === p.role && s.term === p.term && s.leader === p.leader) return;
    n.reported = s;
    if (s.role !== p.role || s.term !== p.term) {
      const lead = s.leader !== null && s.leader !== n.id ? `, leader ${s.leader}` : '';
      this.say(`INFO ${n.id} became ${s.role} at term ${s.term}${lead}`);
    } else if (s.leader === null) {
      this.say(`INFO ${n.id} lost leader ${p.leader ?? 'none'} at term ${s.term}`);
    } else {
      this.say(`INFO ${n.id} follows leader ${s.leader} at term ${s.term}`);
    }
  }

  private result(n: InteractionNode, r: { ok: true } | { ok: false; error: RaftError }): void {
    if (!r.ok)
      this.print(
        `${n.id}: ${r.error.code}: ${r.error.message}${r.error.leader !== null ? ` (leader ${r.error.leader})` : ''}`,
      );
    this.noteSoftState(n);
  }

  // ---- nodes -------------------------------------------------------------------------

  private node(id: NodeId | undefined): InteractionNode {
    const n = id === undefined ? undefined : this.nodes.get(id);
    if (!n) throw new Error(`no node ${String(id)}`);
    return n;
  }

  private each(args: readonly CmdArg[], run: (n: InteractionNode) => void): void {
    for (const id of ids(args)) {
      const n = this.node(id);
      run(n);
      this.noteSoftState(n);
    }
  }

  private addNodes(args: readonly CmdArg[]): void {
    const count = Number(ids(args)[0]);
    if (!Number.isInteger(count) || count < 1) throw new Error('usage: add-nodes <n> voters=(...)');
    const conf: ConfState = { voters: list(args, 'voters'), learners: list(args, 'learners') };
    const index = int(args, 'index', 0);
    const electionTick = int(args, 'election', 10);
    const heartbeatTick = int(args, 'heartbeat', 1);
    const jitter = int(args, 'jitter', 0);
    for (let i = 0; i < count; i++) {
      const id = String(this.nodes.size + 1);
      const storage = new MemoryStorage(conf);
      let sm: RecordingStateMachine = { applied: 0, entries: [] };
      if (index > 0) {
        // As a bootstrapped node: the founding entries are compacted into a snapshot at term 1.
        sm = { applied: index, entries: [] };
        storage.applySnapshot({ meta: { index, term: 1, conf }, data: encodeRecording(sm) });
        storage.setHardState({ term: 1, vote: null, commit: index });
      }
      const config: Omit<RaftConfig, 'applied'> = {
        id,
        storage,
        electionTick,
        heartbeatTick,
        random: fixedJitter(jitter),
        preVote: bool(args, 'prevote', true),
        checkQuorum: bool(args, 'checkquorum', true),
        ...(has(args, 'max-msg-bytes') ? { maxMessageBytes: int(args, 'max-msg-bytes', 0) } : {}),
        ...(has(args, 'snapshot-chunk-bytes') ? { snapshotChunkBytes: int(args, 'snapshot-chunk-bytes', 0) } : {}),
      };
      const raw = new RawNode({ ...config, applied: index });
      const n: InteractionNode = {
        id,
        storage,
        raw,
        config,
        electionTick,
        heartbeatTick,
        sm,
        conf,
        reported: raw.softState(),
      };
      this.nodes.set(id, n);
      this.sayStarted(n, jitter);
    }
  }

  private sayStarted(n: InteractionNode, jitter: number): void {
    const st = n.raw.status();
    this.say(
      `INFO newRaft ${n.id} [${describeConf(st.conf)} term: ${st.hardState.term} commit: ${st.hardState.commit} ` +
        `applied: ${st.applied} lastindex: ${st.lastIndex}] election timeout ${n.electionTick + Math.min(jitter, n.electionTick - 1)} ticks`,
    );
  }

  /** Everything but the storage is lost; the node comes back as a follower with no leader. */
  private restart(n: InteractionNode): void {
    const snap = n.storage.snapshot();
    n.sm = decodeRecording(snap.data);
    n.conf = snap.meta.conf;
    n.raw = new RawNode({ ...n.config, applied: n.sm.applied });
    n.reported = n.raw.softState();
    this.sayStarted(n, n.config.random.int(n.electionTick));
  }

  private tick(args: readonly CmdArg[], times: (n: InteractionNode) => number): void {
    this.each(args, (n) => {
      const count = times(n);
      for (let i = 0; i < count; i++) {
        n.raw.tick();
        this.noteSoftState(n);
      }
    });
  }

  // ---- the Ready cycle -------------------------------------------------------------------

  private processReadies(list: readonly NodeId[]): void {
    for (const id of list) {
      const n = this.node(id);
      if (list.length === 1) this.processReady(n);
      else {
        this.say(`> ${id} handling Ready`);
        this.indented(() => this.processReady(n));
      }
    }
  }

  /** The whole cycle, in rawnode.ts's order: send, persist, advance, send the acks, apply. */
  private processReady(n: InteractionNode): void {
    if (!n.raw.hasReady()) {
      this.say('no Ready');
      return;
    }
    const rd = n.raw.ready();
    this.messages.push(...rd.messages);
    persistReady(n.storage, rd);
    const acks = n.raw.advance(rd);
    this.messages.push(...acks);
    for (const line of describeReady(rd, acks)) this.say(line);
    if (rd.snapshot) {
      const { index, term, conf } = rd.snapshot.meta;
      this.checker.onSnapshotInstalled(n.id, index, term, n.sm.applied);
      n.sm = decodeRecording(rd.snapshot.data);
      for (const e of n.sm.entries) this.checker.onApplied(n.id, e, n.raw.softState().term);
      n.conf = conf;
    }
    for (const e of rd.committedEntries) {
      this.checker.checkApplyOrder(n.id, e.index, n.sm.applied);
      const applied = recordedEntry(e);
      this.checker.onApplied(n.id, applied, n.raw.softState().term);
      if (e.type === 'conf') {
        n.conf = n.raw.applyConfChange(decodeConfChange(e.data));
        this.say(`INFO ${n.id} switched to configuration ${describeConf(n.conf)}`);
      }
      n.sm.entries.push(applied);
      n.sm.applied = e.index;
      n.raw.appliedTo(e.index);
    }
    this.noteSoftState(n);
  }

  private deliverCommand(args: readonly CmdArg[]): void {
    const type = has(args, 'type') ? str(args, 'type') : null;
    let handled = 0;
    for (const id of ids(args)) handled += this.deliver(id, type, false);
    for (const id of list(args, 'drop')) handled += this.deliver(id, type, true);
    if (handled === 0) this.say('no messages');
  }

  /** Hands `to` its pending messages (of `type`, if given) in order, or drops them; returns how many. */
  private deliver(to: NodeId, type: string | null, drop: boolean): number {
    const mine: Message[] = [];
    const rest: Message[] = [];
    for (const m of this.messages) (m.to === to && (type === null || m.type === type) ? mine : rest).push(m);
    this.messages = rest;
    const n = this.nodes.get(to);
    for (const m of mine) {
      if (drop || !n || this.cuts.isCut(m.from, m.to)) {
        this.say(`dropped: ${describeMessage(m)}`);
        continue;
      }
      this.say(describeMessage(m));
      n.raw.step(m);
      this.noteSoftState(n);
    }
    return mine.length;
  }

  /** Like etcd's: every node handles its Ready, then every node receives its messages, until neither has work. */
  private stabilize(list: readonly NodeId[]): void {
    for (let round = 0; ; round++) {
      if (round > 10_000) throw new Error('stabilize: no fixed point after 10,000 rounds');
      let done = true;
      for (const id of list) {
        const n = this.node(id);
        if (!n.raw.hasReady()) continue;
        done = false;
        this.say(`> ${id} handling Ready`);
        this.indented(() => this.processReady(n));
      }
      for (const id of list) {
        if (!this.messages.some((m) => m.to === id)) continue;
        done = false;
        this.say(`> ${id} receiving messages`);
        this.indented(() => this.deliver(id, null, false));
      }
      if (done) break;
    }
    const logs: LogView[] = [];
    for (const n of this.nodes.values()) {
      const log = durableLog(n.id, n.storage);
      if (log) logs.push(log);
    }
    this.checker.checkLogMatching(logs);
  }

  private compact(n: InteractionNode, args: readonly CmdArg[]): void {
    const index = int(args, 'index', n.sm.applied);
    if (index > n.sm.applied) throw new Error(`compact ${n.id}: index ${index} is past applied ${n.sm.applied}`);
    // The membership is the current one: compact below a pending conf change only with care.
    const sm: RecordingStateMachine = { applied: index, entries: n.sm.entries.filter((e) => e.index <= index) };
    n.storage.compact(index, n.conf, encodeRecording(sm));
    this.raftLog(n);
  }

  // ---- queries ---------------------------------------------------------------------------

  private raftState(): void {
    for (const n of this.nodes.values()) {
      const s = n.raw.softState();
      const voter = n.raw.status().conf.voters.includes(n.id) ? 'Voter' : 'Non-Voter';
      this.print(`${n.id}: ${s.role} (${voter}) Term:${s.term} Lead:${s.leader ?? 'none'}`);
    }
  }

  private raftLog(n: InteractionNode): void {
    const first = n.storage.firstIndex();
    const last = n.storage.lastIndex();
    if (first > last) {
      this.print(`log is empty: first index=${first}, last index=${last}`);
      return;
    }
    const entries = n.storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER);
    if (typeof entries === 'string') throw new Error(`raft-log ${n.id}: entries ${first}..${last} ${entries}`);
    for (const e of entries) this.print(describeEntry(e));
  }

  private status(n: InteractionNode): void {
    const st = n.raw.status();
    const hs = st.hardState;
    this.print(
      `${n.id}: State:${st.softState.role} Lead:${st.softState.leader ?? 'none'} Term:${hs.term} Vote:${hs.vote ?? 'none'} Commit:${hs.commit}`,
    );
    this.print(`Applied:${st.applied} Log:${st.firstIndex}..${st.lastIndex} ${describeConf(st.conf)}`);
    if (st.leadTransferee !== null) this.print(`Transferring to ${st.leadTransferee}`);
    for (const p of st.progress) {
      const flags = `${p.isLearner ? ' learner' : ''}${p.recentActive ? ' active' : ''}`;
      this.print(`${p.id}: ${p.state} match=${p.match} next=${p.next}${flags}`);
    }
  }
}

// ---- arguments -------------------------------------------------------------------------

/** Bare arguments (node ids, counts, levels), in order. */
function ids(args: readonly CmdArg[]): string[] {
  return args.filter((a) => a.vals.length === 0).map((a) => a.key);
}

function positional(args: readonly CmdArg[]): (string | undefined)[] {
  return ids(args);
}

function has(args: readonly CmdArg[], key: string): boolean {
  return args.some((a) => a.key === key && a.vals.length > 0);
}

function list(args: readonly CmdArg[], key: string): string[] {
  return args.filter((a) => a.key === key).flatMap((a) => a.vals);
}

function str(args: readonly CmdArg[], key: string): string {
  const v = list(args, key)[0];
  if (v === undefined) throw new Error(`missing ${key}=`);
  return v;
}

function int(args: readonly CmdArg[], key: string, dflt: number): number {
  if (!has(args, key)) return dflt;
  const v = Number(str(args, key));
  if (!Number.isInteger(v)) throw new Error(`${key}= must be an integer`);
  return v;
}

function bool(args: readonly CmdArg[], key: string, dflt: boolean): boolean {
  if (!has(args, key)) return dflt;
  const v = str(args, key);
  if (v !== 'true' && v !== 'false') throw new Error(`${key}= must be true or false`);
  return v === 'true';
}
