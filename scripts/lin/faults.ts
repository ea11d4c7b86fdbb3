/**
 * Generated fault schedules. A schedule is a sequence of faults, one at a time (so a
 * 3-node cluster keeps a majority most of the time and the workload keeps making
 * progress): wait `delayMs`, inject, hold `durationMs`, undo.
 *
 *   kill        kill -9 the node, restart it after the hold (from its LevelDB data)
 *   pause       SIGSTOP, then SIGCONT
 *   isolate     the node drops all peer traffic and every other node drops it (fault hook)
 *   oneway      the node drops peer messages in one direction only (r < 0.5: outgoing)
 *   transfer    move leadership to another member, then hold
 *   membership  start a fresh node, add it (learner, promoted once caught up), hold, remove it
 *   crash       kill -9 every member at once, restart them all after the hold
 *   rejoin      remove the leader from the membership, wait for another leader, stop it and
 *               wipe its data, hold; then bring it back the safe way: a new node id, an empty
 *               data directory, added as a learner and promoted (the cluster is back at its
 *               size, with one member renamed)
 *   netsplit    a partition made by the TCP proxies on the peer links (not the fault hook):
 *               the node cut off both ways, its outgoing or its incoming links cut, the link
 *               between it and one other member cut (both still reach the third), or every
 *               link to and from it delayed; cuts reset the connections or blackhole them
 *               (see `netsplitPlan`)
 *
 * `target` picks the node when the fault starts: the leader, a follower, or any member
 * (`rejoin` always takes the leader; `transfer`, `membership` and `crash` ignore it).
 */
import fc from 'fast-check';
import type { CutMode } from '../net-proxy.js';

export const FAULT_KINDS = [
  'kill',
  'pause',
  'isolate',
  'oneway',
  'transfer',
  'membership',
  'crash',
  'rejoin',
  'netsplit',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
export type FaultTarget = 'leader' | 'follower' | 'random';

export interface PlannedFault {
  readonly kind: FaultKind;
  readonly target: FaultTarget;
  /** In [0, 1): which node among the candidates, and fault-specific choices. */
  readonly r: number;
  readonly delayMs: number;
  readonly durationMs: number;
  /** A fixed node instead of `target` (scripted scenarios; never generated). */
  readonly node?: string;
  /** A fixed netsplit instead of the one `r` stands for (scripted scenarios; never generated). */
  readonly netsplit?: NetsplitPlan;
}

export interface FaultOptions {
  readonly kinds?: readonly FaultKind[];
  readonly maxFaults?: number;
}

export function faultArb(kinds: readonly FaultKind[] = FAULT_KINDS): fc.Arbitrary<PlannedFault> {
  return fc.record({
    kind: fc.constantFrom(...kinds),
    target: fc.constantFrom<FaultTarget>('leader', 'leader', 'follower', 'random'),
    r: fc.nat({ max: 9999 }).map((n) => n / 10_000),
    delayMs: fc.integer({ min: 100, max: 1200 }),
    durationMs: fc.integer({ min: 300, max: 2500 }),
  });
}

/** `kind:target`, or just the kind where the target does not choose the node (`rejoin` always takes the leader). */
export function describeFault(f: PlannedFault): string {
  return f.kind === 'transfer' || f.kind === 'membership' || f.kind === 'crash' || f.kind === 'rejoin'
    ? f.kind
    : `${f.kind}:${f.target}`;
}

export function faultScheduleArb(options: FaultOptions = {}): fc.Arbitrary<PlannedFault[]> {
  return fc.array(faultArb(options.kinds ?? FAULT_KINDS), { minLength: 1, maxLength: options.maxFaults ?? 4 });
}

/** What a `netsplit` does to the node it hits (and its peers). */
export type NetsplitShape =
  /** every link to and from the node cut */
  | 'isolate'
  /** the node's links to the others cut; theirs to it flow */
  | 'outgoing'
  /** the others' links to the node cut; its own flow */
  | 'incoming'
  /** both links between the node and one other member cut; both still reach the rest */
  | 'bridge'
  /** every link to and from the node delayed */
  | 'delay';

export const NETSPLIT_SHAPES: readonly NetsplitShape[] = ['isolate', 'outgoing', 'incoming', 'bridge', 'delay'];

export interface NetsplitPlan {
  readonly shape: NetsplitShape;
  /** How cut links fail: connections reset (and new ones too), or nothing passes (held until healed). */
  readonly mode: CutMode;
  /** For `delay`: added per chunk, plus up to `jitterMs`, in order. Below the 500 ms election timeout. */
  readonly delayMs: number;
  readonly jitterMs: number;
  /** For `bridge`: which of the other members, as a fraction in [0, 1). */
  readonly peer: number;
}

const NETSPLIT_DELAYS_MS = [30, 80, 150, 250] as const;

/**
 * The netsplit a fault's `r` stands for. The node is chosen by `r`'s leading digits
 * (`floor(r * candidates)`); the shape and the rest come from its trailing ones, so the
 * two are not tied together and the generated faults keep their shape (one number).
 */
export function netsplitPlan(r: number): NetsplitPlan {
  const n = Math.round(r * 10_000);
  const delayMs = NETSPLIT_DELAYS_MS[Math.floor(n / 10) % NETSPLIT_DELAYS_MS.length]!;
  return {
    shape: NETSPLIT_SHAPES[n % NETSPLIT_SHAPES.length]!,
    mode: Math.floor(n / 5) % 2 === 0 ? 'reset' : 'blackhole',
    delayMs,
    jitterMs: Math.round(delayMs / 4),
    peer: (Math.floor(n / 40) % 10) / 10,
  };
}
