/**
 * A cluster's peer links through TCP proxies (scripts/net-proxy.ts), so tests can
 * partition nodes by real means: one proxy in front of each node's peer port, which every
 * node dials instead of the port (the cluster's `--peers` names the proxies), and which
 * tells who dialed from the dialer's hello.
 *
 * A link is an ordered pair. `a -> b` is a's outbound stream to b: the Raft messages and
 * forwarded requests a sends b, and only those (b answers on its own stream, `b -> a`;
 * docs/transport.md, "Two one-way streams per pair"). Cutting `a -> b` alone is a one-way
 * partition: b still reaches a.
 *
 * Why one proxy per node and not one per ordered pair (a's `--peers` naming P(a->b) for
 * b): a node's address book does not stay its own. A follower that installs a snapshot
 * takes the leader's book with it (the snapshot is the whole state machine, peer addresses
 * key included) and keeps it across restarts, and a member added later is known to every
 * node by the one address in its conf change. With one address per node, every book is the
 * same, and every route to b goes through b's proxy whoever's book it came from.
 */
import { createCodec } from '../src/transport/codec.js';
import { FRAME_HEADER_BYTES } from '../src/transport/framing.js';
import { claimedId, HANDSHAKE_MAX_FRAME_BYTES } from '../src/transport/handshake.js';
import { type CutMode, type Endpoint, type LinkState, TcpProxy, type TcpProxyStats } from './net-proxy.js';

const codec = createCodec();

/**
 * The node a peer connection comes from, read from the first frame its dialer sends (the
 * hello, `{ t: 'hello', id, ... }`): undefined while the frame is incomplete, null when
 * the bytes are no hello.
 */
export function dialerId(head: Buffer): string | null | undefined {
  if (head.length < FRAME_HEADER_BYTES) return undefined;
  const length = head.readUInt32BE(0);
  if (length > HANDSHAKE_MAX_FRAME_BYTES) return null;
  if (head.length < FRAME_HEADER_BYTES + length) return undefined;
  const decoded = codec.decode(head.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length));
  if (!decoded.ok) return null;
  const value = decoded.value as { t?: unknown } | null;
  return value !== null && typeof value === 'object' && value.t === 'hello' ? (claimedId(value) ?? null) : null;
}

export interface PeerNetOptions {
  /** For the proxies' jitter; Math.random by default. */
  readonly random?: () => number;
}

export class PeerNet {
  private readonly proxies = new Map<string, TcpProxy>();

  constructor(private readonly options: PeerNetOptions = {}) {}

  /**
   * Starts the proxy in front of node `id`'s peer port (`upstream`), listening on `listen`
   * (127.0.0.1 and a port the system picks by default). A dead node looks dead through it:
   * connections are refused while nothing listens upstream. Rejects on a listen error.
   */
  async add(id: string, upstream: Endpoint, listen?: Endpoint): Promise<Endpoint> {
    if (this.proxies.has(id)) throw new Error(`${id} already has a proxy`);
    const proxy = await TcpProxy.start({
      upstream,
      ...(listen ? { listen } : {}),
      identify: dialerId,
      mirrorRefusals: true,
      ...(this.options.random ? { random: this.options.random } : {}),
    });
    this.proxies.set(id, proxy);
    return proxy.address;
  }

  has(id: string): boolean {
    return this.proxies.has(id);
  }

  /** Where peers reach node `id`. */
  address(id: string): Endpoint {
    return this.proxy(id).address;
  }

  /** Nothing from `from` reaches `to` (its stream to `to` is reset, or blackholed); `to -> from` is untouched. */
  cut(from: string, to: string, mode: CutMode = 'reset'): void {
    this.proxy(to).cut(mode, from);
  }

  /** Every chunk `from` sends `to` arrives `delayMs` (plus up to `jitterMs`) late, in order. */
  delay(from: string, to: string, delayMs: number, jitterMs = 0): void {
    this.proxy(to).delay(delayMs, jitterMs, from);
  }

  /** Cuts both links between `a` and each of `others`. */
  isolate(a: string, others: readonly string[], mode: CutMode = 'reset'): void {
    for (const o of others) {
      this.cut(a, o, mode);
      this.cut(o, a, mode);
    }
  }

  /** Heals `from -> to`; without `to`, every link from `from`; without arguments, every link. Held bytes are delivered. */
  heal(from?: string, to?: string): void {
    if (to === undefined) {
      for (const proxy of this.proxies.values()) proxy.heal(from);
      return;
    }
    this.proxy(to).heal(from);
  }

  /** The links with conditions, as `from->to` (`*->to` for every link into `to`). */
  links(): Array<{ readonly from: string; readonly to: string; readonly state: LinkState }> {
    const out: Array<{ from: string; to: string; state: LinkState }> = [];
    for (const [to, proxy] of this.proxies)
      for (const [from, state] of proxy.conditions()) out.push({ from, to, state });
    return out;
  }

  stats(): Record<string, TcpProxyStats> {
    return Object.fromEntries([...this.proxies].map(([id, p]) => [id, p.stats()]));
  }

  /** Stops the proxy in front of `id` (its connections are reset). */
  async remove(id: string): Promise<void> {
    const proxy = this.proxies.get(id);
    this.proxies.delete(id);
    await proxy?.close();
  }

  async close(): Promise<void> {
    const all = [...this.proxies.values()];
    this.proxies.clear();
    await Promise.all(all.map((p) => p.close()));
  }

  private proxy(id: string): TcpProxy {
    const p = this.proxies.get(id);
    if (!p) throw new Error(`no proxy in front of ${id}`);
    return p;
  }
}
