/**
 * Publishing this member: once it is part of a running cluster (a leader is known and the
 * cluster runs at version 6), a member whose entry is missing from the replicated
 * started-member record commits `recordMemberStarted` for itself, through the leader like
 * any write, and tries again until it sees the entry applied. etcd's members publish
 * themselves the same way at their first start (`publishV3`); its `isMemberBootstrapped`
 * reads the result, as the founding guard's peers do here (founding-guard.ts): a member
 * recorded as started whose data is gone is refused; a founding member that never started
 * (no entry) may found late.
 *
 * The record is deleted by the conf change that removes the member (the registry's apply),
 * so a member removed, added back and started with --join publishes itself again.
 */
import type { ConfState, SoftState } from '../../raft/index.js';
import type { Logger } from '../log/index.js';
import type { RecordMemberStarted, Registry } from '../registry/index.js';
import { MEMBER_STARTED_SINCE } from '../registry/index.js';
import type { NodeClock } from './clock.js';
import type { ProposalResult } from './peer-messages.js';

/** How long one attempt may take, and the least time between two. */
export const PUBLISH_ATTEMPT_MS = 5_000;
export const PUBLISH_RETRY_MS = 1_000;

export interface MemberPublicationDeps {
  readonly id: string;
  readonly registry: Pick<Registry, 'clusterVersion' | 'hasStarted'>;
  readonly clock: NodeClock;
  readonly log: Logger;
  soft(): SoftState;
  conf(): ConfState;
  /** Replicates the command through the leader; resolves once applied on this node. */
  submit(command: RecordMemberStarted, timeoutMs: number): Promise<ProposalResult>;
  closed(): boolean;
}

export class MemberPublication {
  private inFlight = false;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  /** Failures since the last success, for a warning that is not repeated every second. */
  private failures = 0;

  constructor(private readonly d: MemberPublicationDeps) {}

  /** Whether this member should publish itself now (nothing in flight, not tried too recently). */
  due(): boolean {
    const { registry, id } = this.d;
    if (this.inFlight || this.d.closed()) return false;
    if (registry.clusterVersion < MEMBER_STARTED_SINCE || registry.hasStarted(id)) return false;
    const conf = this.d.conf();
    // A member not (or no longer) in the configuration has nothing to publish: the leader
    // would refuse it, and a removed member must not come back recorded.
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) return false;
    if (this.d.soft().leader === null) return false;
    return this.d.clock.now() - this.lastAttemptAt >= PUBLISH_RETRY_MS;
  }

  /** On the duty timer: publishes this member if its entry is missing. */
  check(): void {
    if (!this.due()) return;
    this.inFlight = true;
    this.lastAttemptAt = this.d.clock.now();
    const { id, log } = this.d;
    this.d.submit({ type: 'recordMemberStarted', member: id }, PUBLISH_ATTEMPT_MS).then(
      (result) => {
        this.inFlight = false;
        if (result.result.ok) {
          this.failures = 0;
          log.info({ member: id, index: result.index }, 'published this member: recorded as started');
        } else {
          this.onFailure(result.result.message);
        }
      },
      (err: unknown) => {
        this.inFlight = false;
        this.onFailure(err instanceof Error ? err.message : String(err));
      },
    );
  }

  private onFailure(why: string): void {
    if (this.d.closed()) return;
    this.failures++;
    // Tried again on a later duty tick; said once at warn, then quietly.
    const level = this.failures === 3 ? 'warn' : 'debug';
    this.d.log[level]({ member: this.d.id, attempts: this.failures, why }, 'publishing this member failed; retrying');
  }
}
