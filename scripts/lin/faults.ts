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
 *
 * `target` picks the node when the fault starts: the leader, a follower, or any member
 * (`rejoin` always takes the leader; `transfer`, `membership` and `crash` ignore it).
 */
import fc from 'fast-check';

export const FAULT_KINDS = ['kill', 'pause', 'isolate', 'oneway', 'transfer', 'membership', 'crash', 'rejoin'] as const;
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
  return f.kind === 'transfer' || f.kind === 'membership' || f.kind === 'crash' || f.kind === 'rejoin' ? f.kind : `${f.kind}:${f.target}`;
}

export function faultScheduleArb(options: FaultOptions = {}): fc.Arbitrary<PlannedFault[]> {
  return fc.array(faultArb(options.kinds ?? FAULT_KINDS), { minLength: 1, maxLength: options.maxFaults ?? 4 });
}
