/**
 * State-machine versions: what applying the log does, numbered. A build implements every
 * version up to STATE_MACHINE_VERSION; a cluster runs at one version, the cluster version,
 * which is replicated state (`setClusterVersion`, stored at `\x00meta/cluster-version`,
 * carried in snapshots; absent = 1). Apply behaviour that changed between versions follows
 * the cluster version as of the entry being applied, never this build's own, so replicas of
 * different builds apply the same log to the same bytes (docs/operations.md, "Upgrades").
 *
 * - v1: everything before the three changes below. An unknown command type is refused at
 *   apply (INVALID_COMMAND, not cached for dedup, nothing written); one-phase expiry (the
 *   leader proposes `expire` directly); conf changes write no member-address record.
 * - v2: `expiryIntent` (the two-phase expiry of docs/registry.md, "Expiry across a change of
 *   leader"; commit 5c0fcb3), `setCheckHealth` (a Consul TTL check's verdict as a client
 *   command; commit 7f6ccb7), and the replicated member-address record
 *   `\x00meta/member-addresses` written at apply of conf changes (commit 94ead0c), which
 *   starts empty on every replica at the entry that raises the cluster to v2.
 *   `setClusterVersion` itself is accepted at any cluster version (it is how a cluster leaves
 *   v1); a v1 build refuses it as an unknown command, which is why the leader proposes it
 *   only once every member reports a build that implements the version it raises to.
 * - v3: replicated access tokens (`bootstrapAcl`, `createToken`, `revokeToken`; keys `a/` and
 *   `t/`, docs/security.md "Access control"). A v2 build cannot load those keys, so it must
 *   never apply them: the gate refuses the commands until every member runs v3.
 * - v4: metadata's key `rollcall.consul` (the Consul adapter's check record) does not count
 *   toward the 64-key limit, so a Consul registration with a check keeps 64 Meta keys of its
 *   own, as Consul allows. Below v4 a register or update with 64 keys and that one is refused,
 *   as a v3 build refuses it.
 * - v5: `recordMemberAddresses`, the leader's fill of the member-address record for members
 *   that have no entry (added while the cluster was at v1, or before a v1 → v2 raise emptied
 *   it): the node adds, at apply, each address for a current member still without one
 *   (src/node/peer-book.ts). Below v5 it is refused, as a v4 build refuses an unknown type,
 *   so a v4 build never keeps another record than its v5 peers.
 * - v6: the started-member record (`\x00meta/started-members`, docs/storage.md): each member,
 *   once part of a running cluster, commits `recordMemberStarted` for itself (as etcd's
 *   publish), a conf change that removes a member deletes its entry, and the entry that
 *   raises the cluster to 6 records every current member (each reported a running build, or
 *   the leader would not raise). A peer answers a founding probe from it
 *   (src/node/founding-guard.ts). Below v6 `recordMemberStarted` is refused, as a v5 build
 *   refuses an unknown type, so no replica of a v5 build keeps another record.
 */
export const STATE_MACHINE_VERSION = 6;

/** The cluster version of a state machine that has never recorded one. */
export const BASE_CLUSTER_VERSION = 1;

/** The first cluster version at which each command type may change state. Absent: v1. */
export const INTRODUCED_IN: Readonly<Record<string, number>> = Object.freeze({
  expiryIntent: 2,
  setCheckHealth: 2,
  bootstrapAcl: 3,
  createToken: 3,
  revokeToken: 3,
  recordMemberAddresses: 5,
  recordMemberStarted: 6,
});

/** The first cluster version that keeps the started-member record (state.ts, `startedMembers`). */
export const MEMBER_STARTED_SINCE = 6;

/** The first cluster version at which metadata's reserved record key is not counted (validate.ts). */
export const RECORD_KEY_UNCOUNTED_SINCE = 4;

/** The first cluster version that writes the member-address record at conf changes. */
export const MEMBER_ADDRESSES_SINCE = 2;

/**
 * Test only: `ROLLCALL_TEST_STATE_MACHINE_VERSION=1` makes this build report and accept only
 * that version (as a build of that version would), so a real-process test can run a mixed
 * cluster without building an old commit. Never set it in production: the build still
 * applies v2 commands it is handed at a v2 cluster version; it only refuses to start in one.
 */
export function buildStateMachineVersion(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['ROLLCALL_TEST_STATE_MACHINE_VERSION'];
  if (raw === undefined || raw === '') return STATE_MACHINE_VERSION;
  const v = Number(raw);
  if (!Number.isSafeInteger(v) || v < BASE_CLUSTER_VERSION || v > STATE_MACHINE_VERSION) {
    throw new Error(
      `ROLLCALL_TEST_STATE_MACHINE_VERSION must be an integer from ${BASE_CLUSTER_VERSION} to ${STATE_MACHINE_VERSION}, got ${JSON.stringify(raw)}`,
    );
  }
  return v;
}

/** A node whose build is older than the cluster version it finds in its state machine. */
export class StateMachineVersionError extends Error {
  constructor(
    readonly buildVersion: number,
    readonly clusterVersion: number,
  ) {
    super(
      `this build implements state-machine version ${buildVersion}, but the cluster version in the data directory is ${clusterVersion}: ` +
        `run a build that implements version ${clusterVersion} or later (a cluster version is never lowered; docs/operations.md, "Upgrades")`,
    );
    this.name = 'StateMachineVersionError';
  }
}
