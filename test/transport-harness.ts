import { type Logger, pino } from 'pino';

import {
  type PeerAddress,
  type PeerStatusEvent,
  PeerTransport,
  type TransportOptions,
} from '../src/transport/index.js';
import { waitFor as waitUntil } from './helpers/wait.js';

/** A pino logger whose output is kept in memory, raw and parsed. */
export interface CapturedLogger {
  readonly logger: Logger;
  readonly raw: string[];
  readonly records: Array<Record<string, unknown>>;
}

export function captureLogger(level: pino.LevelWithSilent = 'debug'): CapturedLogger {
  const raw: string[] = [];
  const records: Array<Record<string, unknown>> = [];
  const logger = pino(
    { level },
    {
      write(line: string) {
        raw.push(line);
        records.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return { logger, raw, records };
}

/** Polls until `condition` holds; fails with `what` after `timeoutMs`. Never a fixed sleep. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  await waitUntil(what, condition, timeoutMs, 5);
}

export interface Received<M> {
  readonly from: string;
  readonly message: M;
}

export interface TestNode<M> {
  readonly id: string;
  readonly transport: PeerTransport<M>;
  readonly address: PeerAddress;
  readonly received: Array<Received<M>>;
  readonly events: PeerStatusEvent[];
  readonly log: CapturedLogger;
}

export const SECRET = 'correct horse battery staple';

export type NodeOptions<M> = Partial<Omit<TransportOptions<M>, 'id' | 'logger' | 'onMessage' | 'onPeerStatus'>>;

/**
 * Starts and tracks transports so `closeAll()` (in afterEach) can always tear them down,
 * even when a test fails halfway.
 */
export class Harness {
  private readonly transports: Array<{ close(): Promise<void> }> = [];

  async node<M>(id: string, options: NodeOptions<M> = {}): Promise<TestNode<M>> {
    const log = captureLogger();
    const received: Array<Received<M>> = [];
    const events: PeerStatusEvent[] = [];
    const transport = new PeerTransport<M>({
      id,
      listen: { host: '127.0.0.1', port: 0 },
      peers: new Map(),
      secret: SECRET,
      // Short backoff ceiling keeps reconnect tests quick without changing the logic.
      backoff: { initialMs: 10, maxMs: 200 },
      ...options,
      logger: log.logger,
      onMessage: (from, message) => received.push({ from, message }),
      onPeerStatus: (event) => events.push(event),
    });
    this.transports.push(transport);
    const address = await transport.start();
    return { id, transport, address, received, events, log };
  }

  /** Starts `ids` as a full mesh and waits until every pair is connected both ways. */
  async cluster<M>(ids: readonly string[], options: NodeOptions<M> = {}): Promise<Array<TestNode<M>>> {
    const nodes: Array<TestNode<M>> = [];
    for (const id of ids) nodes.push(await this.node<M>(id, options));
    const peers = new Map(nodes.map((node) => [node.id, node.address] as const));
    // The full map, self included: the transport must ignore its own entry.
    for (const node of nodes) node.transport.setPeers(peers);
    await waitFor('full mesh connected', () => nodes.every((node) => fullyConnected(node)));
    return nodes;
  }

  async closeAll(): Promise<void> {
    const transports = this.transports.splice(0);
    await Promise.all(transports.map((transport) => transport.close()));
  }
}

export function fullyConnected<M>(node: TestNode<M>): boolean {
  return Object.values(node.transport.stats().peers).every((peer) => peer.connected && peer.inboundConnected);
}

export function connectedTo<M>(node: TestNode<M>, peer: string): boolean {
  return node.transport.stats().peers[peer]?.connected === true;
}

export function peerStats<M>(node: TestNode<M>, peer: string) {
  const stats = node.transport.stats().peers[peer];
  if (stats === undefined) throw new Error(`${node.id} has no stats for ${peer}`);
  return stats;
}
