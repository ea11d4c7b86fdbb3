/**
 * An in-process stand-in for RollcallNode behind the HTTP API (the `NodeApi` the server,
 * the Consul API and DNS are built on): a real Registry over an in-memory store, every write
 * applied at once as the next log entry. Lets the routes, the watch hub and the waiters be
 * tested without Raft, processes or ports. For scripted HTTP nodes that a client talks to,
 * see scripted-http-node.ts.
 */
import type { NodeStatus } from '../src/node/index.js';
import type { ProposalResult } from '../src/node/peer-messages.js';
import type { ClientCommand, Command, KeepaliveOutcome } from '../src/registry/index.js';
import { Registry, STATE_MACHINE_VERSION } from '../src/registry/index.js';
import type { NodeApi } from '../src/server/node-api.js';
import { MemorySm } from './registry-helpers.js';

export class InMemoryNodeApi implements NodeApi {
  readonly id = 'fake1';
  leader: string | null = 'fake1';
  role: NodeStatus['role'] = 'leader';
  /** Committed entries not yet applied, for /readyz. */
  lag = 0;
  /** The corruption check's view of this node: never marked unless a test sets `selfCorruption`. */
  readonly integrity: {
    selfCorruption: { readonly by: string; readonly detail: string; readonly at: number } | null;
    corruptMembers(): readonly { readonly id: string; readonly detail: string }[];
  } = { selfCorruption: null, corruptMembers: () => [] };
  private index = 0;

  private constructor(
    readonly registry: Registry,
    private readonly sm: MemorySm,
  ) {}

  static async create(options: { historySize?: number } = {}): Promise<InMemoryNodeApi> {
    const sm = new MemorySm();
    return new InMemoryNodeApi(await Registry.open(sm, options), sm);
  }

  async submit(command: ClientCommand, _timeoutMs: number): Promise<ProposalResult> {
    return this.apply(command);
  }

  /** Applies any command (leader ones too) as the next entry. */
  apply(command: Command | ClientCommand): ProposalResult {
    const index = ++this.index;
    const out = this.registry.applyBatch([{ index, term: 1, command: command as Command }]);
    this.sm.write(out.ops);
    const result = out.results.get(index);
    if (result === undefined) throw new Error('no result');
    return { index, result };
  }

  async readBarrier(_timeoutMs: number): Promise<number> {
    return this.registry.appliedIndex;
  }

  async keepalive(sessionId: string, _timeoutMs: number): Promise<KeepaliveOutcome> {
    return this.registry.getSession(sessionId) ? 'ok' : 'unknown';
  }

  // Membership (routes/membership.ts): accepted, nothing to do in one process.
  async addMember(_id: string, _address: string, _timeoutMs: number): Promise<{ index: number }> {
    return { index: this.registry.appliedIndex };
  }

  async removeMember(_id: string, _timeoutMs: number): Promise<{ index: number }> {
    return { index: this.registry.appliedIndex };
  }

  async transferLeadershipTo(to: string | undefined, _timeoutMs: number): Promise<{ index: number; leader: string }> {
    return { index: this.registry.appliedIndex, leader: to ?? 'fake2' };
  }

  status(): NodeStatus {
    return {
      id: this.id,
      role: this.role,
      leader: this.leader,
      term: 1,
      commitIndex: this.registry.appliedIndex + this.lag,
      appliedIndex: this.registry.appliedIndex,
      lastIndex: this.registry.appliedIndex,
      firstIndex: 1,
      revision: this.registry.revision,
      conf: { voters: [this.id], learners: [] },
      clusterVersion: this.registry.clusterVersion,
      buildVersion: STATE_MACHINE_VERSION,
      supportedVersion: STATE_MACHINE_VERSION,
      members: [
        {
          id: this.id,
          isLearner: false,
          match: this.registry.appliedIndex,
          lastContact: Date.now(),
          connected: true,
          reported: null,
        },
      ],
      protection: [],
    };
  }
}
