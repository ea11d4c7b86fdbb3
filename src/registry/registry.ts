/**
 * The registry state machine as the node layer sees it: apply committed entries, persist the
 * returned ops in one atomic batch, read from memory.
 *
 * applyBatch changes memory before the caller writes the ops. That is safe because the
 * entries are committed (a crash replays them from the log to the same result); if the write
 * itself fails, memory is ahead of disk and the node must stop or call reload().
 */

import { applyCommand } from './apply.js';
import type { Command, CommandResult } from './commands.js';
import { DEFAULT_MAX_CLIENTS } from './dedup.js';
import { DEFAULT_HISTORY_SIZE, EventHistory } from './history.js';
import type {
  AclToken,
  ConfState,
  Instance,
  RegistryEvent,
  ServiceSummary,
  Session,
  StoredAccessRules,
  StoredHealthPolicy,
} from './model.js';
import { instanceKey, serviceKey } from './model.js';
import type { BatchOp, SmStore } from './persistence.js';
import { drainOps, loadState } from './persistence.js';
import type { RegistryState } from './state.js';

export interface AppliedEntry {
  readonly index: number;
  readonly term: number;
  /** null = Raft no-op or conf change: only advances the applied index. */
  readonly command: Command | null;
  /** Set when membership changed at this entry. */
  readonly conf?: ConfState;
}

export interface ApplyOutcome {
  /** One result per entry that carried a command, by log index. */
  readonly results: Map<number, CommandResult>;
  /** register, update, setHealth: the instance as each command left it, by log index (absent for a deduplicated retry). */
  readonly instances: Map<number, Instance>;
  readonly events: RegistryEvent[];
  /** Write these in ONE atomic batch: they include the applied index, revision and conf. */
  readonly ops: BatchOp[];
}

export interface RegistryOptions {
  /**
   * Bound of the exactly-once table. Replicated semantics: every node of a cluster must use
   * the same value, or their dedup tables (and snapshots) diverge.
   */
  readonly maxClients?: number;
  /** Events kept in memory for watch resumption. Per node; may differ between nodes. */
  readonly historySize?: number;
  /** Where an error thrown by a history listener goes (default: rethrown on a microtask). */
  readonly onListenerError?: (err: unknown) => void;
}

export interface InstanceFilter {
  /** Only these clusters. */
  readonly cluster?: string | readonly string[] | undefined;
  /** Disabled instances are hidden from consumers unless asked for (admin views). */
  readonly includeDisabled?: boolean | undefined;
}

export interface InstanceList {
  /** The registry revision this answer reflects. */
  readonly revision: number;
  /** The revision of the last change in this service (for an absent service: see state.ts, emptiedRevision). */
  readonly serviceRevision: number;
  /** Sorted by cluster, then id. */
  readonly instances: readonly Instance[];
}

export class Registry {
  readonly history: EventHistory;
  #state: RegistryState;

  private constructor(
    private readonly sm: SmStore,
    state: RegistryState,
    private readonly maxClients: number,
    historySize: number,
    onListenerError: ((err: unknown) => void) | undefined,
  ) {
    this.#state = state;
    this.history = new EventHistory(historySize, state.revision, onListenerError);
  }

  /** Loads everything from the sublevel into memory. */
  static async open(sm: SmStore, options: RegistryOptions = {}): Promise<Registry> {
    const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    const state = await loadState(sm, maxClients);
    return new Registry(sm, state, maxClients, options.historySize ?? DEFAULT_HISTORY_SIZE, options.onListenerError);
  }

  get appliedIndex(): number {
    return this.#state.appliedIndex;
  }

  /** The state-machine version the cluster runs at, as of the applied index (version.ts). */
  get clusterVersion(): number {
    return this.#state.clusterVersion;
  }

  get appliedTerm(): number {
    return this.#state.appliedTerm;
  }

  get revision(): number {
    return this.#state.revision;
  }

  get conf(): ConfState | null {
    return this.#state.conf;
  }

  /** Whether `member` is recorded as started (cluster version 6; src/registry/version.ts). */
  hasStarted(member: string): boolean {
    return this.#state.startedMembers.has(member);
  }

  /** The started-member record: id -> the log index that recorded it, ids sorted. */
  startedMembers(): ReadonlyMap<string, number> {
    return new Map([...this.#state.startedMembers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  applyBatch(entries: readonly AppliedEntry[]): ApplyOutcome {
    const s = this.#state;
    // Check the whole batch before touching anything: a bad batch is the caller's bug.
    let expect = s.appliedIndex + 1;
    let term = s.appliedTerm;
    for (const e of entries) {
      if (e.index < expect) continue; // already applied (e.g. redelivered after reload)
      if (e.index !== expect) throw new Error(`applyBatch: gap, expected index ${expect}, got ${e.index}`);
      if (e.term < term) throw new Error(`applyBatch: term went back from ${term} to ${e.term} at index ${e.index}`);
      expect++;
      term = e.term;
    }

    const results = new Map<number, CommandResult>();
    const instances = new Map<number, Instance>();
    const events: RegistryEvent[] = [];
    for (const e of entries) {
      if (e.index <= s.appliedIndex) continue;
      s.appliedIndex = e.index;
      s.appliedTerm = e.term;
      s.dirty.applied = true;
      if (e.conf !== undefined) {
        s.conf = Object.freeze({
          voters: Object.freeze([...e.conf.voters]),
          learners: Object.freeze([...e.conf.learners]),
        });
        s.dirty.conf = true;
        s.noteConf(s.conf);
      }
      if (e.command === null) continue;
      const applied = applyCommand(s, e.index, e.command);
      results.set(e.index, applied.result);
      if (applied.instance !== undefined) instances.set(e.index, applied.instance);
      for (const ev of applied.events) events.push(ev);
    }
    const ops = drainOps(s);
    this.history.append(events, s.revision);
    return { results, instances, events, ops };
  }

  listInstances(namespace: string, service: string, filter: InstanceFilter = {}): InstanceList {
    const s = this.#state;
    const svc = s.services.get(serviceKey(namespace, service));
    if (svc === undefined) return { revision: s.revision, serviceRevision: s.emptiedRevision, instances: [] };
    const wanted =
      filter.cluster === undefined
        ? null
        : new Set(typeof filter.cluster === 'string' ? [filter.cluster] : filter.cluster);
    const instances: Instance[] = [];
    for (const i of svc.byId.values())
      if ((wanted === null || wanted.has(i.cluster)) && (i.enabled || filter.includeDisabled === true))
        instances.push(i);
    instances.sort((a, b) => cmp(a.cluster, b.cluster) || cmp(a.id, b.id));
    return { revision: s.revision, serviceRevision: svc.revision, instances };
  }

  /**
   * The instances of one service in no particular order, disabled ones included: for readers
   * that only sample (DNS answers a few of them), which must not pay for sorting a service
   * of 100,000 instances on every question the way `listInstances` would.
   */
  *eachInstance(namespace: string, service: string): Generator<Instance> {
    const svc = this.#state.services.get(serviceKey(namespace, service));
    if (svc === undefined) return;
    yield* svc.byId.values();
  }

  /**
   * Every instance of a namespace, sorted by service, cluster, id: what a namespace-wide
   * watch re-lists from after its resume point was compacted away.
   */
  listNamespace(
    namespace: string,
    filter: Pick<InstanceFilter, 'includeDisabled'> = {},
  ): { revision: number; instances: Instance[] } {
    const instances: Instance[] = [];
    for (const { service } of this.listServices(namespace))
      instances.push(...this.listInstances(namespace, service, filter).instances);
    return { revision: this.#state.revision, instances };
  }

  getInstance(namespace: string, service: string, id: string): Instance | undefined {
    return this.#state.instances.get(instanceKey(namespace, service, id));
  }

  /** Services that have at least one instance, sorted by namespace then service. */
  listServices(namespace?: string): ServiceSummary[] {
    const out: ServiceSummary[] = [];
    for (const svc of this.#state.services.values()) {
      if (namespace !== undefined && svc.namespace !== namespace) continue;
      out.push({
        namespace: svc.namespace,
        service: svc.service,
        instanceCount: svc.byId.size,
        revision: svc.revision,
      });
    }
    return out.sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.service, b.service));
  }

  getSession(id: string): Session | undefined {
    return this.#state.sessions.get(id);
  }

  /** All sessions, sorted by id. */
  sessions(): Session[] {
    return [...this.#state.sessions.values()].sort((a, b) => cmp(a.id, b.id));
  }

  /** A session's ephemeral instances, sorted by key. */
  sessionInstances(sessionId: string): Instance[] {
    const s = this.#state;
    return s.sessionInstanceKeys(sessionId).flatMap((k) => s.instances.get(k) ?? []);
  }

  /** Instances of a service, disabled and suspect included (what expiry protection measures against). */
  serviceSize(namespace: string, service: string): number {
    return this.#state.services.get(serviceKey(namespace, service))?.byId.size ?? 0;
  }

  /** The last seq applied for an exactly-once client, if it is still in the table. */
  clientSeq(clientId: string): number | undefined {
    return this.#state.dedup.get(clientId)?.seq;
  }

  accessRules(): StoredAccessRules | null {
    return this.#state.rules;
  }

  /** The admin-set health policy and the revision that stored it; null: none (built-in defaults). */
  healthPolicy(): StoredHealthPolicy | null {
    return this.#state.healthPolicy;
  }

  /** Whether the replicated ACL has been bootstrapped (bootstrapAcl applied). */
  aclBootstrapped(): boolean {
    return this.#state.aclBootstrapRevision !== 0;
  }

  /** The token whose secret has this SHA-256 digest (hex), if one is stored. */
  tokenByHash(secretHash: string): AclToken | undefined {
    const s = this.#state;
    const id = s.tokensByHash.get(secretHash);
    return id === undefined ? undefined : s.tokens.get(id);
  }

  /** Every replicated token, sorted by id. */
  tokens(): AclToken[] {
    return [...this.#state.tokens.values()].sort((a, b) => cmp(a.id, b.id));
  }

  /**
   * Reloads everything from the sublevel (after a snapshot was installed under it), or from
   * `from` when it holds the same records (the installed snapshot's, already decoded).
   */
  async reload(from: SmStore = this.sm): Promise<void> {
    // Built aside and swapped in one step, so reads never see a half-loaded state.
    this.#state = await loadState(from, this.maxClients);
    this.history.reset(this.#state.revision);
  }

  /** Everything replicated, in canonical order: for diagnostics and for tests that compare replicas. */
  dump(): RegistryDump {
    const s = this.#state;
    return {
      appliedIndex: s.appliedIndex,
      appliedTerm: s.appliedTerm,
      revision: s.revision,
      emptiedRevision: s.emptiedRevision,
      conf: s.conf,
      clusterVersion: s.clusterVersion,
      rules: s.rules,
      healthPolicy: s.healthPolicy,
      instances: [...s.instances.entries()].sort((a, b) => cmp(a[0], b[0])).map(([, i]) => i),
      services: this.listServices(),
      sessions: this.sessions(),
      dedup: [...s.dedup.entries()].map(([client, r]) => ({ client, seq: r.seq, index: r.index, result: r.result })),
    };
  }
}

export interface RegistryDump {
  readonly appliedIndex: number;
  readonly appliedTerm: number;
  readonly revision: number;
  readonly emptiedRevision: number;
  readonly conf: ConfState | null;
  readonly clusterVersion: number;
  readonly rules: StoredAccessRules | null;
  readonly healthPolicy: StoredHealthPolicy | null;
  readonly instances: readonly Instance[];
  readonly services: readonly ServiceSummary[];
  readonly sessions: readonly Session[];
  /** In eviction order: least recently applied first. */
  readonly dedup: readonly { client: string; seq: number; index: number; result: CommandResult }[];
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
