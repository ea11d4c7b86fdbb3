/**
 * What a peer connection coming up, dropping or being refused means for this node: work
 * waiting on that peer is failed at once rather than at its deadline, and an election
 * happens within a few ticks where waiting out a whole election timeout would gain nothing
 * (just started with a quorum reachable; the leader's process is gone).
 */
import type { ConfState, RawNode, SoftState } from '../../raft/index.js';
import type { Logger } from '../log/index.js';
import type { ForwardedRequests } from './forwarding.js';

export interface PeerConnectionsDeps {
  readonly id: string;
  readonly raw: RawNode;
  readonly log: Logger;
  readonly forwards: ForwardedRequests;
  soft(): SoftState;
  conf(): ConfState;
  isConnected(peer: string): boolean;
  /** Work waiting for a leader looks again (a connection came up). */
  wakeWaiters(): void;
  kick(): void;
  closed(): boolean;
}

export class PeerConnections {
  /** Until a leader is first known: see maybeCampaignAtStart. */
  private startElectionPending = true;

  constructor(private readonly d: PeerConnectionsDeps) {}

  /** A leader is known: no early election at start any more. */
  leaderKnown(): void {
    this.startElectionPending = false;
  }

  /** The transport saw a stream to or from `peer` come up or go down. */
  onConnection(peer: string, connected: boolean): void {
    if (connected) {
      this.maybeCampaignAtStart();
      this.d.wakeWaiters();
      return;
    }
    // Answers come back on the peer's own stream and requests go out on ours: with either
    // down, requests waiting on that peer would otherwise wait out their deadline.
    this.d.forwards.failPeer(peer, `the connection to ${peer} dropped`);
  }

  /**
   * A dial to `peer` was refused: its process is gone. If it was our leader, elect now
   * rather than after a full election timeout, and fail what waits on it.
   */
  onRefused(peer: string): void {
    if (this.d.closed()) return;
    this.d.forwards.failPeer(peer, `${peer} is down (connection refused)`);
    const soft = this.d.soft();
    if (soft.role !== 'leader' && soft.leader === peer) {
      this.d.log.info({ leader: peer }, 'leader is down (connection refused); electing early');
      this.d.raw.leaderUnreachable(peer);
      this.d.kick();
    }
  }

  /**
   * Just started, no leader heard from, and a quorum of voters reachable (counting this
   * node): elect within a few ticks rather than a whole election timeout (a restarted
   * cluster is writable sooner). Once per process: after the first leader, silence is what
   * the election timeout is for.
   */
  maybeCampaignAtStart(): void {
    if (!this.startElectionPending || this.d.closed()) return;
    if (this.d.soft().leader !== null) {
      this.startElectionPending = false;
      return;
    }
    const voters = this.d.conf().voters;
    const reachable = voters.filter((v) => v === this.d.id || this.d.isConnected(v)).length;
    if (reachable <= voters.length / 2) return;
    this.startElectionPending = false;
    this.d.log.debug({ reachable, voters: voters.length }, 'no leader yet and a quorum reachable: electing early');
    this.d.raw.campaignSoon();
    this.d.kick();
  }
}
