/**
 * The founding guard: before a node founds a cluster (an empty data directory started
 * without --join, src/node/open-data.ts) it asks its peers whether their cluster is already
 * past its founding, and refuses to start if one says so.
 *
 * Why: a member whose data directory was lost and that is started again as a founding
 * member would bootstrap a fresh log (term 1, no vote) and take part in the running
 * cluster. It lost its persisted vote and the entries it acknowledged, so it could vote
 * twice in one term and help elect a leader that lacks committed entries: a Raft safety
 * violation. etcd refuses the same start ("member X has already been bootstrapped",
 * isMemberBootstrapped in server/etcdserver); the operator removes the member and adds it
 * back with --join (docs/operations.md, "Replacing a member whose data was lost").
 *
 * The races, and why founding still works:
 * 1. A whole new cluster started at once: every member is empty and asks before it
 *    listens, so each peer is down (refused at once) or, already founded, answers "not
 *    past founding" (term 1: no election has happened). All of them found.
 * 2. A peer that founded and has only the founding entries: term 1, not past founding;
 *    the asker founds too and both hold the same founding entries.
 * 3. Peers that do not answer within `waitMs` (down, partitioned, all starting): the node
 *    founds as before. The guard protects when some peer of the running cluster is
 *    reachable, which is the case it exists for (a cluster losing one member's disk).
 * 4. A founding member started late, after the others already elected a leader: its peers
 *    cannot tell "never started" from "wiped" by their logs. From cluster version 6 they
 *    tell by the started-member record (member-publication.ts, as etcd's publish and
 *    isMemberBootstrapped): a member recorded as started is refused, one that is not may
 *    found (it never voted nor acknowledged anything, and its founding entries are the
 *    others'). Below version 6 a peer cannot know, and that is no objection (logged as a
 *    warning): a new cluster stays below 6 until every member has reported its build, so
 *    refusing then would refuse every founding member that boots a second late (a machine
 *    that starts later, a slow process start) for good, with no way back but the runbook.
 *    The guard thus protects from cluster version 6 on, which a new cluster reaches seconds
 *    after its last member is up, and an upgraded one once its raise is done.
 * 5. A fresh node started with --join asks too (joinDecision): a peer that records it as a
 *    current member that has started means it lost its data without being removed (its
 *    voter slot would go on with an empty term and vote); it is refused until it has been
 *    removed and added back, which deletes its record.
 */
import { createSecureContext } from 'node:tls';

import type { ConfState } from '../../raft/index.js';
import type { Logger } from '../log/index.js';
import { BASE_CLUSTER_VERSION, MEMBER_STARTED_SINCE } from '../registry/index.js';
import {
  ClusterIdentity,
  type FoundingProbeResult,
  type FoundingState,
  foundingStateOf,
  type PeerAddress,
  type PeerTlsOptions,
  probeFounding,
} from '../transport/index.js';

/**
 * What this node answers a peer's founding probe: from its durable log and hard state, and
 * from its applied state whether the asker is a current member recorded as started.
 */
export function describeFounding(
  storage: {
    initialState(): { hardState: { term: number } };
    lastIndex(): number;
    firstIndex(): number;
  },
  registry: { readonly clusterVersion: number; readonly conf: ConfState | null; hasStarted(id: string): boolean },
  asker: string,
): FoundingState {
  const conf = registry.conf;
  const member = conf !== null && (conf.voters.includes(asker) || conf.learners.includes(asker));
  return foundingStateOf(storage.initialState().hardState.term, storage.lastIndex(), storage.firstIndex() - 1, {
    started: member && registry.hasStarted(asker),
    clusterVersion: registry.clusterVersion,
  });
}

/** `rollcall server` exits with this code when the guard refuses (docs/cli.md). */
export const MEMBER_BOOTSTRAPPED_EXIT_CODE = 12;

/** How long a founding member waits for its peers' answers by default. */
export const DEFAULT_FOUNDING_PROBE_MS = 2_000;

/**
 * A start refused: `peer` says this member has already been bootstrapped (a founding: its
 * cluster is past its founding and records this member as started; a --join: it records
 * this member as a current member that has started). Nothing was written.
 */
export class MemberBootstrappedError extends Error {
  override readonly name = 'MemberBootstrappedError';
  readonly code = 'MEMBER_ALREADY_BOOTSTRAPPED';
  constructor(
    readonly member: string,
    readonly peer: string,
    readonly state: FoundingState,
    readonly mode: GuardMode = 'found',
  ) {
    super(
      mode === 'join'
        ? `member ${member} has already been bootstrapped: its data directory is empty and it was started with --join, ` +
            `but peer ${peer} records it as a current member that has started (term ${state.term}). ` +
            `Refusing to join with an empty log in its old voter slot, which would lose its vote and the entries it acknowledged. ` +
            `Remove the member first (rollcall cluster remove ${member}), add it back (rollcall cluster add --id ${member} --peer-address <host:port>) ` +
            'and start it with --join again: docs/operations.md, "Replacing a member whose data was lost"'
        : `member ${member} has already been bootstrapped: its data directory is empty, but peer ${peer} ` +
            `belongs to a running cluster (term ${state.term}, last index ${state.lastIndex}) ` +
            'that records this member as started. ' +
            `Refusing to found a new log, which would lose this member's vote and the entries it acknowledged. ` +
            `Remove the member (rollcall cluster remove ${member}), add it back (rollcall cluster add --id ${member} --peer-address <host:port>) ` +
            'and start it with --join: docs/operations.md, "Replacing a member whose data was lost"',
    );
  }
}

/** What the node is about to do with its empty data directory: found a cluster, or join one. */
export type GuardMode = 'found' | 'join';

/** One peer's answer, as the decision reads it. */
export interface PeerFoundingAnswer {
  readonly peer: string;
  readonly result: FoundingProbeResult;
}

export type FoundingDecision =
  | { readonly kind: 'found' }
  | { readonly kind: 'refuse'; readonly peer: string; readonly state: FoundingState };

/**
 * A founding member is refused when a peer's cluster is past its founding and records the
 * asker as started. A peer below cluster version 6 (or one that does not say) cannot tell a
 * wiped member from one that never started: no objection (see the header, race 4), nor is
 * no answer.
 */
export function foundingDecision(answers: readonly PeerFoundingAnswer[]): FoundingDecision {
  for (const { peer, result } of answers)
    if (result.kind === 'answered' && result.state.pastFounding && result.state.started === true)
      return { kind: 'refuse', peer, state: result.state };
  return { kind: 'found' };
}

/** Whether a peer's answer is past founding but cannot say whether the asker ever started. */
function cannotTell(result: FoundingProbeResult): boolean {
  return (
    result.kind === 'answered' &&
    result.state.pastFounding &&
    result.state.started !== true &&
    (result.state.clusterVersion ?? BASE_CLUSTER_VERSION) < MEMBER_STARTED_SINCE
  );
}

/**
 * A fresh node started with --join is refused when a peer records it as a current member
 * that has started (its data was lost, and it was not removed and added back). Peers that
 * do not say (older builds, below version 6) are no objection, as before the record.
 */
export function joinDecision(answers: readonly PeerFoundingAnswer[]): FoundingDecision {
  for (const { peer, result } of answers)
    if (result.kind === 'answered' && result.state.started === true)
      return { kind: 'refuse', peer, state: result.state };
  return { kind: 'found' };
}

export interface FoundingGuardOptions {
  readonly id: string;
  /** The members' addresses (`--peers`); this node's own entry is skipped. */
  readonly peers: ReadonlyMap<string, PeerAddress>;
  readonly secret: string;
  /**
   * The id of the cluster this node would found: peers of another cluster refuse the probe.
   * null for a joiner, which has none yet (it says it is joining).
   */
  readonly clusterId: string | null;
  /** Founding (default) or --join: which decision the answers go to. */
  readonly mode?: GuardMode;
  readonly tls?: PeerTlsOptions;
  /** Bound on the wait for answers; 0 skips the guard. */
  readonly waitMs: number;
  readonly logger: Logger;
  /** Asks one peer (tests pass fakes); default: probeFounding over the peer transport. */
  readonly probe?: (peer: string, address: PeerAddress) => Promise<FoundingProbeResult>;
}

/**
 * Asks every peer at once and resolves when all have answered (or cannot), or rejects with
 * MemberBootstrappedError as soon as one answer objects (foundingDecision, or joinDecision
 * for a --join).
 */
export async function guardFounding(o: FoundingGuardOptions): Promise<void> {
  const peers = [...o.peers].filter(([peer]) => peer !== o.id);
  // A cluster of one has nobody to ask.
  if (o.waitMs <= 0 || peers.length === 0) return;
  const mode = o.mode ?? 'found';
  const decide = mode === 'join' ? joinDecision : foundingDecision;
  const cluster = o.clusterId === null ? ClusterIdentity.unassigned(() => undefined) : ClusterIdentity.of(o.clusterId);
  const secureContext =
    o.tls === undefined ? null : createSecureContext({ cert: o.tls.cert, key: o.tls.key, ca: o.tls.ca });
  const probe =
    o.probe ??
    ((peer: string, address: PeerAddress) =>
      probeFounding({
        selfId: o.id,
        peerId: peer,
        address,
        secret: o.secret,
        cluster,
        secureContext,
        timeoutMs: o.waitMs,
      }));
  const answers: PeerFoundingAnswer[] = [];
  await new Promise<void>((resolve, reject) => {
    let pending = peers.length;
    for (const [peer, address] of peers) {
      probe(peer, address).then(
        (result) => {
          answers.push({ peer, result });
          const decision = decide([{ peer, result }]);
          if (decision.kind === 'refuse')
            reject(new MemberBootstrappedError(o.id, decision.peer, decision.state, mode));
          if (--pending === 0) resolve();
        },
        (err: unknown) => reject(err),
      );
    }
  });
  const unsure = answers.filter(({ result }) => cannotTell(result)).map(({ peer }) => peer);
  if (mode === 'found' && unsure.length > 0)
    o.logger.warn(
      { peers: unsure, since: MEMBER_STARTED_SINCE },
      'founding while peers run a cluster below the version that records started members: they cannot tell a member that never started from one whose data was lost. If this member ran before and its data directory was wiped, stop it now and follow docs/operations.md, "Replacing a member whose data was lost"',
    );
  o.logger.info(
    {
      answers: Object.fromEntries(
        answers.map(({ peer, result }) => [
          peer,
          result.kind === 'answered'
            ? `term ${result.state.term}${result.state.started === undefined ? '' : `, started ${result.state.started}`}`
            : result.kind === 'failed'
              ? `no answer (${result.error.code})`
              : result.kind,
        ]),
      ),
    },
    mode === 'join' ? 'no peer records this member as started; joining' : 'no peer objects to the founding; founding',
  );
}
