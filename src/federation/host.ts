/**
 * Runs the federation engine inside a node: the I/O the engine leaves to its host.
 *
 * - Transport: every gossip message is one HTTP POST of the engine's bytes to
 *   `<member address>/v1/federation/gossip` on the native API (content type
 *   `application/vnd.rollcall.federation`). HTTP rather than UDP on the peer port: it goes
 *   through the same listener (and TLS) as every other cross-datacenter request, needs no
 *   new port, and the engine already tolerates loss and reordering. The route answers 204
 *   at once; replies travel as POSTs of their own. Connections (and their TLS:
 *   --federation-tls-*) are the FederationHttpClient's (http-client.ts), which the host owns
 *   and lends to `?dc=` forwarding and DNS (`client`). A send refused for TLS (a CA this
 *   node does not trust, or a datacenter refusing its client certificate) is logged at
 *   warn, once per interval per address: a configuration problem, not an outage.
 * - Timers: one timeout at `nextWakeup()` (capped, so the local view is refreshed at least
 *   every `VIEW_REFRESH_MS`), cleared by `close()`.
 * - Local view: from the node's cluster status (members and the HTTP addresses they
 *   advertise, leader, term, revision). The engine versions it (a change always gets a
 *   higher version than every earlier one, see `DescriptorVersion`).
 * - Events: logged one line each; refused messages at most once per interval per source
 *   and reason (src/log/repeat-limiter.ts).
 * - Knowledge: `<data dir>/federation.json`, written atomically (temp file, fsync, rename,
 *   fsync of the directory) on every `knowledge-changed`, read back at start.
 * - Incarnation: `<data dir>/federation-incarnation`, written the same way whenever it rises
 *   (the engine's `storeIncarnation`: nothing carrying it leaves before); the next engine
 *   starts above it (`startIncarnation`), so a restart never reuses an incarnation (receivers
 *   key replay protection on it) even if the wall clock stepped back. `leave()` keeps it.
 *
 * The host talks to the node only through the `status` function it is given.
 */
import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { SeededRandom } from '../../raft/rand.js';
import type { Logger } from '../log/index.js';
import { RepeatLimiter } from '../log/repeat-limiter.js';
import { type Clock, systemClock } from '../node/clock.js';
import { isDatacenterName } from './config.js';
import { FederationEngine } from './engine.js';
import { FederationHttpClient, isTlsError, POOL_SIZES } from './http-client.js';
import type {
  FederationKnowledge,
  FederationSnapshot,
  GossipTuning,
  LocalView,
  MemberInfo,
  ReceiveResult,
  Route,
} from './index.js';

export const GOSSIP_PATH = '/v1/federation/gossip';
export const GOSSIP_CONTENT_TYPE = 'application/vnd.rollcall.federation';
export const KNOWLEDGE_FILE = 'federation.json';
export const INCARNATION_FILE = 'federation-incarnation';
/** Marks a request forwarded from another datacenter (`?dc=`): `<dc>.<wall ms>.<hex HMAC>`. */
export const HOP_HEADER = 'x-rollcall-federation-hop';
const HOP_WINDOW_MS = 120_000;
/**
 * Gossip messages in flight to one address at most; more are dropped (the engine expects
 * loss). Without a cap, a slow receiver gets a new connection per message and falls further
 * behind. The client's gossip pool has as many sockets per address.
 */
const MAX_INFLIGHT_PER_ADDRESS = POOL_SIZES.gossip;
/** The local view is read again at least this often, even when the engine sleeps longer. */
const VIEW_REFRESH_MS = 500;

/** What the host reads of its node: a slice of RollcallNode.status(). */
export interface ClusterView {
  readonly id: string;
  readonly leader: string | null;
  readonly term: number;
  readonly revision: number;
  readonly members: readonly {
    readonly id: string;
    readonly isLearner: boolean;
    readonly reported: { readonly http?: string | null } | null;
  }[];
  /** The node's cluster id (null: none); gossiped with the description (LocalView.clusterId). */
  readonly clusterId?: string | null;
}

export interface FederationHostOptions {
  readonly datacenter: string;
  readonly nodeId: string;
  /** This node's HTTP address (`advertiseHttp`): where the others send gossip and `?dc=` requests. */
  readonly address: string;
  readonly secret: string;
  readonly join: readonly string[];
  readonly dataDir: string;
  readonly logger: Logger;
  readonly status: () => ClusterView;
  readonly tuning?: Partial<GossipTuning>;
  readonly clock?: Clock;
  /**
   * Every connection to another datacenter, with --federation-tls-* (http-client.ts); the
   * host closes it. Absent: one with the system's CAs and no client certificate.
   */
  readonly client?: FederationHttpClient;
}

/** `expected`: a member of our own cluster whose HTTP address we have not heard yet (it just started), not an attack. */
type LogContext = { from: string; reason: string; datacenter: string | null; id: string | null; expected: boolean };

export class FederationHost {
  private engine: FederationEngine | null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private persisting: Promise<void> = Promise.resolve();
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly hopKey: Buffer;
  private readonly refusals: RepeatLimiter<LogContext>;
  private readonly sendFailures: RepeatLimiter<{ to: string; err: string; tls: boolean }>;
  private readonly inflight = new Map<string, number>();
  /** Keep-alive connections (node:http is several times cheaper per message than fetch), shared with `?dc=` and DNS. */
  readonly client: FederationHttpClient;

  private constructor(
    private readonly options: FederationHostOptions,
    knowledge: FederationKnowledge,
    /** The highest incarnation stored by an earlier engine (0: none). */
    private storedIncarnation: number,
  ) {
    this.log = options.logger.child({ part: 'federation' });
    this.clock = options.clock ?? systemClock;
    this.hopKey = createHmac('sha256', 'rollcall-federation-hop').update(options.secret).digest();
    this.refusals = new RepeatLimiter({
      // Refusals from a member of our own cluster that just started are expected: not worth a warning, one by one or summed.
      onSummary: (s) =>
        this.log[s.context.expected ? 'debug' : 'warn'](
          { ...s.context, count: s.count, periodMs: Math.round(s.periodMs) },
          'federation: more gossip messages refused',
        ),
    });
    this.sendFailures = new RepeatLimiter({
      onSummary: (s) =>
        this.log[s.context.tls ? 'warn' : 'debug'](
          { ...s.context, count: s.count },
          'federation: more gossip sends failed',
        ),
    });
    this.client = options.client ?? new FederationHttpClient();
    this.engine = this.newEngine(knowledge, options.join);
  }

  static async start(options: FederationHostOptions): Promise<FederationHost> {
    const knowledge = await loadKnowledge(path.join(options.dataDir, KNOWLEDGE_FILE));
    const incarnation = await loadIncarnation(path.join(options.dataDir, INCARNATION_FILE));
    const host = new FederationHost(options, knowledge, incarnation);
    // Before any message leaves: a crash after this cannot bring the same incarnation back.
    await host.storeIncarnation(host.engine!.incarnation);
    host.log.info(
      {
        datacenter: options.datacenter,
        address: options.address,
        known: knowledge.datacenters.map((d) => d.name),
        join: options.join,
      },
      'federation on',
    );
    host.wake();
    return host;
  }

  get datacenter(): string {
    return this.options.datacenter;
  }

  /** False after `leave()` until the next `join()`. */
  get active(): boolean {
    return this.engine !== null;
  }

  /** One message from POST /v1/federation/gossip. */
  receive(from: string, bytes: Uint8Array): ReceiveResult | null {
    if (this.engine === null || this.closed) return null;
    const r = this.engine.receive(from, bytes);
    if (r.kind === 'refused') {
      const expected =
        r.reason === 'forged-datacenter' &&
        r.sender?.datacenter === this.options.datacenter &&
        this.options.status().members.some((m) => m.id === r.sender?.id);
      const ctx: LogContext = {
        from,
        reason: r.reason,
        datacenter: r.sender?.datacenter ?? null,
        id: r.sender?.id ?? null,
        expected,
      };
      if (this.refusals.admit(`${from} ${r.reason} ${expected}`, ctx))
        this.log[expected ? 'debug' : 'warn'](ctx, 'federation: gossip message refused');
    }
    this.afterStep();
    return r;
  }

  snapshot(): FederationSnapshot | null {
    return this.engine?.snapshot() ?? null;
  }

  datacentersByRtt(): string[] {
    return this.engine?.datacentersByRtt() ?? [this.options.datacenter];
  }

  route(datacenter: string): Route | null {
    return this.engine?.route(datacenter) ?? null;
  }

  /** Monotonic time (of this host's clock) as wall-clock ms, for the API. */
  toWall(t: number | null): number | null {
    return t === null ? null : Math.round(this.clock.wallNow() - (this.clock.now() - t));
  }

  join(address: string): void {
    if (this.closed) throw new Error('federation host is closed');
    if (this.engine === null) {
      this.engine = this.newEngine({ datacenters: [] }, []);
      void this.storeIncarnation(this.engine.incarnation);
    }
    this.engine.join(address);
    this.log.info({ address }, 'federation: joining');
    this.wake();
  }

  /**
   * This node stops gossiping and forgets every other datacenter (the stored knowledge too);
   * the others see it unreachable. A later `join()` (or a restart with --federation-join)
   * brings it back.
   */
  async leave(): Promise<void> {
    const engine = this.engine;
    this.engine = null;
    if (engine !== null) {
      // Tell the others now rather than leave them to the failure detector.
      engine.leave();
      void this.storeIncarnation(engine.incarnation);
    }
    this.clearTimer();
    this.log.info('federation: left; this node no longer gossips');
    await this.persist({ datacenters: [] });
  }

  /** Signs a request forwarded to another datacenter. */
  hopHeader(method: string, url: string): string {
    const ts = String(Math.floor(this.clock.wallNow()));
    return `${this.options.datacenter}.${ts}.${this.hopMac(this.options.datacenter, ts, method, url)}`;
  }

  /** Checks a forwarded request's hop header: the datacenter it came from, or null if forged or stale. */
  verifyHop(header: string, method: string, url: string): string | null {
    const [dc, ts, mac] = header.split('.');
    if (dc === undefined || ts === undefined || mac === undefined || !isDatacenterName(dc) || !/^\d{1,16}$/.test(ts))
      return null;
    if (Math.abs(this.clock.wallNow() - Number(ts)) > HOP_WINDOW_MS) return null;
    const want = Buffer.from(this.hopMac(dc, ts, method, url), 'hex');
    const got = Buffer.from(mac, 'hex');
    return got.length === want.length && timingSafeEqual(got, want) ? dc : null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    this.client.close();
    this.refusals.close();
    this.sendFailures.close();
    await this.persisting;
  }

  private hopMac(dc: string, ts: string, method: string, url: string): string {
    return createHmac('sha256', this.hopKey).update(`${dc}\n${ts}\n${method.toUpperCase()}\n${url}`).digest('hex');
  }

  private newEngine(knowledge: FederationKnowledge, join: readonly string[]): FederationEngine {
    const o = this.options;
    return new FederationEngine({
      datacenter: o.datacenter,
      nodeId: o.nodeId,
      address: o.address,
      secret: o.secret,
      clock: this.clock,
      random: new SeededRandom(randomInt(2 ** 31)),
      send: (to, bytes) => this.send(to, bytes),
      view: this.localView(),
      knowledge,
      join,
      ...(this.storedIncarnation > 0 ? { startIncarnation: this.storedIncarnation + 1 } : {}),
      storeIncarnation: (incarnation) => this.storeIncarnation(incarnation),
      ...(o.tuning ? { tuning: o.tuning } : {}),
    });
  }

  private localView(): LocalView {
    const st = this.options.status();
    const members: MemberInfo[] = [];
    for (const m of st.members) {
      const address = m.id === this.options.nodeId ? this.options.address : m.reported?.http;
      // A member that has not told us its HTTP address yet cannot be reached from elsewhere.
      if (typeof address === 'string' && address !== '')
        members.push({ id: m.id, address, role: m.isLearner ? 'learner' : 'voter' });
    }
    return {
      members,
      leader: st.leader,
      revision: st.revision,
      term: st.term,
      ...(st.clusterId !== undefined ? { clusterId: st.clusterId } : {}),
    };
  }

  /** Fire and forget; never calls back into the engine synchronously. */
  private send(address: string, bytes: Uint8Array): void {
    if (this.closed) return;
    const busy = this.inflight.get(address) ?? 0;
    if (busy >= MAX_INFLIGHT_PER_ADDRESS)
      return this.noteSendFailure(address, `over ${MAX_INFLIGHT_PER_ADDRESS} messages in flight: dropped`);
    let url: URL;
    try {
      url = new URL(`${address.replace(/\/+$/, '')}${GOSSIP_PATH}`);
    } catch {
      return this.noteSendFailure(address, 'not a URL');
    }
    this.inflight.set(address, busy + 1);
    let done = false;
    const finish = (err: string | null, tls = false) => {
      if (done) return;
      done = true;
      const n = (this.inflight.get(address) ?? 1) - 1;
      if (n <= 0) this.inflight.delete(address);
      else this.inflight.set(address, n);
      if (err !== null) this.noteSendFailure(address, err, tls);
    };
    const req = this.client.request(
      'gossip',
      url,
      {
        method: 'POST',
        timeout: 2_000,
        headers: { 'content-type': GOSSIP_CONTENT_TYPE, 'content-length': bytes.byteLength },
      },
      (res) => {
        res.resume(); // drain, so the connection is reused
        res.once('end', () => finish(res.statusCode === 204 ? null : `HTTP ${res.statusCode}`));
        res.once('error', (err) => finish(err.message));
      },
    );
    req.once('timeout', () => req.destroy(new Error('no answer within 2000 ms')));
    req.once('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      finish(
        code === undefined || err.message.includes(code) ? err.message : `${code}: ${err.message}`,
        isTlsError(err),
      );
    });
    req.end(bytes);
  }

  private noteSendFailure(to: string, err: string, tls = false): void {
    if (this.closed) return;
    // Expected while a datacenter is down: the failure detector decides, not the transport.
    // A TLS refusal is not: no restart fixes a CA or client certificate that does not fit.
    if (this.sendFailures.admit(`${to} ${tls}`, { to, err, tls }))
      this.log[tls ? 'warn' : 'debug'](
        { to, err, tls },
        tls
          ? 'federation: gossip refused by TLS (check --federation-tls-ca, --federation-tls-cert and --tls-client-ca in the other datacenter)'
          : 'federation: gossip send failed',
      );
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private wake(): void {
    this.clearTimer();
    if (this.closed || this.engine === null) return;
    const wait = Math.max(1, Math.min(this.engine.nextWakeup() - this.clock.now(), VIEW_REFRESH_MS));
    this.timer = setTimeout(() => this.onTimer(), wait);
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = null;
    if (this.closed || this.engine === null) return;
    try {
      this.engine.setLocalView(this.localView());
      this.engine.tick(this.clock.now());
    } catch (err) {
      this.log.error({ err }, 'federation: tick failed');
    }
    this.afterStep();
  }

  private afterStep(): void {
    const engine = this.engine;
    if (engine === null) return;
    for (const e of engine.drainEvents()) {
      switch (e.kind) {
        case 'knowledge-changed':
          this.log.debug({ datacenters: e.knowledge.datacenters.map((d) => d.name) }, 'federation: knowledge changed');
          void this.persist(e.knowledge);
          break;
        case 'datacenter-discovered':
          this.log.info({ datacenter: e.datacenter }, 'federation: datacenter discovered');
          break;
        case 'datacenter-status':
          this.log.info({ datacenter: e.datacenter, from: e.from, to: e.to }, 'federation: datacenter status changed');
          break;
        case 'member-status':
          this.log.debug(
            { datacenter: e.datacenter, id: e.id, from: e.from, to: e.to, incarnation: e.incarnation },
            'federation: member status changed',
          );
          break;
        case 'refuted':
          this.log.debug({ incarnation: e.incarnation }, 'federation: refuted a suspicion of this node');
          void this.storeIncarnation(e.incarnation);
          break;
      }
    }
    this.wake();
  }

  /**
   * Chained with the knowledge writes; only ever raises the stored incarnation. True once it is
   * on disk: the engine sends nothing at a higher incarnation before (FederationOptions).
   */
  private storeIncarnation(incarnation: number): Promise<boolean> {
    if (incarnation <= this.storedIncarnation) return Promise.resolve(true);
    const file = path.join(this.options.dataDir, INCARNATION_FILE);
    const stored = this.persisting
      .then(() => writeAtomically(file, `${incarnation}\n`))
      .then(
        () => {
          this.storedIncarnation = Math.max(this.storedIncarnation, incarnation);
          return true;
        },
        (err: unknown) => {
          this.log.error({ err, file }, 'federation: cannot store the incarnation; gossip waits for it');
          return false;
        },
      );
    this.persisting = stored.then(() => undefined);
    return stored;
  }

  /** Writes are chained: the last knowledge wins on disk. */
  private persist(knowledge: FederationKnowledge): Promise<void> {
    const file = path.join(this.options.dataDir, KNOWLEDGE_FILE);
    this.persisting = this.persisting
      .then(() => writeAtomically(file, `${JSON.stringify(knowledge)}\n`))
      .catch((err: unknown) => this.log.error({ err, file }, 'federation: cannot store the known datacenters'));
    return this.persisting;
  }
}

export async function loadKnowledge(file: string): Promise<FederationKnowledge> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { datacenters: [] };
    throw err;
  }
  const parsed = JSON.parse(text) as { datacenters?: unknown };
  if (!Array.isArray(parsed.datacenters)) throw new Error(`${file}: no datacenters list`);
  const datacenters = parsed.datacenters
    .filter(
      (d): d is { name: string; seeds: string[] } =>
        typeof d === 'object' &&
        d !== null &&
        isDatacenterName((d as { name: unknown }).name) &&
        Array.isArray((d as { seeds: unknown }).seeds),
    )
    .map((d) => ({ name: d.name, seeds: d.seeds.filter((s): s is string => typeof s === 'string') }));
  return { datacenters };
}

/** The incarnation an earlier run stored; 0 if none (a file that is not a count is an error: the disk is damaged). */
export async function loadIncarnation(file: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const n = Number(text.trim());
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Error(`${file}: not an incarnation: ${JSON.stringify(text.slice(0, 40))}`);
  return n;
}

/** temp file, fsync, rename, fsync the directory: the file is the old or the new one, whole. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
