/**
 * `RollcallClient`: the SDK's entry point. One client per process is the usual shape; it
 * holds the sockets (the two HTTP agents of its NodePool), the discovery feeds (one watch per
 * service), the registrations' keepalive timers and the exactly-once lanes, and `close()` ends
 * them all.
 */
import { randomBytes } from 'node:crypto';
import { Balancer, type BalancerOptions } from './balancer.js';
import { select } from './cache.js';
import { ApiError, ClientClosedError, UnavailableError } from './errors.js';
import { ServiceFeed } from './feed.js';
import type { ClientTls } from './http.js';
import { WriteLanes } from './lanes.js';
import { NodePool } from './node-pool.js';
import { DEFAULT_PAGE_SIZE, type PageOptions, pagesUnsupported, readAllPages } from './pages.js';
import { seg, servicePath } from './paths.js';
import { type RegisterOptions, Registration, type RegistrationHost } from './registration.js';
import { type RoutingPolicy, route } from './routing.js';
import { SnapshotStore } from './snapshot.js';
import type {
  AccessRulesDoc,
  AccessRulesInfo,
  AccessRulesWrite,
  ClientLogger,
  ClusterStatus,
  Consistency,
  GetResult,
  HealthPolicyInfo,
  HealthPolicyWrite,
  Instance,
  InstanceSpec,
  KeepaliveResult,
  ListPage,
  ListResult,
  NamespaceListPage,
  NamespaceListResult,
  ServiceRef,
  ServiceSummary,
  ServicesPage,
  ServicesResult,
  SessionInfo,
  WriteResult,
} from './types.js';
import { Watch, type WatchContext, type WatchOptions } from './watch.js';

/** The shortest attempt a keepalive makes at one node (see `keepalive`). */
const MIN_KEEPALIVE_ATTEMPT_MS = 250;
/**
 * One attempt of a disarm (POST /v1/cluster/check/disarm): the node answers within its 5-s
 * request deadline, which may be spent waiting for its peer link to a member that just
 * restarted; a second more for the answer to travel.
 */
const DISARM_ATTEMPT_MS = 6_000;

export interface RollcallClientOptions {
  /** Node URLs (`http://127.0.0.1:8101`), as an array or comma separated. Any node will do; more is better. */
  readonly endpoints: readonly string[] | string;
  /** Bearer token, sent on every request. */
  readonly token?: string;
  /**
   * For `https://` endpoints (nodes started with --tls-cert): `ca`, the CA the nodes'
   * certificates chain to (default: the system's); `cert` and `key`, a client certificate
   * for nodes that require one (--tls-client-ca). PEM contents, not file names.
   *
   * @example
   * ```ts
   * new RollcallClient({ endpoints: 'https://10.0.0.1:8101', tls: { ca: readFileSync('ca.pem') } });
   * ```
   */
  readonly tls?: ClientTls;
  /** Where discovery snapshots are kept, to serve from when no node answers at start. */
  readonly snapshotDir?: string;
  /** Deadline for one call, all retries included. Default 10 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Deadline for one attempt at one node. Default 2 500 ms. */
  readonly attemptTimeoutMs?: number;
  /** How long the first `discover` of a service waits for a live answer before the snapshot. Default 3 000 ms. */
  readonly discoverTimeoutMs?: number;
  /** A watch stream silent this long is taken as dead and reopened elsewhere. Default 30 000 ms. */
  readonly watchIdleTimeoutMs?: number;
  /** Hold back updates that would empty a service (see `discover`). Default true. */
  readonly pushEmptyProtection?: boolean;
  /** This consumer's cluster routing (VIP consumers, zones); see `RoutingPolicy`. */
  readonly routing?: RoutingPolicy;
  /** Poll period for discovery when the server has no watch streams. Default 1 000 ms. */
  readonly pollIntervalMs?: number;
  /** Base of this client's exactly-once client ids; random by default. */
  readonly clientId?: string;
  /** Learn other members' addresses from the cluster to reach the leader directly. Default true. */
  readonly followMembers?: boolean;
  /** Random source for jitter and the random picker (inject a seeded one in tests). */
  readonly random?: () => number;
  readonly logger?: ClientLogger;
  /**
   * The datacenter every call of this client is served by (`?dc=NAME` on reads, writes,
   * watches and listings; docs/federation.md): the nodes in `endpoints` forward each request
   * to a live member of that datacenter. Default: the endpoints' own datacenter. A call's
   * own `dc` option overrides it. Caches and disk snapshots are kept per datacenter.
   *
   * @example
   * ```ts
   * const east = new RollcallClient({ endpoints: 'http://10.0.1.1:8101', dc: 'dc-east' });
   * ```
   */
  readonly dc?: string;
}

/** Which datacenter serves one call (`?dc=`); default the client's `dc`, else the endpoints' own. */
export interface DatacenterOption {
  readonly dc?: string;
}

export interface InstanceRef extends ServiceRef, DatacenterOption {
  readonly id: string;
}

export interface ReadOptions extends DatacenterOption {
  /** Default `linearizable` (the latest committed state); `serializable` answers from the node's own state. */
  readonly consistency?: Consistency;
  /**
   * Wait (bounded, on the server) until the answering node has applied this revision: read
   * your own writes from any follower with a cheap serializable read.
   */
  readonly minRevision?: number;
}

/** A blocking listing (`listPage`): answered when the service changes, or when `waitMs` has passed. */
export interface BlockingOptions {
  /**
   * The `serviceRevision` of an earlier answer: the node answers once the service's revision
   * differs from it (at once if it already does), or when `waitMs` ends (then unchanged).
   */
  readonly index?: number;
  /** Longest wait on the server, 0..600 000 ms (default 30 000). Only with `index`. */
  readonly waitMs?: number;
}

/** How `list`, `listNamespace` and `listServices` read: in pages of this size, all at one revision. */
export interface PagedReadOptions extends ReadOptions {
  /** Items per page (default 2,000; the server caps a page at its --list-max-items, 10,000 by default). */
  readonly pageSize?: number;
}

export interface ServiceListOptions extends ServiceRef {
  readonly cluster?: string;
  readonly includeDisabled?: boolean;
}

export interface ServicesOptions extends DatacenterOption {
  /** Only this namespace. */
  readonly namespace?: string;
  /** Each service with its instances. */
  readonly instances?: boolean;
  /** With `instances`: disabled instances too (default true). */
  readonly includeDisabled?: boolean;
  readonly consistency?: Consistency;
}

export interface DiscoverOptions extends ServiceRef, DatacenterOption {
  /** Only this cluster (routing is then not applied: asking for a cluster is explicit). */
  readonly cluster?: string;
  /** Only instances with every one of these tags. */
  readonly tags?: readonly string[];
  /** Only instances fit for traffic (`healthy`, or `suspect`: held back by expiry protection). Default false. */
  readonly healthyOnly?: boolean;
  /**
   * `cached` (default): from the client's cache, kept current by a watch. `linearizable` or
   * `serializable`: ask a node now (no snapshot fallback).
   */
  readonly consistency?: 'cached' | Consistency;
  /** Overrides the client's routing policy for this call. */
  readonly routing?: RoutingPolicy;
  /** Overrides `discoverTimeoutMs` for this call. */
  readonly timeoutMs?: number;
  /**
   * Failover discovery: when the datacenter asked (`dc`, else the endpoints' own) has no
   * usable instance (enabled; healthy, subhealthy or suspect), answer from the first of these
   * that has one, in order (`?failover=`, docs/federation.md). Asks a node on every call (not
   * cached); `datacenter` in the result says which one answered.
   */
  readonly failover?: readonly string[];
}

export interface DiscoverResult {
  /** With `failover`: the datacenter that answered, and how many others were asked (Consul's `Failovers`). */
  readonly datacenter?: string;
  readonly failovers?: number;
  readonly instances: readonly Instance[];
  /** The revision the answer reflects. */
  readonly revision: number;
  /** True when no node answered and the answer comes from the disk snapshot. */
  readonly fromSnapshot: boolean;
  /** With `fromSnapshot`: how old the snapshot is (ms since it was written). */
  readonly snapshotAgeMs?: number;
  /** True while an update that would have emptied the service is held back. */
  readonly emptyProtected: boolean;
  /** Whether the cache's watch is connected to a node right now. */
  readonly connected: boolean;
}

export interface MemberSpec {
  /** The new member's node id. */
  readonly id: string;
  /** Its peer (Raft) address, `host:port` (what it was started with as `--peer-listen`). */
  readonly peerAddress: string;
}

/** An admin change to an instance (PATCH): each field given replaces the current value. */
export interface InstancePatch {
  readonly weight?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
  /** A disabled instance stays registered but is not offered to consumers. */
  readonly enabled?: boolean;
}

export interface NodeHealth {
  readonly url: string;
  readonly id: string | null;
  readonly ok: boolean;
  readonly latencyMs: number | null;
  readonly error?: string;
}

export interface HealthReport {
  /** Every endpoint answered, a leader is known, and every member is connected. */
  readonly healthy: boolean;
  /** A leader is known (the cluster can take writes). */
  readonly available: boolean;
  readonly leader: string | null;
  readonly nodes: readonly NodeHealth[];
  readonly cluster: ClusterStatus | null;
  readonly problems: readonly string[];
}

/**
 * A client of a Rollcall cluster: register instances, discover and watch services, balance
 * calls, and operate the cluster.
 *
 * @example
 * ```ts
 * import { RollcallClient } from 'rollcall';
 *
 * const client = new RollcallClient({ endpoints: ['http://127.0.0.1:8101', 'http://127.0.0.1:8102'],
 *   snapshotDir: '/var/cache/myapp/rollcall' });
 * // provider
 * const reg = await client.register({ namespace: 'prod', service: 'orders', id: 'orders-1',
 *   address: '10.0.0.2', port: 9000, ttlMs: 10_000 });
 * // consumer
 * const { instances, fromSnapshot } = await client.discover({ namespace: 'prod', service: 'orders' });
 * // shutdown: deregisters, closes every watch, socket and timer
 * await client.close();
 * ```
 */
export class RollcallClient {
  readonly #o: RollcallClientOptions;
  readonly #nodes: NodePool;
  readonly #lanes: WriteLanes;
  readonly #random: () => number;
  readonly #snapshots: SnapshotStore | undefined;
  readonly #feeds = new Map<string, ServiceFeed>();
  readonly #registrations = new Set<Registration>();
  readonly #watches = new Set<Watch>();
  #closing: Promise<void> | null = null;
  /** Set once a server refused `limit` (a build from before pages): list unpaginated from then on. */
  #unpaged = false;

  constructor(options: RollcallClientOptions) {
    const endpoints =
      typeof options.endpoints === 'string'
        ? options.endpoints
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : options.endpoints;
    this.#o = options;
    this.#random = options.random ?? Math.random;
    this.#nodes = new NodePool({
      endpoints,
      token: options.token,
      requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 2_500,
      random: this.#random,
      logger: options.logger,
      followMembers: options.followMembers ?? true,
      tls: options.tls,
      datacenter: options.dc,
    });
    this.#lanes = new WriteLanes(options.clientId);
    this.#snapshots =
      options.snapshotDir === undefined
        ? undefined
        : new SnapshotStore(options.snapshotDir, (err) =>
            options.logger?.warn(
              { err: err instanceof Error ? err.message : String(err) },
              'could not write a discovery snapshot',
            ),
          );
  }

  /** The node URLs this client knows (configured, then learned). */
  get endpoints(): readonly string[] {
    return this.#nodes.endpoints();
  }

  /** The leader's id as last reported (null if unknown). */
  get leader(): string | null {
    return this.#nodes.leader;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  // ---- instances ----------------------------------------------------------------------

  /**
   * Registers an instance. With `ttlMs` it is ephemeral: bound to a session that the returned
   * registration keeps alive until `close()` (and re-registers if the registry lost it).
   * Without, it is persistent until deregistered.
   *
   * @example
   * ```ts
   * const reg = await client.register({ namespace: 'prod', service: 'orders', id: 'orders-1',
   *   address: '10.0.0.2', port: 9000, cluster: 'vip', metadata: { version: '1.4.2' }, ttlMs: 10_000 });
   * // ...
   * await reg.close(); // deregisters
   * ```
   */
  async register(options: RegisterOptions): Promise<Registration> {
    this.#assertOpen();
    const reg = new Registration(this.#registrationHost(options.dc), options);
    this.#registrations.add(reg);
    try {
      return await reg.start();
    } catch (err) {
      this.#registrations.delete(reg);
      throw err;
    }
  }

  /**
   * Writes an instance once, without keeping anything alive (what `register` does under the
   * hood). Pass `sessionId` to bind it to a session you keep alive yourself.
   */
  async putInstance(
    spec: InstanceSpec,
    sessionId?: string,
    options: DatacenterOption = {},
  ): Promise<{ revision: number; instance: Instance }> {
    const { namespace, service, id, ...rest } = spec;
    const body = sessionId === undefined ? rest : { ...rest, sessionId };
    const r = await this.#write<{ revision: number; instance: Instance }>(
      'PUT',
      `${servicePath(namespace, service)}/${seg(id)}`,
      body,
      undefined,
      options.dc,
    );
    return r;
  }

  /**
   * Removes an instance. Removing one that does not exist is not an error (`deleted: false`).
   *
   * @example
   * ```ts
   * await client.deregister({ namespace: 'prod', service: 'orders', id: 'orders-1' });
   * ```
   */
  async deregister(ref: InstanceRef): Promise<WriteResult & { deleted: boolean }> {
    return this.#write(
      'DELETE',
      `${servicePath(ref.namespace, ref.service)}/${seg(ref.id)}`,
      undefined,
      undefined,
      ref.dc,
    );
  }

  /**
   * Admin: changes an instance's weight, metadata, tags or enabled flag, if its version is
   * still `expectedVersion` (compare-and-set; `VERSION_MISMATCH` otherwise, with
   * `details.currentVersion`).
   *
   * @example
   * ```ts
   * const { instance } = await client.get({ namespace: 'prod', service: 'orders', id: 'orders-1' });
   * await client.update({ namespace: 'prod', service: 'orders', id: 'orders-1' }, { weight: 10 }, instance!.version);
   * ```
   */
  async update(
    ref: InstanceRef,
    patch: InstancePatch,
    expectedVersion: number,
  ): Promise<{ revision: number; instance: Instance }> {
    return this.#write(
      'PATCH',
      `${servicePath(ref.namespace, ref.service)}/${seg(ref.id)}`,
      patch,
      { 'if-match': String(expectedVersion) },
      ref.dc,
    );
  }

  /**
   * Reads one instance; `instance` is null when there is none.
   *
   * @example
   * ```ts
   * const { instance } = await client.get({ namespace: 'prod', service: 'orders', id: 'orders-1' });
   * ```
   */
  async get(ref: InstanceRef & ReadOptions): Promise<GetResult> {
    const r = await this.#nodes.call<{ revision: number; instance: Instance } | { error: unknown }>({
      method: 'GET',
      path: `${servicePath(ref.namespace, ref.service)}/${seg(ref.id)}`,
      query: { consistency: ref.consistency, minRevision: ref.minRevision },
      kind: 'read',
      accept: [404],
      dc: ref.dc,
    });
    if (r.status === 404) {
      const code = (r.body as { error?: { code?: string; message?: string } }).error;
      if (code?.code !== 'INSTANCE_NOT_FOUND')
        throw new ApiError(404, code?.code ?? 'HTTP_404', code?.message ?? 'not found', undefined, code ?? {}, r.node);
      return { revision: Number(r.headers['x-rollcall-revision'] ?? 0), instance: null };
    }
    const ok = r.body as { revision: number; instance: Instance };
    return { revision: ok.revision, instance: ok.instance };
  }

  /**
   * Lists a service's instances straight from a node (linearizable by default), however
   * many: read in pages (`pageSize`, default 2,000), every page at the first page's
   * revision, so the answer is one consistent list. Disabled instances are listed only with
   * `includeDisabled`. For a consumer's hot path use `discover` (cached).
   *
   * @example
   * ```ts
   * const { instances, revision } = await client.list({ namespace: 'prod', service: 'orders', cluster: 'vip' });
   * ```
   */
  async list(options: ServiceListOptions & PagedReadOptions): Promise<ListResult> {
    const pages = await this.#allPages((page) => this.listPage({ ...options, ...page }), options.pageSize);
    const first = pages[0]!;
    return {
      revision: first.revision,
      serviceRevision: first.serviceRevision,
      instances: pages.flatMap((p) => p.instances),
    };
  }

  /**
   * One page of a service's instances: at most `limit`, and `continue` when more are left.
   * Pass `continue` back (with the same options) for the next page, read at the first
   * page's revision; ApiError `COMPACTED` (410) when that revision has left the node's
   * history (list again, or follow `err.details.continue` to go on at the current revision).
   *
   * A blocking query: with `index` (an earlier answer's `serviceRevision`) the first page is
   * answered once the service changes, or after `waitMs` (Consul's `?index=&wait=`); with
   * `dc`, the wait happens in that datacenter.
   *
   * @example
   * ```ts
   * const next = await client.listPage({ namespace: 'prod', service: 'orders', index: page.serviceRevision, waitMs: 60_000 });
   * ```
   *
   * @example
   * ```ts
   * let page = await client.listPage({ namespace: 'prod', service: 'orders', limit: 500 });
   * for (;;) {
   *   handle(page.instances);
   *   if (page.continue === undefined) break;
   *   page = await client.listPage({ namespace: 'prod', service: 'orders', limit: 500, continue: page.continue });
   * }
   * ```
   */
  async listPage(options: ServiceListOptions & ReadOptions & PageOptions & BlockingOptions): Promise<ListPage> {
    const waitMs = options.index === undefined ? 0 : (options.waitMs ?? 30_000);
    if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > 600_000)
      throw new TypeError('listPage: waitMs must be an integer number of ms, 0..600000');
    const r = await this.#nodes.call<ListPage>({
      method: 'GET',
      path: servicePath(options.namespace, options.service),
      query: {
        consistency: options.consistency,
        cluster: options.cluster,
        minRevision: options.minRevision,
        includeDisabled: options.includeDisabled || undefined,
        limit: options.limit,
        continue: options.continue,
        index: options.index,
        wait: options.index === undefined ? undefined : `${waitMs}ms`,
      },
      kind: 'read',
      dc: options.dc,
      // The server holds a blocking query for up to waitMs: neither deadline may cut it short.
      ...(waitMs === 0
        ? {}
        : {
            timeoutMs: (this.#o.requestTimeoutMs ?? 10_000) + waitMs,
            attemptTimeoutMs: (this.#o.attemptTimeoutMs ?? 2_500) + waitMs,
          }),
    });
    return r.body;
  }

  /**
   * Lists every instance of a namespace at one revision, sorted by service, cluster, id
   * (linearizable by default), in pages like `list`. A namespace-wide watch re-lists with
   * it after `compacted`.
   *
   * @example
   * ```ts
   * const { instances, revision } = await client.listNamespace({ namespace: 'prod' });
   * ```
   */
  async listNamespace(
    options: { namespace: string; includeDisabled?: boolean } & PagedReadOptions,
  ): Promise<NamespaceListResult> {
    const pages = await this.#allPages((page) => this.listNamespacePage({ ...options, ...page }), options.pageSize);
    return { revision: pages[0]!.revision, instances: pages.flatMap((p) => p.instances) };
  }

  /** One page of a namespace's instances (see `listPage`). */
  async listNamespacePage(
    options: { namespace: string; includeDisabled?: boolean } & ReadOptions & PageOptions,
  ): Promise<NamespaceListPage> {
    const r = await this.#nodes.call<NamespaceListPage>({
      method: 'GET',
      path: `/v1/namespaces/${seg(options.namespace)}/instances`,
      query: {
        consistency: options.consistency,
        minRevision: options.minRevision,
        includeDisabled: options.includeDisabled || undefined,
        limit: options.limit,
        continue: options.continue,
      },
      kind: 'read',
      dc: options.dc,
    });
    return r.body;
  }

  /**
   * Every service (of a namespace) with its counts, and with `instances: true` its
   * instances, at one revision, read in pages (GET /v1/services). A service whose instances
   * ran over a page boundary comes back once, with all of them.
   *
   * @example
   * ```ts
   * const { services } = await client.listServices({ namespace: 'prod' });
   * for (const s of services) console.log(s.service, s.instanceCount, s.health.healthy);
   * ```
   */
  async listServices(options: ServicesOptions & { pageSize?: number } = {}): Promise<ServicesResult> {
    const pages = await this.#allPages((page) => this.listServicesPage({ ...options, ...page }), options.pageSize);
    const byKey = new Map<string, ServiceSummary>();
    for (const s of pages.flatMap((p) => p.services)) {
      const key = `${s.namespace}/${s.service}`;
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, s);
      else if (s.instances !== undefined)
        byKey.set(key, { ...seen, instances: [...(seen.instances ?? []), ...s.instances] });
    }
    return { revision: pages[0]!.revision, services: [...byKey.values()] };
  }

  /** One page of GET /v1/services: `limit` services, or with `instances` instances (see `listPage`). */
  async listServicesPage(options: ServicesOptions & PageOptions = {}): Promise<ServicesPage> {
    const r = await this.#nodes.call<ServicesPage>({
      method: 'GET',
      path: '/v1/services',
      query: {
        namespace: options.namespace,
        instances: options.instances || undefined,
        includeDisabled: options.includeDisabled,
        consistency: options.consistency,
        limit: options.limit,
        continue: options.continue,
      },
      kind: 'read',
      dc: options.dc,
    });
    return r.body;
  }

  /**
   * The instances of a service a consumer may call, from a local cache kept current by one
   * watch per service. The first call for a service waits for the first list (up to
   * `discoverTimeoutMs`); if no node answers and `snapshotDir` holds a snapshot of the
   * service, the answer comes from it (`fromSnapshot: true`, `snapshotAgeMs`) while the watch
   * keeps trying in the background.
   *
   * Routing: unless `cluster` is given, the client's routing policy applies (VIP consumers
   * see only the `vip` cluster, others never see it). Push-empty protection: an update that
   * would leave the service with no instance, or this consumer's view of it (its cluster,
   * tags, health filter) with none, is held back and the previous set served, with
   * `emptyProtected: true` (turn off with `pushEmptyProtection: false`).
   *
   * @throws UnavailableError when no node answered and there is no snapshot
   * @example
   * ```ts
   * const r = await client.discover({ namespace: 'prod', service: 'orders', healthyOnly: true });
   * if (r.fromSnapshot) log.warn({ ageMs: r.snapshotAgeMs }, 'registry unreachable; using the disk snapshot');
   * ```
   */
  async discover(options: DiscoverOptions): Promise<DiscoverResult> {
    this.#assertOpen();
    const routing = options.routing ?? this.#o.routing ?? {};
    const shape = (instances: readonly Instance[]) => {
      const picked = select(instances, options);
      return options.cluster === undefined ? route(picked, routing) : picked;
    };
    const dc = options.dc ?? this.#o.dc;
    if (options.failover !== undefined && options.failover.length > 0) {
      const r = await this.#nodes.call<{
        revision: number;
        instances: Instance[];
        datacenter: string;
        failovers: number;
      }>({
        method: 'GET',
        path: servicePath(options.namespace, options.service),
        query: {
          failover: options.failover.join(','),
          cluster: options.cluster,
          consistency: options.consistency === 'cached' ? undefined : options.consistency,
        },
        kind: 'read',
        dc,
      });
      const { revision, instances, datacenter, failovers } = r.body;
      return {
        instances: shape(instances),
        revision,
        datacenter,
        failovers,
        fromSnapshot: false,
        emptyProtected: false,
        connected: true,
      };
    }
    if (options.consistency !== undefined && options.consistency !== 'cached') {
      const l = await this.list({
        namespace: options.namespace,
        service: options.service,
        consistency: options.consistency,
        ...(dc === undefined ? {} : { dc }),
      });
      return {
        instances: shape(l.instances),
        revision: l.revision,
        fromSnapshot: false,
        emptyProtected: false,
        connected: true,
      };
    }
    const feed = this.#feed(options.namespace, options.service, dc);
    if (!feed.live) {
      await feed.wait(options.timeoutMs ?? this.#o.discoverTimeoutMs ?? 3_000);
      this.#assertOpen();
      if (!feed.live) {
        if (feed.error !== null && feed.snapshot === null) throw feed.error;
        if (!(await feed.loadSnapshot())) {
          throw new UnavailableError(
            `no node answered for ${options.namespace}/${options.service}${dc === undefined ? '' : ` in ${dc}`}` +
              (this.#snapshots
                ? ` and ${this.#snapshots.fileOf(options.namespace, options.service, dc)} holds no snapshot`
                : ' and no snapshotDir is set'),
          );
        }
      }
    }
    const v = feed.cache.view();
    const snap = feed.snapshot;
    const key = JSON.stringify([
      options.cluster,
      options.tags,
      options.healthyOnly ?? false,
      options.cluster === undefined ? routing : null,
    ]);
    const answer = feed.protectAnswer(key, shape(v.instances));
    return {
      instances: answer.instances,
      revision: v.revision,
      fromSnapshot: snap !== null,
      ...(snap !== null ? { snapshotAgeMs: Math.max(0, Date.now() - snap.savedAt) } : {}),
      emptyProtected: v.emptyProtected || answer.held,
      connected: feed.connected,
    };
  }

  /**
   * Watches changes as an async iterator that resumes across node failures with no gap and
   * no repeat (see `Watch`). Close it with `watch.close()`, by leaving the loop, or with the
   * client.
   *
   * @example
   * ```ts
   * for await (const ev of client.watch({ namespace: 'prod', service: 'orders', initial: true })) {
   *   console.log(ev.type, ev.revision);
   * }
   * ```
   */
  watch(options: WatchOptions): Watch {
    this.#assertOpen();
    const w = new Watch(
      { ...this.#watchContext(false, options.dc ?? this.#o.dc), onClosed: (x) => this.#watches.delete(x) },
      options,
    );
    this.#watches.add(w);
    return w;
  }

  /**
   * A load balancer over a service's instances (discovery, routing, and a picker).
   *
   * @example
   * ```ts
   * const orders = client.balancer({ namespace: 'prod', service: 'orders', picker: 'weighted' });
   * const { instance, done } = await orders.pick();
   * try { await callOrders(instance); } finally { done(); }
   * ```
   */
  balancer(options: BalancerOptions): Balancer {
    this.#assertOpen();
    return new Balancer((o) => this.discover(o), options, this.#random);
  }

  // ---- sessions -----------------------------------------------------------------------

  /**
   * Opens a session. Instances registered with its id are removed when it expires (no
   * keepalive for `ttlMs`) or is closed. `register({ ttlMs })` does this for you.
   */
  async openSession(ttlMs: number, options: DatacenterOption = {}): Promise<SessionInfo> {
    // The id is chosen here, not by the server, so a retried open answers with the session
    // that was actually opened.
    const id = `s-${randomBytes(12).toString('hex')}`;
    return this.#write<SessionInfo>('POST', '/v1/sessions', { ttlMs }, { 'x-rollcall-session-id': id }, options.dc);
  }

  /**
   * Extends a session's life by its TTL. `not-found`: expired or closed; `expiring`: about to
   * be. A session lives in the datacenter that opened it: pass the same `dc`.
   *
   * Each attempt at one node gets at most a third of `timeoutMs` (never under 250 ms, never
   * over `attemptTimeoutMs`): a node that holds the keepalive without answering (its event
   * loop held by a GC pause or a long synchronous task, a follower cut off from the leader)
   * costs a third of the deadline, and the next node still has time to deliver it. A
   * registration's deadline is its TTL, so such a node costs it a third of the TTL.
   */
  async keepalive(sessionId: string, timeoutMs?: number, options: DatacenterOption = {}): Promise<KeepaliveResult> {
    const deadlineMs = timeoutMs ?? this.#o.requestTimeoutMs ?? 10_000;
    const r = await this.#nodes.call<{ expiring?: boolean; error?: { code?: string } }>({
      method: 'PUT',
      path: `/v1/sessions/${seg(sessionId)}/keepalive`,
      kind: 'write', // the leader keeps the deadlines; a follower would forward it
      timeoutMs,
      attemptTimeoutMs: Math.min(
        this.#o.attemptTimeoutMs ?? 2_500,
        Math.max(MIN_KEEPALIVE_ATTEMPT_MS, Math.floor(deadlineMs / 3)),
      ),
      accept: [404],
      dc: options.dc,
    });
    if (r.status === 404) return 'not-found';
    return r.body.expiring ? 'expiring' : 'ok';
  }

  /** Closes a session, removing its instances. */
  async closeSession(sessionId: string, options: DatacenterOption = {}): Promise<WriteResult & { deleted: number }> {
    return this.#write('DELETE', `/v1/sessions/${seg(sessionId)}`, undefined, undefined, options.dc);
  }

  // ---- cluster ------------------------------------------------------------------------

  /** Every member's role, term, indexes and lag, as the answering node sees them. */
  async clusterStatus(options: DatacenterOption = {}): Promise<ClusterStatus> {
    const r = await this.#nodes.call<ClusterStatus>({
      method: 'GET',
      path: '/v1/cluster',
      kind: 'read',
      dc: options.dc,
    });
    return { ...r.body, node: r.node };
  }

  /** Runs the corruption check now (POST /v1/cluster/check, admin): every member's state-machine hash and verdict. */
  async checkCorruption(): Promise<CorruptionReport> {
    // Prefers the leader, as the periodic check does; the check changes nothing and may run again anywhere.
    const r = await this.#nodes.call<CorruptionReport>({ method: 'POST', path: '/v1/cluster/check', kind: 'write' });
    return r.body;
  }

  /**
   * Clears the corruption mark of `member`, or of every member (POST /v1/cluster/check/disarm,
   * admin; as etcd's `alarm disarm`): through any node, each member named serves reads again
   * until a check finds it corrupt again. ApiError `NOT_MEMBER` for an unknown member.
   *
   * @example
   * ```ts
   * const { members } = await client.disarmCorruption('n2');
   * if (members[0]?.error) console.error(`n2 did not answer: ${members[0].error.message}`);
   * ```
   */
  async disarmCorruption(member?: string): Promise<DisarmReport> {
    // Any node relays it; clearing a mark twice is clearing it once, so a retry is safe. The
    // node may wait up to its 5-s request deadline for its peer link to a member that just
    // restarted: one attempt gets that long, not the usual attempt deadline.
    const r = await this.#nodes.call<DisarmReport>({
      method: 'POST',
      path: '/v1/cluster/check/disarm',
      kind: 'write',
      body: member === undefined ? {} : { member },
      attemptTimeoutMs: Math.max(this.#o.attemptTimeoutMs ?? 2_500, DISARM_ATTEMPT_MS),
    });
    return r.body;
  }

  /** Adds a member (as a learner, promoted once caught up). Needs a server with cluster operations. */
  async addMember(member: MemberSpec): Promise<Record<string, unknown>> {
    return this.#write('POST', '/v1/cluster/members', member);
  }

  /** Removes a member. Needs a server with cluster operations. */
  async removeMember(id: string): Promise<Record<string, unknown>> {
    return this.#write('DELETE', `/v1/cluster/members/${seg(id)}`);
  }

  /**
   * Moves leadership to `to`; without `to`, the leader picks the voter to hand over to (it
   * sees every member's progress: recently active, then the furthest log). Needs a server
   * with cluster operations.
   */
  async transferLeader(to?: string): Promise<Record<string, unknown>> {
    return this.#write('POST', '/v1/cluster/leader', to === undefined ? {} : { to });
  }

  // ---- health policy (admin) -----------------------------------------------------------

  /** The health policy in force, its revision and the defaults; with namespace and service, what that service resolves to. */
  async healthPolicy(
    options: { namespace?: string; service?: string; consistency?: Consistency } & DatacenterOption = {},
  ): Promise<HealthPolicyInfo> {
    const r = await this.#nodes.call<HealthPolicyInfo>({
      method: 'GET',
      path: '/v1/health/policy',
      query: { namespace: options.namespace, service: options.service, consistency: options.consistency },
      kind: 'read',
      dc: options.dc,
    });
    return r.body;
  }

  /**
   * Replaces the health policy (admin; docs/health.md). With `expectedRevision` (a
   * `policyRevision` from healthPolicy(); 0: only if none is stored) it is a compare-and-set:
   * ApiError `VERSION_MISMATCH` when someone replaced the policy meanwhile.
   */
  async setHealthPolicy(
    policy: Record<string, unknown>,
    options: { expectedRevision?: number } & DatacenterOption = {},
  ): Promise<HealthPolicyWrite> {
    const headers =
      options.expectedRevision === undefined ? undefined : { 'if-match': String(options.expectedRevision) };
    return this.#write('PUT', '/v1/health/policy', policy, headers, options.dc);
  }

  // ---- access rules (admin) ------------------------------------------------------------

  /** The access rules in force and the revision that stored them (`rulesRevision` 0 and the defaults when never set). */
  async accessRules(options: ReadOptions = {}): Promise<AccessRulesInfo> {
    const r = await this.#nodes.call<AccessRulesInfo>({
      method: 'GET',
      path: '/v1/access-rules',
      query: { consistency: options.consistency, minRevision: options.minRevision },
      kind: 'read',
      dc: options.dc,
    });
    return r.body;
  }

  /**
   * Replaces the access rules and environment label (admin; docs/api.md "Access rules"):
   * fields left out take their defaults. With `expectedRevision` (a `rulesRevision` from
   * accessRules(); 0: only if none are stored) it is a compare-and-set: ApiError
   * `VERSION_MISMATCH` when someone replaced the rules meanwhile.
   */
  async setAccessRules(
    rules: Partial<AccessRulesDoc> | Record<string, unknown>,
    options: { expectedRevision?: number } & DatacenterOption = {},
  ): Promise<AccessRulesWrite> {
    const headers =
      options.expectedRevision === undefined ? undefined : { 'if-match': String(options.expectedRevision) };
    return this.#write('PUT', '/v1/access-rules', rules, headers, options.dc);
  }

  /**
   * Replicated access tokens (`--acl`; docs/api.md "Access tokens"). `aclBootstrap` makes
   * the first admin token, once per cluster (`ACL_BOOTSTRAPPED` after); `createToken` needs
   * an admin token. The answer of both holds the `secret`, shown only then. Exactly-once
   * like every write: a retry that finds the first attempt applied creates nothing and fails
   * with ApiError `TOKEN_EXISTS` (`ACL_BOOTSTRAPPED`) whose `details.id` is the token it made (its
   * secret cannot be shown again).
   */
  async aclBootstrap(name?: string): Promise<AclTokenCreated> {
    return this.#write('POST', '/v1/acl/bootstrap', name === undefined ? {} : { name });
  }

  async createToken(spec: {
    name: string;
    role: 'read' | 'register' | 'admin';
    namespaces?: readonly string[];
    servicePrefixes?: readonly string[];
  }): Promise<AclTokenCreated> {
    return this.#write('POST', '/v1/acl/tokens', spec);
  }

  /**
   * The tokens (never a secret), linearizable, sorted by id. With `limit`, one page: pass its
   * `continue` for the next (a server from before pages answers every token at once).
   */
  async listTokens(page: PageOptions = {}): Promise<{ revision: number; tokens: AclTokenInfo[]; continue?: string }> {
    const r = await this.#nodes.call<{ revision: number; tokens: AclTokenInfo[]; continue?: string }>({
      method: 'GET',
      path: '/v1/acl/tokens',
      query: { limit: page.limit, continue: page.continue },
      kind: 'read',
    });
    return r.body;
  }

  async revokeToken(id: string): Promise<{ revision: number; id: string }> {
    return this.#write('DELETE', `/v1/acl/tokens/${seg(id)}`);
  }

  /**
   * The token this client sends, described by the node (`GET /v1/acl/token/self`; never its
   * secret): a replicated token's id, name, role, scopes and createRevision, or a
   * `--token-file` token's name, role and namespaces (`source` says which). Any valid token
   * may ask; ApiError `UNAUTHENTICATED` for a missing, unknown or revoked one, `ACL_OFF` on
   * nodes that check no tokens.
   *
   * @example
   * ```ts
   * const me = await client.tokenSelf();
   * if (me.namespaces !== undefined) console.log(`limited to ${me.namespaces.join(', ')}`);
   * ```
   */
  async tokenSelf(): Promise<AclTokenSelf> {
    const r = await this.#nodes.call<AclTokenSelf>({ method: 'GET', path: '/v1/acl/token/self', kind: 'read' });
    return r.body;
  }

  /** Probes every known node (`/healthz`) and reads the cluster status. */
  async health(timeoutMs = 2_000): Promise<HealthReport> {
    this.#assertOpen();
    const nodes = await Promise.all(
      this.#nodes.endpoints().map(async (url): Promise<NodeHealth> => {
        try {
          const r = await this.#nodes.probe(url, '/healthz', timeoutMs);
          return r.status === 200
            ? { url, id: r.node, ok: true, latencyMs: Math.round(r.latencyMs * 10) / 10 }
            : { url, id: r.node, ok: false, latencyMs: null, error: `HTTP ${r.status}` };
        } catch (err) {
          return { url, id: null, ok: false, latencyMs: null, error: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
    let cluster: ClusterStatus | null = null;
    const problems: string[] = [];
    for (const n of nodes) if (!n.ok) problems.push(`${n.url} does not answer (${n.error ?? '?'})`);
    try {
      cluster = await this.clusterStatus();
    } catch (err) {
      problems.push(`cluster status unavailable: ${err instanceof Error ? err.message : String(err)}`);
    }
    const leader = cluster?.leader ?? null;
    if (cluster && leader === null) problems.push('no leader');
    for (const m of cluster?.members ?? []) {
      if (m.id !== cluster?.node && m.connected === false)
        problems.push(`${m.id} is not connected to ${cluster?.node ?? 'the answering node'}`);
    }
    return { healthy: problems.length === 0, available: leader !== null, leader, nodes, cluster, problems };
  }

  // ---- lifecycle ----------------------------------------------------------------------

  /**
   * Deregisters every open registration, stops every watch and discovery feed, writes the
   * discovery snapshots one last time, and destroys every socket and timer. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const regs = [...this.#registrations];
    const results = await Promise.allSettled(regs.map((r) => r.close()));
    for (const w of this.#watches) w.close();
    await Promise.allSettled([...this.#feeds.values()].map((f) => f.close()));
    await this.#snapshots?.flush();
    this.#nodes.close();
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed.length > 0)
      this.#o.logger?.warn(
        { count: failed.length, err: String(failed[0]!.reason) },
        'some registrations could not be deregistered; they expire after their TTL',
      );
  }

  // ---- internals ----------------------------------------------------------------------

  /** Every page of a listing at one revision; from a server without pages (it refuses `limit`), the one unpaginated answer. */
  async #allPages<P extends { readonly continue?: string }>(
    page: (o: PageOptions) => Promise<P>,
    pageSize: number | undefined,
  ): Promise<P[]> {
    if (this.#unpaged) return [await page({})];
    try {
      return await readAllPages((token) =>
        page(
          token === undefined
            ? { limit: pageSize ?? DEFAULT_PAGE_SIZE }
            : { limit: pageSize ?? DEFAULT_PAGE_SIZE, continue: token },
        ),
      );
    } catch (err) {
      if (!pagesUnsupported(err)) throw err;
      this.#unpaged = true;
      return [await page({})];
    }
  }

  #assertOpen(): void {
    if (this.#closing !== null) throw new ClientClosedError();
  }

  /** Works until the node pool closes (so close() can still deregister), not just until close() starts. */
  #write<T>(
    method: 'PUT' | 'POST' | 'DELETE' | 'PATCH',
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
    dc?: string,
  ): Promise<T> {
    return this.#lanes.run(
      async (ids) =>
        (
          await this.#nodes.call<T>({
            method,
            path,
            body,
            kind: 'write',
            exactlyOnce: ids,
            dc,
            ...(headers ? { headers } : {}),
          })
        ).body,
    );
  }

  /** One feed per (datacenter, namespace, service): two datacenters' answers never share a cache. */
  #feed(namespace: string, service: string, dc: string | undefined): ServiceFeed {
    const key = JSON.stringify([dc ?? null, namespace, service]);
    let feed = this.#feeds.get(key);
    if (!feed) {
      const ctx = this.#watchContext(true, dc);
      feed = new ServiceFeed(
        {
          nodes: this.#nodes,
          snapshots: this.#snapshots,
          protection: this.#o.pushEmptyProtection ?? true,
          pollIntervalMs: this.#o.pollIntervalMs ?? 1_000,
          random: this.#random,
          logger: this.#o.logger,
          openWatch: (o) => new Watch(ctx, dc === undefined ? o : { ...o, dc }),
          list: ctx.list,
        },
        namespace,
        service,
        dc,
      );
      this.#feeds.set(key, feed);
      feed.start();
    }
    return feed;
  }

  /** What a watch in datacenter `dc` (undefined: the client's default) reads with. */
  #watchContext(allowStaleLists: boolean, dc: string | undefined): WatchContext {
    const inDc = dc === undefined ? {} : { dc };
    return {
      nodes: this.#nodes,
      random: this.#random,
      logger: this.#o.logger,
      connectTimeoutMs: this.#o.attemptTimeoutMs ?? 2_500,
      idleTimeoutMs: this.#o.watchIdleTimeoutMs ?? 30_000,
      allowStaleLists,
      list: (namespace, service, cluster, consistency) =>
        this.list({ namespace, service, consistency, ...inDc, ...(cluster === undefined ? {} : { cluster }) }),
      listNamespace: (namespace, consistency) => this.listNamespace({ namespace, consistency, ...inDc }),
      currentRevision: async () => {
        const r = await this.#nodes.call<{ revision?: number }>({
          method: 'GET',
          path: '/v1/cluster',
          kind: 'read',
          dc,
        });
        return Number(r.body.revision ?? r.headers['x-rollcall-revision'] ?? 0);
      },
    };
  }

  /** A registration's session and instance live in one datacenter: every call it makes names it. */
  #registrationHost(dc: string | undefined): RegistrationHost {
    const inDc = dc === undefined ? {} : { dc };
    return {
      random: this.#random,
      closeSignal: this.#nodes.closeSignal,
      openSession: (ttlMs) => this.openSession(ttlMs, inDc),
      putInstance: (spec, sessionId) => this.putInstance(spec, sessionId, inDc),
      keepalive: (id, timeoutMs) => this.keepalive(id, timeoutMs, inDc),
      closeSession: (id) => this.closeSession(id, inDc),
      deregister: (ref) => this.deregister({ ...ref, ...inDc }),
      release: (reg) => this.#registrations.delete(reg),
    };
  }
}

/** The answer of POST /v1/cluster/check (src/ops/corruption-check.ts, CheckReport). */
export interface CorruptionReport {
  readonly by: string;
  readonly target: number;
  readonly at: number;
  readonly corrupt: boolean;
  readonly members: readonly {
    readonly id: string;
    readonly verdict: 'ok' | 'corrupt' | 'skipped' | 'unreachable';
    readonly index: number | null;
    readonly hash: string | null;
    readonly keys: number | null;
    readonly detail?: string;
  }[];
}

/** The answer of POST /v1/cluster/check/disarm (src/ops/corruption-check.ts, DisarmReport). */
export interface DisarmReport {
  /** The node that took the request and asked the others. */
  readonly by: string;
  readonly members: readonly {
    readonly id: string;
    /** It held a mark and cleared it. */
    readonly disarmed: boolean;
    /** The mark it cleared: who set it, what differed, when (ms since epoch). */
    readonly mark: { readonly by: string; readonly detail: string; readonly at: number } | null;
    /** It did not answer in time (its mark, if any, stays). */
    readonly error: { readonly code: string; readonly message: string } | null;
  }[];
}

/** A replicated access token as listed (docs/api.md "Access tokens"). */
export interface AclTokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: 'read' | 'register' | 'admin';
  readonly namespaces?: readonly string[];
  readonly servicePrefixes?: readonly string[];
  readonly createRevision: number;
}

/**
 * The calling token, as `GET /v1/acl/token/self` describes it: a replicated token has `id`
 * and `createRevision` (and may have `servicePrefixes`); a `--token-file` token has neither.
 */
export interface AclTokenSelf {
  readonly id?: string;
  readonly name: string;
  readonly role: 'read' | 'register' | 'admin';
  /** Absent: every namespace. */
  readonly namespaces?: readonly string[];
  /** Absent: every service. */
  readonly servicePrefixes?: readonly string[];
  readonly createRevision?: number;
  readonly source: 'replicated' | 'token-file';
}

/** A token just made: its secret is in this answer only. */
export interface AclTokenCreated extends AclTokenInfo {
  readonly secret: string;
}
