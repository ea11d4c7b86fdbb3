/**
 * The in-memory registry and its indexes, and the only code that mutates them.
 *
 * Every change goes through the mutators below, inside a command transaction, so three
 * things can never drift apart: the indexes, the set of keys to persist (`dirty`), and the
 * events. A transaction stamps everything it touches with one revision (current + 1), which
 * becomes the registry's revision only if something changed: one revision per command.
 */

import type { HealthPolicy } from '../health/policy.js';
import type { DedupTable } from './dedup.js';
import type {
  AccessRules,
  AclToken,
  ConfState,
  EventCause,
  Instance,
  RegistryEvent,
  Session,
  StoredAccessRules,
  StoredHealthPolicy,
} from './model.js';
import { instanceKey, serviceKey } from './model.js';
import { BASE_CLUSTER_VERSION } from './version.js';

export interface ServiceEntry {
  readonly namespace: string;
  readonly service: string;
  /** Revision of the last change to any of its instances. */
  revision: number;
  /**
   * id -> instance: the one map that holds instances. By cluster is a filter over it (a
   * service has few clusters, and a listing sorts the whole service anyway).
   */
  readonly byId: Map<string, Instance>;
}

/**
 * The registry's instances by instanceKey, looked up through their services' maps: no map
 * entry and no key string per instance of its own (issue 21: ~90 bytes an instance).
 * Names cannot contain '/', so the last '/' of a key ends its service key.
 */
export class InstanceTable {
  constructor(private readonly services: ReadonlyMap<string, ServiceEntry>) {}

  get(key: string): Instance | undefined {
    const slash = key.lastIndexOf('/');
    if (slash < 0) return undefined;
    return this.services.get(key.slice(0, slash))?.byId.get(key.slice(slash + 1));
  }

  /** Every instance with its key, in no particular order. */
  *entries(): Generator<[string, Instance]> {
    for (const svc of this.services.values())
      for (const [id, inst] of svc.byId) yield [instanceKey(svc.namespace, svc.service, id), inst];
  }
}

/** What the current batch changed, by storage key family; persistence turns it into ops. */
export class Dirty {
  readonly instances = new Set<string>();
  readonly services = new Set<string>();
  readonly sessions = new Set<string>();
  readonly clients = new Set<string>();
  rules = false;
  healthPolicy = false;
  revision = false;
  applied = false;
  conf = false;
  clusterVersion = false;
  readonly tokens = new Set<string>();
  aclBootstrap = false;
  startedMembers = false;
}

interface Tx {
  readonly revision: number;
  readonly cause: EventCause | null;
  changed: boolean;
  readonly events: RegistryEvent[];
}

export class RegistryState {
  appliedIndex = 0;
  appliedTerm = 0;
  revision = 0;
  /**
   * The revision at which some service last lost its final instance. Empty services are
   * dropped rather than kept as tombstones, so this stands in as the serviceRevision of every
   * absent service: monotonic and never below the revision of that service's last change.
   */
  emptiedRevision = 0;
  conf: ConfState | null = null;
  rules: StoredAccessRules | null = null;
  healthPolicy: StoredHealthPolicy | null = null;
  /** The state-machine version this log position runs at (src/registry/version.ts); 1 until raised. */
  clusterVersion = BASE_CLUSTER_VERSION;

  readonly services = new Map<string, ServiceEntry>();
  readonly instances = new InstanceTable(this.services);
  readonly sessions = new Map<string, Session>();
  /** sessionId -> instance keys */
  readonly bySession = new Map<string, Set<string>>();
  /** Replicated access tokens by id, and their ids by secret digest (hex). */
  readonly tokens = new Map<string, AclToken>();
  readonly tokensByHash = new Map<string, string>();
  /** The revision of the bootstrapAcl that succeeded; 0: not bootstrapped. */
  aclBootstrapRevision = 0;
  /**
   * v6: the members that have started (recordMemberStarted, or current at the raise to 6),
   * each with the log index that recorded it. Invariant: every id is a current member (a
   * conf change that removes one deletes it: noteConf).
   */
  readonly startedMembers = new Map<string, number>();

  dirty = new Dirty();
  #tx: Tx | null = null;

  constructor(readonly dedup: DedupTable) {}

  begin(cause: EventCause | null): number {
    if (this.#tx !== null) throw new Error('nested registry transaction');
    this.#tx = { revision: this.revision + 1, cause, changed: false, events: [] };
    return this.#tx.revision;
  }

  end(): { changed: boolean; events: RegistryEvent[] } {
    const tx = this.#requireTx();
    this.#tx = null;
    if (tx.changed) {
      this.revision = tx.revision;
      this.dirty.revision = true;
    }
    return { changed: tx.changed, events: tx.events };
  }

  /** Abandons a transaction that changed nothing (failure paths check before mutating). */
  abort(): void {
    const tx = this.#requireTx();
    if (tx.changed) throw new Error('cannot abort a registry transaction that already changed state');
    this.#tx = null;
  }

  putInstance(next: Instance): void {
    const tx = this.#requireTx();
    const key = instanceKey(next.namespace, next.service, next.id);
    const prev = this.instances.get(key);
    if (prev !== undefined) this.#unindex(key, prev);
    this.#index(key, next, tx.revision);
    this.dirty.instances.add(key);
    tx.changed = true;
    tx.events.push(
      prev === undefined
        ? { type: 'put', revision: tx.revision, instance: next, cause: this.#cause(tx) }
        : { type: 'put', revision: tx.revision, instance: next, previous: prev, cause: this.#cause(tx) },
    );
  }

  deleteInstance(prev: Instance): void {
    const tx = this.#requireTx();
    const key = instanceKey(prev.namespace, prev.service, prev.id);
    if (this.instances.get(key) === undefined) return;
    this.#unindex(key, prev);
    const sk = serviceKey(prev.namespace, prev.service);
    const svc = this.services.get(sk);
    if (svc !== undefined) {
      this.#touchService(svc, tx.revision);
      if (svc.byId.size === 0) {
        this.services.delete(sk);
        this.emptiedRevision = tx.revision;
      }
    }
    this.dirty.instances.add(key);
    tx.changed = true;
    tx.events.push({ type: 'delete', revision: tx.revision, instance: prev, cause: this.#cause(tx) });
  }

  putSession(s: Session): void {
    const tx = this.#requireTx();
    this.sessions.set(s.id, s);
    this.dirty.sessions.add(s.id);
    tx.changed = true;
  }

  deleteSession(id: string): void {
    const tx = this.#requireTx();
    if (!this.sessions.delete(id)) return;
    this.bySession.delete(id);
    this.dirty.sessions.add(id);
    tx.changed = true;
  }

  setRules(rules: AccessRules): void {
    const tx = this.#requireTx();
    this.rules = Object.freeze({ rules, revision: tx.revision });
    this.dirty.rules = true;
    tx.changed = true;
  }

  setHealthPolicy(policy: HealthPolicy): void {
    const tx = this.#requireTx();
    this.healthPolicy = Object.freeze({ policy, revision: tx.revision });
    this.dirty.healthPolicy = true;
    tx.changed = true;
  }

  putToken(t: AclToken): void {
    const tx = this.#requireTx();
    this.loadToken(t);
    this.dirty.tokens.add(t.id);
    tx.changed = true;
  }

  deleteToken(id: string): void {
    const tx = this.#requireTx();
    const t = this.tokens.get(id);
    if (t === undefined) return;
    this.tokens.delete(id);
    this.tokensByHash.delete(t.secretHash);
    this.dirty.tokens.add(id);
    tx.changed = true;
  }

  markAclBootstrapped(): void {
    const tx = this.#requireTx();
    this.aclBootstrapRevision = tx.revision;
    this.dirty.aclBootstrap = true;
    tx.changed = true;
  }

  /** Records that `id` has started, at log index `index` (a change of no instance: no revision). */
  recordStarted(id: string, index: number): void {
    this.#requireTx();
    this.startedMembers.set(id, index);
    this.dirty.startedMembers = true;
  }

  /** A conf change was applied: members no longer in it lose their started entry (a later add starts afresh). */
  noteConf(conf: ConfState): void {
    if (this.startedMembers.size === 0) return;
    const members = new Set([...conf.voters, ...conf.learners]);
    for (const id of [...this.startedMembers.keys()]) {
      if (members.has(id)) continue;
      this.startedMembers.delete(id);
      this.dirty.startedMembers = true;
    }
  }

  /** Loads a persisted token without a transaction (open/reload). */
  loadToken(t: AclToken): void {
    this.tokens.set(t.id, t);
    this.tokensByHash.set(t.secretHash, t.id);
  }

  /** Instance keys of a session's instances, in key order (events and ops must not depend on insertion order). */
  sessionInstanceKeys(sessionId: string): string[] {
    return [...(this.bySession.get(sessionId) ?? [])].sort();
  }

  /**
   * Loads persisted instances without a transaction (open/reload), items[from, to) in key
   * order; the `revision` of their services is loaded separately. A run of one service's
   * instances (key order keeps them together) finds its service without building its key,
   * and an instance's own key is built only for the session index: a million loaded keys
   * kept until indexing were a quarter of what the load's young-generation GCs copied.
   * Nothing else may change the state between the calls of one load.
   */
  loadInstances(items: readonly Instance[], from: number, to: number): void {
    let svc: ServiceEntry | undefined;
    for (let n = from; n < to; n++) {
      const inst = items[n]!;
      if (
        svc === undefined ||
        svc.service !== inst.service ||
        svc.namespace !== inst.namespace ||
        inst.sessionId !== null
      ) {
        this.#index(instanceKey(inst.namespace, inst.service, inst.id), inst, null);
        svc = this.services.get(serviceKey(inst.namespace, inst.service));
        continue;
      }
      svc.byId.set(inst.id, inst);
    }
  }

  #cause(tx: Tx): EventCause {
    if (tx.cause === null) throw new Error('instance change outside a command');
    return tx.cause;
  }

  #requireTx(): Tx {
    if (this.#tx === null) throw new Error('registry mutation outside a transaction');
    return this.#tx;
  }

  #index(key: string, inst: Instance, revision: number | null): void {
    const sk = serviceKey(inst.namespace, inst.service);
    let svc = this.services.get(sk);
    if (svc === undefined) {
      svc = { namespace: inst.namespace, service: inst.service, revision: 0, byId: new Map() };
      this.services.set(sk, svc);
    }
    svc.byId.set(inst.id, inst);
    if (revision !== null) this.#touchService(svc, revision);
    if (inst.sessionId !== null) {
      let keys = this.bySession.get(inst.sessionId);
      if (keys === undefined) {
        keys = new Set();
        this.bySession.set(inst.sessionId, keys);
      }
      keys.add(key);
    }
  }

  /** Leaves an emptied service in place: only deleteInstance can empty one (an upsert keeps its service). */
  #unindex(key: string, inst: Instance): void {
    this.services.get(serviceKey(inst.namespace, inst.service))?.byId.delete(inst.id);
    if (inst.sessionId !== null) {
      const keys = this.bySession.get(inst.sessionId);
      keys?.delete(key);
      if (keys?.size === 0) this.bySession.delete(inst.sessionId);
    }
  }

  #touchService(svc: ServiceEntry, revision: number): void {
    svc.revision = revision;
    this.dirty.services.add(serviceKey(svc.namespace, svc.service));
  }
}
