/**
 * The corruption check (issue 20; docs/operations.md, Corruption checks), as etcd's: every
 * member hashes its state machine, and the hashes of members at the same applied index
 * must be equal, since they applied the same log. A member whose hash differs from the
 * others' is corrupt: a disk that flipped a byte, a bug that wrote outside apply. The
 * leader runs it every `--corruption-check-interval`; `rollcall check` runs it on demand
 * through POST /v1/cluster/check on any node.
 *
 * Soundness: a hash covers exactly one applied index. It is read through one LevelDB
 * iterator (an implicit snapshot), and the registry writes each applied batch together
 * with its applied index in one atomic LevelDB batch, so the scan sees the state of one
 * index and the applied-index record inside it says which. The checker picks a target (its
 * own applied index); each member waits until it has applied that far and hashes at once.
 * Members apply at their own pace, so under writes a member may have moved past the target
 * when it hashes: only hashes of the same index are compared, and a member alone at its
 * index is `skipped` (not comparable this round), never judged.
 *
 * Among members at the same index, the hash a strict majority of them holds is the right
 * one; without a majority (two members that differ), the checker's own hash is, as in etcd
 * (the leader's). Members with another hash are `corrupt`: a critical alert names each
 * (`node-corrupt:<id>`), and each stops serving reads (503 CORRUPT) until it is replaced or
 * an operator disarms its mark (POST /v1/cluster/check/disarm, `rollcall check --disarm`).
 *
 * Node-local state-machine keys (isNodeLocalSmKey) differ between members by design and
 * are left out of the hash.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decode, encode } from '../codec/index.js';
import type { Logger } from '../log/index.js';
import type { NodeDatabase } from '../storage/index.js';
import { openNodeDatabase, scanBatches } from '../storage/index.js';
import { bytesEqual, isNodeLocalSmKey, RAFT_KEYS, SM_APPLIED_KEY_BYTES } from '../storage/keys.js';

/** One member's state-machine hash, at the applied index it covers. */
export interface StateHash {
  readonly index: number;
  /** SHA-256, hex, of every replicated state-machine record in key order. */
  readonly hash: string;
  readonly keys: number;
}

/** Rounds one check makes at most while some member is `skipped` (hashed at another index than the rest). */
const ROUNDS = 3;

export type Verdict =
  /** Same hash as the majority of members at its index (or the checker's). */
  | 'ok'
  /** Another hash than the others at the same index. */
  | 'corrupt'
  /** Alone at its applied index this round: not comparable, not judged. */
  | 'skipped'
  /** It did not answer in time. */
  | 'unreachable';

export interface MemberCheck {
  readonly id: string;
  readonly verdict: Verdict;
  readonly index: number | null;
  readonly hash: string | null;
  readonly keys: number | null;
  /** For `unreachable`, why; for `corrupt`, what it was compared with. */
  readonly detail?: string;
}

export interface CheckReport {
  /** The member that ran the check. */
  readonly by: string;
  /** The applied index every member was asked to reach before hashing. */
  readonly target: number;
  /** When it finished (ms since epoch). */
  readonly at: number;
  readonly members: readonly MemberCheck[];
  /** Whether any member is corrupt. */
  readonly corrupt: boolean;
}

/** Hashes the state machine as of one applied index (see the module comment). */
export async function hashStateMachine(db: NodeDatabase): Promise<StateHash> {
  const h = createHash('sha256');
  const len = Buffer.alloc(4);
  let index = 0;
  let keys = 0;
  for await (const batch of scanBatches<Uint8Array, Uint8Array>(db.sm)) {
    for (const [key, value] of batch) {
      if (isNodeLocalSmKey(key)) continue;
      if (bytesEqual(key, SM_APPLIED_KEY_BYTES)) index = (decode(value) as { index: number }).index;
      len.writeUInt32BE(key.byteLength);
      h.update(len).update(key);
      len.writeUInt32BE(value.byteLength);
      h.update(len).update(value);
      keys++;
    }
  }
  return { index, hash: h.digest('hex'), keys };
}

/** A check found this node corrupt: who, why, when (ms since epoch). */
export interface CorruptionMark {
  readonly by: string;
  readonly detail: string;
  readonly at: number;
}

/**
 * The mark is kept in the node's own database (the `raft` sublevel, never replicated), so a
 * restart with the same data refuses reads at once rather than until the next check. It is
 * cleared by replacing the data directory, by CorruptionChecker.disarm on the running node,
 * or by disarmCorruptionMark while the node is stopped.
 */
export async function readCorruptionMark(db: NodeDatabase): Promise<CorruptionMark | null> {
  const raw = await db.raft.get(RAFT_KEYS.corruption);
  if (raw === undefined) return null;
  const mark = decode(raw) as Partial<CorruptionMark> | null;
  return { by: String(mark?.by ?? '?'), detail: String(mark?.detail ?? ''), at: Number(mark?.at ?? 0) };
}

export async function writeCorruptionMark(db: NodeDatabase, mark: CorruptionMark): Promise<void> {
  await db.db.batch().put(RAFT_KEYS.corruption, encode(mark), { sublevel: db.raft }).write({ sync: true });
}

export async function clearCorruptionMark(db: NodeDatabase): Promise<void> {
  await db.db.batch().del(RAFT_KEYS.corruption, { sublevel: db.raft }).write({ sync: true });
}

/** `dir` holds no node database: nothing to disarm (and nothing is created). */
export class DisarmError extends Error {
  override readonly name = 'DisarmError';
}

/**
 * Clears the corruption mark in the data directory of a stopped node (`rollcall check
 * --disarm --data DIR`, as etcd's `alarm disarm`) and returns it; null when there was none.
 * For after the member's state was repaired in place, or a check was wrong: the mark is
 * the only thing keeping a restarted node from serving reads before the next check, and
 * that check marks it again if its state still differs. Rejects with StorageError
 * `LOCKED` while the node runs (LevelDB's lock), DisarmError when `dir` holds no node
 * database, FORMAT_TOO_OLD for an older-format directory (never migrated here), and as a
 * start would on a damaged or newer-format directory.
 */
export async function disarmCorruptionMark(dir: string): Promise<CorruptionMark | null> {
  // openNodeDatabase would make a new database in a directory without one.
  try {
    await stat(join(dir, 'CURRENT'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new DisarmError(`${dir} holds no Rollcall node database: is --data right?`);
    throw err;
  }
  // Nothing but the mark changes: a directory in an older format stays as the build that runs it wrote it.
  const db = await openNodeDatabase(dir, { migrate: false });
  try {
    const mark = await readCorruptionMark(db);
    if (mark !== null) await clearCorruptionMark(db);
    return mark;
  } finally {
    await db.db.close();
  }
}

/** One member's part in a disarm (POST /v1/cluster/check/disarm). */
export interface MemberDisarm {
  readonly id: string;
  /** It held a mark and cleared it. */
  readonly disarmed: boolean;
  /** The mark it cleared (null: it had none, or it did not answer). */
  readonly mark: CorruptionMark | null;
  /** Why it did not answer (its mark, if any, stays); null when it did. */
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface DisarmReport {
  /** The member that took the request and asked the others. */
  readonly by: string;
  readonly members: readonly MemberDisarm[];
}

/** What each member answered: its hash, or why it did not. */
export type HashAnswer =
  | { readonly id: string; readonly ok: true; readonly value: StateHash }
  | { readonly id: string; readonly ok: false; readonly error: string };

/** Judges the answers (pure). `self` is the checker: its hash wins a tie. */
export function judge(self: string, target: number, answers: readonly HashAnswer[], at: number): CheckReport {
  const byIndex = new Map<number, { id: string; hash: StateHash }[]>();
  for (const a of answers)
    if (a.ok) byIndex.set(a.value.index, [...(byIndex.get(a.value.index) ?? []), { id: a.id, hash: a.value }]);
  const verdicts = new Map<string, MemberCheck>();
  for (const [index, group] of byIndex) {
    if (group.length < 2) {
      for (const g of group)
        verdicts.set(g.id, {
          id: g.id,
          verdict: 'skipped',
          index,
          hash: g.hash.hash,
          keys: g.hash.keys,
          detail: 'no other member answered at this applied index',
        });
      continue;
    }
    const counts = new Map<string, number>();
    for (const g of group) counts.set(g.hash.hash, (counts.get(g.hash.hash) ?? 0) + 1);
    const [top, topCount] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
    const reference = topCount * 2 > group.length ? top : (group.find((g) => g.id === self)?.hash.hash ?? null);
    for (const g of group) {
      const base = { id: g.id, index, hash: g.hash.hash, keys: g.hash.keys };
      if (reference === null)
        verdicts.set(g.id, {
          ...base,
          verdict: 'skipped',
          detail: 'no majority hash at this index and the checker is not among them',
        });
      else if (g.hash.hash === reference) verdicts.set(g.id, { ...base, verdict: 'ok' });
      else
        verdicts.set(g.id, {
          ...base,
          verdict: 'corrupt',
          detail: `hash ${g.hash.hash.slice(0, 16)} at index ${index}; ${group
            .filter((o) => o.hash.hash === reference)
            .map((o) => o.id)
            .join(', ')} have ${reference.slice(0, 16)}`,
        });
    }
  }
  const members = answers.map(
    (a): MemberCheck =>
      a.ok
        ? verdicts.get(a.id)!
        : { id: a.id, verdict: 'unreachable', index: null, hash: null, keys: null, detail: a.error },
  );
  members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { by: self, target, at, members, corrupt: members.some((m) => m.verdict === 'corrupt') };
}

export interface CorruptionCheckerDeps {
  readonly id: string;
  readonly log: Logger;
  /** Wall-clock milliseconds: stamps reports and marks (shown as dates). */
  readonly now: () => number;
  /** Monotonic milliseconds: the check's deadline, which a step of the wall clock must not move. */
  readonly monotonicNow: () => number;
  /** Every member, voters and learners, this node included. */
  readonly members: () => readonly string[];
  readonly appliedIndex: () => number;
  /** This node's hash once it has applied `index`. */
  readonly selfHash: (index: number, timeoutMs: number) => Promise<StateHash>;
  /** A peer's hash once it has applied `index`. */
  readonly askHash: (peer: string, index: number, timeoutMs: number) => Promise<StateHash>;
  /** Tells a peer that it is corrupt. */
  readonly tellCorrupt: (peer: string, detail: string) => void;
  /** Keeps this node's own mark across restarts (writeCorruptionMark). */
  readonly persistMark?: (mark: CorruptionMark) => Promise<void>;
  /** Deletes the stored mark (clearCorruptionMark): an online disarm. */
  readonly clearStoredMark?: () => Promise<void>;
}

/**
 * Runs checks (one at a time), keeps the latest report, and knows whether this node
 * itself was found corrupt. A corrupt mark lasts until the data directory is replaced or
 * the mark is disarmed, online or while the node is stopped (docs/operations.md): it is
 * stored, and a restart keeps it.
 */
export class CorruptionChecker {
  #latest: CheckReport | null = null;
  #running: Promise<CheckReport> | null = null;
  #self: CorruptionMark | null = null;
  /**
   * Members disarmed since the latest report: its `corrupt` verdicts on them no longer count
   * for the alert (an operator cleared the mark; the next check judges them afresh). Emptied
   * when a new report lands.
   */
  readonly #disarmedSinceReport = new Set<string>();
  /** Told whenever corruptMembers() may have changed (the alert monitor evaluates at once). */
  readonly #listeners = new Set<() => void>();
  /**
   * Writes and deletes of the stored mark, one after the other: a disarm that raced a mark
   * still being written would otherwise find nothing to delete, and the write landing after
   * it would bring the mark back at the next restart while memory says there is none.
   */
  #stored: Promise<void> = Promise.resolve();

  constructor(private readonly d: CorruptionCheckerDeps) {}

  /** Why this node refuses reads, or null when it serves them. */
  get selfCorruption(): CorruptionMark | null {
    return this.#self;
  }

  get latest(): CheckReport | null {
    return this.#latest;
  }

  /**
   * Members the latest report found corrupt and that no disarm has cleared since, and this
   * node while it holds a mark (what the alert rules see).
   */
  corruptMembers(): readonly { readonly id: string; readonly detail: string }[] {
    const out = (this.#latest?.members ?? [])
      .filter((m) => m.verdict === 'corrupt' && !this.#disarmedSinceReport.has(m.id))
      .map((m) => ({ id: m.id, detail: m.detail ?? '' }));
    if (this.#self !== null && !out.some((m) => m.id === this.d.id))
      out.push({ id: this.d.id, detail: this.#self.detail });
    return out;
  }

  /**
   * Calls `listener` whenever corruptMembers() may have changed: a report landed, this node
   * was marked, a disarm cleared a mark or a verdict. Returns the unsubscribe.
   */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (err) {
        this.d.log.error({ err }, 'a corruption-check change listener threw');
      }
    }
  }

  /**
   * An operator disarmed these members (through this node or another): the latest report's
   * verdicts on them stop raising the `node-corrupt` alert at once, rather than until a
   * check finds every member ok. A disarm vouches for nothing: the next check that finds
   * one of them corrupt raises it again.
   */
  forgetVerdicts(members: readonly string[]): void {
    const named = new Set((this.#latest?.members ?? []).filter((m) => m.verdict === 'corrupt').map((m) => m.id));
    let changed = false;
    for (const id of members) {
      if (!named.has(id) || this.#disarmedSinceReport.has(id)) continue;
      this.#disarmedSinceReport.add(id);
      changed = true;
    }
    if (changed) this.#changed();
  }

  /** A checker found this node corrupt. */
  markSelfCorrupt(by: string, detail: string): void {
    if (this.#self !== null) return;
    this.#self = { by, detail, at: this.d.now() };
    this.#changed();
    this.d.log.fatal(
      { by, detail },
      "corruption check: this node's state machine differs from the other members'; it refuses reads until its data directory is replaced or the mark is disarmed after a repair",
    );
    const { persistMark } = this.d;
    if (persistMark === undefined) return;
    const mark = this.#self;
    this.#stored = this.#stored.then(() =>
      persistMark(mark).catch((err: unknown) =>
        this.d.log.error(
          { err },
          'could not store the corruption mark; a restart would serve reads until the next check',
        ),
      ),
    );
  }

  /**
   * Clears this node's mark (an operator's online disarm, POST /v1/cluster/check/disarm, as
   * etcd's `alarm disarm`): it serves reads again at once, and the stored mark is deleted
   * before this resolves, so a restart serves them too. Returns the mark cleared, null if
   * there was none. It vouches for nothing: the next check marks the node again if its
   * hash still differs (markSelfCorrupt starts from a clear mark).
   */
  async disarm(requestedBy: string): Promise<CorruptionMark | null> {
    const mark = this.#self;
    this.#self = null;
    const { clearStoredMark } = this.d;
    // Even with no mark in memory: a stored one may be waiting behind a failed write.
    if (clearStoredMark !== undefined) {
      const cleared = this.#stored.then(clearStoredMark);
      this.#stored = cleared.catch(() => undefined);
      try {
        await cleared;
      } catch (err) {
        // Memory and disk would disagree: keep refusing reads rather than serve on a mark a restart brings back.
        if (this.#self === null) this.#self = mark;
        throw err;
      }
    }
    if (mark !== null) this.#changed();
    if (mark !== null)
      this.d.log.warn(
        {
          part: 'audit',
          requestedBy,
          mark: { by: mark.by, detail: mark.detail, at: new Date(mark.at).toISOString() },
        },
        'corruption mark disarmed: this node serves reads again; the next corruption check marks it again if its state machine still differs',
      );
    else this.d.log.info({ part: 'audit', requestedBy }, 'corruption disarm: this node had no mark');
    return mark;
  }

  /** The mark a previous run of this node stored (readCorruptionMark). */
  restoreMark(mark: CorruptionMark): void {
    this.#self = mark;
    this.#changed();
    this.d.log.error(
      { by: mark.by, detail: mark.detail, at: new Date(mark.at).toISOString() },
      'this node was found corrupt before it restarted: it refuses reads until its data directory is replaced, or the mark is cleared with `rollcall check --disarm --member ID` after a repair (docs/operations.md, Corruption checks)',
    );
  }

  /** Runs a check now, or joins the one running. */
  run(timeoutMs: number): Promise<CheckReport> {
    this.#running ??= this.#run(timeoutMs).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #run(timeoutMs: number): Promise<CheckReport> {
    const deadline = this.d.monotonicNow() + timeoutMs;
    let report = await this.#round(timeoutMs);
    // Under writes members may hash at different indexes: a few more rounds (each with a
    // new target) before leaving some `skipped`.
    for (
      let round = 2;
      round <= ROUNDS && !report.corrupt && report.members.some((m) => m.verdict === 'skipped');
      round++
    ) {
      const left = deadline - this.d.monotonicNow();
      if (left <= 0) break;
      report = await this.#round(left);
    }
    this.#latest = report;
    this.#disarmedSinceReport.clear();
    this.#changed();
    for (const m of report.members) {
      if (m.verdict !== 'corrupt') continue;
      this.d.log.error(
        { member: m.id, index: m.index, hash: m.hash, detail: m.detail },
        "corruption check: a member's state machine differs; replace it (docs/operations.md)",
      );
      if (m.id === this.d.id) this.markSelfCorrupt(this.d.id, m.detail ?? '');
      else this.d.tellCorrupt(m.id, m.detail ?? '');
    }
    if (!report.corrupt)
      this.d.log.debug(
        { target: report.target, members: report.members.map((m) => [m.id, m.verdict]) },
        'corruption check passed',
      );
    return report;
  }

  /** One round: every member's hash once it has applied this node's applied index, judged. */
  async #round(timeoutMs: number): Promise<CheckReport> {
    const { id } = this.d;
    const target = this.d.appliedIndex();
    const answers = await Promise.all(
      [...this.d.members()].sort().map(async (member): Promise<HashAnswer> => {
        try {
          const value =
            member === id ? await this.d.selfHash(target, timeoutMs) : await this.d.askHash(member, target, timeoutMs);
          return { id: member, ok: true, value };
        } catch (err) {
          return { id: member, ok: false, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    return judge(id, target, answers, this.d.now());
  }
}
