/**
 * DNS over UDP: one datagram is one query, answered synchronously from the registry in
 * memory (no await between receive and send, so a burst costs no extra turns of the event
 * loop); a question about another datacenter's service not in the remote cache is answered
 * when its lookup ends (remote.ts). Datagrams are at most 512 bytes, or what the client's
 * EDNS record allows.
 *
 * Answers waiting on a remote lookup are bounded (`maxDeferred`): questions for one name
 * share its lookup, but each waiting question holds its datagram and its reply until the
 * lookup ends (up to its deadline), so a flood of them is answered SERVFAIL at once past
 * the bound (resolvers retry) rather than held.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from '../log/index.js';
import type { AnswerContext } from './answer.js';
import { respond, serverFailure } from './message.js';

/** Answers waiting on a remote lookup at once, at most (each holds a datagram of up to 4 KiB and its reply). */
export const DEFAULT_MAX_DEFERRED = 4096;

export class UdpListener {
  private closed = false;
  /** Answers waiting on a remote lookup now. */
  private deferred = 0;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {}

  /** Binds `host:port` (port 0: any free one) and starts answering. */
  static async listen(
    host: string,
    port: number,
    ctx: AnswerContext,
    log: Logger,
    maxDeferred = DEFAULT_MAX_DEFERRED,
  ): Promise<UdpListener> {
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const listener = new UdpListener(socket, socket.address().port);
    socket.on('error', (err) => log.warn({ err }, 'DNS UDP socket error'));
    socket.on('message', (message, peer) => {
      const send = (bytes: Buffer | null): void => {
        if (bytes === null || listener.closed) return;
        socket.send(bytes, peer.port, peer.address, (err) => {
          // A peer that vanished (ICMP unreachable) is its own affair; log it quietly.
          if (err) log.debug({ err, peer: `${peer.address}:${peer.port}` }, 'DNS: UDP reply not sent');
        });
      };
      const failed = (err: unknown): void => {
        log.error({ err }, 'DNS: answering a query failed');
        send(serverFailure(message));
      };
      try {
        const r = respond(message, 'udp', ctx);
        if (r.outcome === 'deferred') {
          if (listener.deferred >= maxDeferred) {
            send(serverFailure(message));
            return;
          }
          listener.deferred++;
          r.later
            .finally(() => {
              listener.deferred--;
            })
            .then((later) => send(later.bytes), failed);
          return;
        }
        if (r.outcome !== 'answered' && r.outcome !== 'refused')
          log.debug({ peer: `${peer.address}:${peer.port}`, outcome: r.outcome }, 'DNS: bad query');
        send(r.bytes);
      } catch (err) {
        failed(err);
      }
    });
    return listener;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
