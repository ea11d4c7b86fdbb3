/**
 * A small TCP proxy for partition tests, in the manner of toxiproxy: one listener that
 * relays every connection to one upstream address, and conditions per *source* of a
 * connection that a test changes at any time:
 *
 *   cut 'reset'      every connection of the source is reset at once (RST both ways), and
 *                    a new one as soon as its source is known: a firewall that rejects
 *   cut 'blackhole'  nothing gets through, either way: the proxy stops reading, so the
 *                    sender's buffers fill as they would behind a route that drops packets;
 *                    new connections hang; on heal whatever was held is delivered, in order
 *                    (a partition healed before TCP gives up on the connection)
 *   delay            every chunk is held `delayMs` plus up to `jitterMs`, and never
 *                    overtakes the chunk before it (TCP keeps order)
 *   heal             back to a plain relay
 *
 * Sources. Without `identify`, every connection's source is ANY_SOURCE. With it, the proxy
 * holds what the client sends first (bytes from upstream flow meanwhile: a protocol whose
 * server speaks first still starts) and asks `identify` who is talking; a cluster's peer
 * links use the dialer's hello (scripts/peer-net.ts), so one proxy in front of a node can
 * cut node a's traffic to it and let node c's through. Conditions set for ANY_SOURCE apply
 * to every connection whose source has none of its own.
 *
 * Refusals. With `mirrorRefusals`, an upstream that refuses a connection (nothing listens:
 * its process is dead) makes the proxy close its listener too, so clients see "connection
 * refused" as they would without a proxy (a Rollcall node elects early on that), until a
 * probe every `probeMs` finds the upstream listening again; the proxy then listens on the
 * same port. When a relayed connection's upstream end closes, the proxy checks at once
 * whether the upstream still listens, so the client's next dial is already refused.
 * Connections already relayed are not touched.
 *
 * Ownership: `close()` resets every connection, closes the listener and clears every
 * timer; nothing the proxy opened outlives it.
 *
 * @example
 * const proxy = await TcpProxy.start({ upstream: { host: '127.0.0.1', port: 7001 } });
 * // dial proxy.address instead of 127.0.0.1:7001 ...
 * proxy.cut('blackhole');  // nothing passes, either way
 * proxy.heal();            // what was held is delivered
 * await proxy.close();
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export type CutMode = 'reset' | 'blackhole';

/** What a link does to its traffic. */
export interface LinkState {
  /** Null: the link passes traffic. */
  readonly cut: CutMode | null;
  readonly delayMs: number;
  readonly jitterMs: number;
}

export const OPEN_LINK: LinkState = Object.freeze({ cut: null, delayMs: 0, jitterMs: 0 });
/** The source of every connection when the proxy has no `identify`; conditions set for it apply to every source without its own. */
export const ANY_SOURCE = '*';
/** The source of a connection `identify` could not name. */
export const UNKNOWN_SOURCE = '?';

export interface TcpProxyOptions {
  readonly upstream: Endpoint;
  /** Where to listen; 127.0.0.1 and a port the system picks by default. */
  readonly listen?: Endpoint;
  /**
   * Names a connection's source from the first bytes its client sent: a name, null when
   * these bytes cannot say (the source is UNKNOWN_SOURCE), undefined to wait for more.
   */
  readonly identify?: (head: Buffer) => string | null | undefined;
  /** Bytes held while identifying before giving up (UNKNOWN_SOURCE); default 64 KiB. */
  readonly maxHeadBytes?: number;
  /** Stop listening while the upstream refuses connections (see above); default false. */
  readonly mirrorRefusals?: boolean;
  /** How often a refusing proxy probes its upstream; default 50 ms. */
  readonly probeMs?: number;
  /** Bytes one direction of a connection may hold (delayed or waiting for a slow reader) before the proxy stops reading; default 1 MiB. */
  readonly maxQueuedBytes?: number;
  /** In [0, 1): jitter. Math.random by default. */
  readonly random?: () => number;
}

export interface SourceStats {
  /** Connections accepted from this source (counted once it is known). */
  connections: number;
  /** Connections of this source reset by a cut. */
  resets: number;
  /** Bytes relayed client -> upstream, and upstream -> client. */
  bytesUp: number;
  bytesDown: number;
}

export interface TcpProxyStats {
  readonly listening: boolean;
  /** Connections being relayed now. */
  readonly open: number;
  readonly accepted: number;
  /** Upstream connects that were refused (nothing listened). */
  readonly refusedUpstream: number;
  readonly sources: Readonly<Record<string, Readonly<SourceStats>>>;
}

type Item =
  | { readonly kind: 'data'; readonly chunk: Buffer; readonly due: number }
  | { readonly kind: 'end'; readonly due: number }
  | { readonly kind: 'reset'; readonly due: number };

interface ChannelEnv {
  readonly maxQueuedBytes: number;
  readonly random: () => number;
  /** The end of the other direction, or a socket error, reached the head of the queue: reset the connection. */
  readonly onReset: () => void;
  readonly onBytes: (n: number) => void;
}

/**
 * One direction of a relayed connection: bytes read from `from`, written to `to`, in the
 * order read. Invariant: an item leaves only when it is due and the channel is not held;
 * `from` is paused while the channel is held or holds more than maxQueuedBytes.
 */
class Channel {
  private readonly items: Item[] = [];
  private queuedBytes = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | null = null;
  private held = false;
  private waitingDrain = false;
  private finished = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly env: ChannelEnv,
  ) {}

  push(chunk: Buffer, state: LinkState): void {
    if (this.finished) return;
    this.items.push({ kind: 'data', chunk, due: this.due(state) });
    this.queuedBytes += chunk.length;
    this.pump();
  }

  /** The other side ended (`end`: a FIN, passed on as one) or failed (`reset`), after everything read before. */
  finish(kind: 'end' | 'reset', state: LinkState): void {
    if (this.finished) return;
    this.items.push({ kind, due: this.due(state) });
    this.pump();
  }

  hold(): void {
    this.held = true;
    this.clearTimer();
    this.updateFlow();
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    this.pump();
  }

  stop(): void {
    this.finished = true;
    this.items.length = 0;
    this.queuedBytes = 0;
    this.clearTimer();
  }

  private due(state: LinkState): number {
    const extra = state.delayMs + (state.jitterMs > 0 ? this.env.random() * state.jitterMs : 0);
    // Never before the chunk ahead of it: jitter must not reorder a TCP stream.
    const due = Math.max(performance.now() + extra, this.lastDue);
    this.lastDue = due;
    return due;
  }

  private pump(): void {
    this.clearTimer();
    while (!this.held && !this.waitingDrain && !this.finished && this.items.length > 0) {
      const head = this.items[0]!;
      const wait = head.due - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, Math.ceil(wait));
        break;
      }
      this.items.shift();
      if (head.kind === 'end') {
        this.finished = true;
        if (!this.to.destroyed) this.to.end();
      } else if (head.kind === 'reset') {
        this.finished = true;
        this.env.onReset();
      } else {
        this.queuedBytes -= head.chunk.length;
        if (this.to.destroyed) continue;
        this.env.onBytes(head.chunk.length);
        if (!this.to.write(head.chunk)) {
          this.waitingDrain = true;
          this.to.once('drain', () => {
            this.waitingDrain = false;
            this.pump();
          });
        }
      }
    }
    this.updateFlow();
  }

  /** Reads stop while held, or while the queue and the writer's buffer are full. */
  private updateFlow(): void {
    if (this.from.destroyed) return;
    const full = this.queuedBytes + this.to.writableLength > this.env.maxQueuedBytes;
    if (this.held || full) this.from.pause();
    else this.from.resume();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }
}

/** One accepted connection and its upstream connection. */
class Relay {
  /** Null until identified. */
  source: string | null;
  private head: Buffer[] = [];
  private headBytes = 0;
  private done = false;
  readonly up: Channel;
  readonly down: Channel;

  constructor(
    private readonly proxy: TcpProxy,
    readonly client: Socket,
    readonly upstream: Socket,
    identifying: boolean,
  ) {
    this.source = identifying ? null : ANY_SOURCE;
    const env = (dir: 'up' | 'down'): ChannelEnv => ({
      maxQueuedBytes: proxy.maxQueuedBytes,
      random: proxy.random,
      onReset: () => this.reset(),
      onBytes: (n) => proxy.countBytes(this.source, dir, n),
    });
    this.up = new Channel(client, upstream, env('up'));
    this.down = new Channel(upstream, client, env('down'));
  }

  get closed(): boolean {
    return this.done;
  }

  /** Bytes the client sent: held until the source is known, then relayed. */
  fromClient(chunk: Buffer): void {
    if (this.source !== null) {
      this.up.push(chunk, this.proxy.stateOf(this.source));
      return;
    }
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const head = Buffer.concat(this.head);
    const named = this.proxy.identifySource(head);
    if (named === undefined && this.headBytes < this.proxy.maxHeadBytes) return;
    this.known(named ?? UNKNOWN_SOURCE, head);
  }

  /** The client ended (FIN) or failed: what it sent is relayed first, whoever it was. */
  clientFinished(kind: 'end' | 'reset'): void {
    if (this.source === null) this.known(UNKNOWN_SOURCE, Buffer.concat(this.head));
    this.up.finish(kind, this.proxy.stateOf(this.source));
  }

  private known(source: string, head: Buffer): void {
    this.head = [];
    this.source = source;
    this.proxy.sourceKnown(this);
    if (!this.done && head.length > 0) this.up.push(head, this.proxy.stateOf(this.source));
  }

  /** Applies the conditions of the relay's source as they are now. */
  apply(state: LinkState): void {
    if (this.done) return;
    if (state.cut === 'reset') {
      this.proxy.countReset(this.source);
      this.reset();
    } else if (state.cut === 'blackhole') {
      this.up.hold();
      this.down.hold();
    } else {
      this.up.release();
      this.down.release();
    }
  }

  /** RST both ways, drop what is queued. */
  reset(): void {
    if (this.done) return;
    this.done = true;
    this.up.stop();
    this.down.stop();
    if (!this.client.destroyed) this.client.resetAndDestroy();
    if (!this.upstream.destroyed) this.upstream.resetAndDestroy();
    this.proxy.forget(this);
  }

  /** Both sockets are closed (by their peers, passed on in order): nothing left to relay. */
  maybeDone(): void {
    if (this.done || !this.client.destroyed || !this.upstream.destroyed) return;
    this.done = true;
    this.up.stop();
    this.down.stop();
    this.proxy.forget(this);
  }
}

export class TcpProxy {
  readonly maxQueuedBytes: number;
  readonly maxHeadBytes: number;
  readonly random: () => number;
  private server: Server | null = null;
  private boundPort = 0;
  private readonly host: string;
  private readonly states = new Map<string, LinkState>();
  private readonly relays = new Set<Relay>();
  private readonly sources = new Map<string, SourceStats>();
  private accepted = 0;
  private refusedUpstream = 0;
  private probeTimer: NodeJS.Timeout | null = null;
  private probe: Socket | null = null;
  /** Connects that check whether the upstream still listens (checkUpstream). */
  private readonly checks = new Set<Socket>();
  private closing: Promise<void> | null = null;

  private constructor(private readonly options: TcpProxyOptions) {
    this.maxQueuedBytes = options.maxQueuedBytes ?? 1024 * 1024;
    this.maxHeadBytes = options.maxHeadBytes ?? 64 * 1024;
    this.random = options.random ?? Math.random;
    this.host = options.listen?.host ?? '127.0.0.1';
    this.boundPort = options.listen?.port ?? 0;
  }

  /** Starts listening; rejects with the listen error (EADDRINUSE, ...). */
  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const proxy = new TcpProxy(options);
    await proxy.listen();
    return proxy;
  }

  /** Where clients connect. */
  get address(): Endpoint {
    return { host: this.host, port: this.boundPort };
  }

  get upstream(): Endpoint {
    return this.options.upstream;
  }

  /** The conditions of `source` (its own, else ANY_SOURCE's, else open). */
  stateOf(source: string | null): LinkState {
    return (source !== null ? this.states.get(source) : undefined) ?? this.states.get(ANY_SOURCE) ?? OPEN_LINK;
  }

  /** Sets the conditions of `source` (every source by default) and applies them to its open connections at once. */
  set(state: Partial<LinkState>, source: string = ANY_SOURCE): void {
    this.states.set(source, { ...this.stateOf(source), ...state });
    this.applyAll();
  }

  cut(mode: CutMode = 'reset', source: string = ANY_SOURCE): void {
    this.set({ cut: mode }, source);
  }

  delay(delayMs: number, jitterMs = 0, source: string = ANY_SOURCE): void {
    if (!(delayMs >= 0) || !(jitterMs >= 0))
      throw new RangeError(`delay and jitter must be >= 0, got ${delayMs} and ${jitterMs}`);
    this.set({ delayMs, jitterMs }, source);
  }

  /** Drops the conditions of `source`, or of every source when none is named; held bytes are delivered. */
  heal(source?: string): void {
    if (source === undefined) this.states.clear();
    else this.states.delete(source);
    this.applyAll();
  }

  /** Sources with conditions of their own (ANY_SOURCE included), for reports. */
  conditions(): ReadonlyMap<string, LinkState> {
    return new Map(this.states);
  }

  stats(): TcpProxyStats {
    return {
      listening: this.server !== null,
      open: this.relays.size,
      accepted: this.accepted,
      refusedUpstream: this.refusedUpstream,
      sources: Object.fromEntries([...this.sources].map(([k, v]) => [k, { ...v }])),
    };
  }

  /** Resets every connection, stops listening and probing. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // ---- used by Relay ------------------------------------------------------------------

  identifySource(head: Buffer): string | null | undefined {
    return this.options.identify ? this.options.identify(head) : null;
  }

  sourceKnown(relay: Relay): void {
    this.sourceStats(relay.source!).connections++;
    relay.apply(this.stateOf(relay.source));
  }

  countBytes(source: string | null, dir: 'up' | 'down', n: number): void {
    if (source === null) return;
    const s = this.sourceStats(source);
    if (dir === 'up') s.bytesUp += n;
    else s.bytesDown += n;
  }

  countReset(source: string | null): void {
    if (source !== null) this.sourceStats(source).resets++;
  }

  forget(relay: Relay): void {
    this.relays.delete(relay);
  }

  // ---- internals ----------------------------------------------------------------------

  private sourceStats(source: string): SourceStats {
    let s = this.sources.get(source);
    if (!s) this.sources.set(source, (s = { connections: 0, resets: 0, bytesUp: 0, bytesDown: 0 }));
    return s;
  }

  private applyAll(): void {
    for (const relay of [...this.relays]) relay.apply(this.stateOf(relay.source));
  }

  private listen(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => this.onConnection(client));
    return new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.boundPort, this.host, () => {
        server.off('error', reject);
        // After a successful listen an error is a bug of ours or the system's: never an unhandled event.
        server.on('error', () => undefined);
        const addr = server.address();
        if (addr !== null && typeof addr === 'object') this.boundPort = addr.port;
        this.server = server;
        resolve();
      });
    });
  }

  private onConnection(client: Socket): void {
    if (this.closing !== null) {
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    const { host, port } = this.options.upstream;
    const upstream = connect({ host, port, allowHalfOpen: true });
    upstream.pause();
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const relay = new Relay(this, client, upstream, this.options.identify !== undefined);
    this.relays.add(relay);
    if (relay.source !== null) this.sourceStats(relay.source).connections++;

    client.on('data', (chunk: Buffer) => relay.fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => relay.down.push(chunk, this.stateOf(relay.source)));
    // FIN and errors are passed on in order, after the bytes read before them (a blackholed
    // or delayed link holds them too).
    client.on('end', () => relay.clientFinished('end'));
    upstream.on('end', () => {
      relay.down.finish('end', this.stateOf(relay.source));
      this.checkUpstream();
    });
    client.on('error', () => relay.clientFinished('reset'));
    let connected = false;
    upstream.once('connect', () => (connected = true));
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected && err.code === 'ECONNREFUSED') {
        this.refusedUpstream++;
        relay.reset();
        if (this.options.mirrorRefusals) this.startRefusing();
        return;
      }
      relay.down.finish('reset', this.stateOf(relay.source));
      this.checkUpstream();
    });
    client.on('close', () => relay.maybeDone());
    upstream.on('close', () => relay.maybeDone());
    relay.apply(this.stateOf(relay.source));
    if (!relay.closed) {
      client.resume();
      upstream.resume();
      relay.apply(this.stateOf(relay.source)); // resume undid a hold's pause
    }
  }

  /**
   * An upstream connection ended or failed: when that is because the upstream died, stop
   * listening at once, before the client (told of the close) dials again. Without this
   * check the client's next dial is accepted here, refused upstream and reset, and only the
   * one after it is refused: a Rollcall follower would elect later than it does without
   * the proxy.
   */
  private checkUpstream(): void {
    if (!this.options.mirrorRefusals || this.server === null || this.closing !== null || this.checks.size > 0) return;
    const { host, port } = this.options.upstream;
    const check = connect({ host, port });
    this.checks.add(check);
    check.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.startRefusing();
    });
    check.once('connect', () => check.destroy());
    check.once('close', () => this.checks.delete(check));
  }

  /** The upstream refused: stop listening until a probe gets through, so clients are refused too. */
  private startRefusing(): void {
    const server = this.server;
    if (server === null || this.closing !== null) return;
    this.server = null;
    server.close();
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      const { host, port } = this.options.upstream;
      const probe = connect({ host, port });
      this.probe = probe;
      probe.on('error', () => undefined);
      probe.once('connect', () => {
        probe.destroy();
        this.probe = null;
        if (this.closing !== null) return;
        // Another process may hold the port for a moment: keep trying.
        this.listen().catch(() => this.scheduleProbe());
      });
      probe.once('close', (hadError) => {
        if (this.probe === probe) this.probe = null;
        if (hadError && this.closing === null) this.scheduleProbe();
      });
    }, this.options.probeMs ?? 50);
  }

  private async shutdown(): Promise<void> {
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    this.probe?.destroy();
    this.probe = null;
    for (const check of this.checks) check.destroy();
    const server = this.server;
    this.server = null;
    const closed = server ? new Promise<void>((r) => server.close(() => r())) : Promise.resolve();
    const sockets: Socket[] = [];
    for (const relay of [...this.relays]) {
      sockets.push(relay.client, relay.upstream);
      relay.reset();
    }
    await Promise.all([
      closed,
      ...sockets.map((s) => (s.closed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r())))),
    ]);
  }
}
