/**
 * MemberStatus under a stepped wall clock: whether a member's report is fresh enough to
 * count toward raising the cluster version (a step never undone) is a question of elapsed
 * time, so it is asked of the monotonic clock; the wall clock only stamps the report for
 * display (GET /v1/cluster). As with session deadlines (test/cluster-clock-step.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { ConfState, RawNode } from '../raft/index.js';
import { ManualClock } from '../src/node/manual-clock.js';
import { MemberStatus } from '../src/node/member-status.js';
import type { PeerStatus } from '../src/node/peer-messages.js';

/** Virtual time whose wall clock can be stepped (NTP, an operator) while monotonic time runs on. */
class SteppedClock extends ManualClock {
  private offsetMs = 0;

  override wallNow(): number {
    return super.wallNow() + this.offsetMs;
  }

  stepWall(ms: number): void {
    this.offsetMs += ms;
  }
}

function members(clock: SteppedClock): MemberStatus {
  const conf: ConfState = { voters: ['n1', 'n2'], learners: [] };
  const raw = {
    status: () => ({
      softState: { role: 'leader', leader: 'n1', term: 2 },
      hardState: { term: 2, vote: 'n1', commit: 7 },
      conf,
    }),
  } as unknown as RawNode;
  return new MemberStatus({
    id: 'n1',
    raw,
    clock,
    buildVersion: 3,
    advertiseHttp: null,
    appliedIndex: () => 7,
    slowestRecentWriteMs: () => 0,
    send: () => undefined,
  });
}

const REPORT: PeerStatus = {
  role: 'follower',
  term: 2,
  commitIndex: 7,
  appliedIndex: 7,
  http: null,
  slowestWriteMs: 0,
  stateMachineVersion: 3,
};

describe('MemberStatus with a stepped wall clock', () => {
  it('a silent member stops counting after 3 s of elapsed time, whatever the wall clock did', () => {
    const clock = new SteppedClock();
    const status = members(clock);
    status.onReport('n2', REPORT);
    expect(status.supportedVersion()).toBe(3);
    // The wall clock steps back a minute; n2 then says nothing for 4 s (it may be restarting
    // on an older build): its old report must no longer raise the cluster version.
    clock.stepWall(-60_000);
    clock.advance(4000);
    expect(status.supportedVersion()).toBe(1);
  });

  it('a member that keeps reporting counts, even after the wall clock stepped forward', () => {
    const clock = new SteppedClock();
    const status = members(clock);
    status.onReport('n2', REPORT);
    clock.stepWall(60_000);
    clock.advance(500);
    expect(status.supportedVersion()).toBe(3);
  });

  it('stamps a report with the wall clock for display', () => {
    const clock = new SteppedClock();
    const status = members(clock);
    clock.stepWall(-60_000);
    status.onReport('n2', REPORT);
    expect(status.reported('n2')).toEqual({ ...REPORT, at: clock.wallNow() });
  });
});
