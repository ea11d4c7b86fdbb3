/**
 * DNS over UDP: one datagram is one query, answered synchronously from the registry in
 * memory (no await between receive and send, so a burst costs no extra turns of the event
 * loop). Datagrams are at most 512 bytes, or what the client's EDNS record allows.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Logger } from '../log/index.js';
import type { AnswerContext } from './answer.js';
import { respond, serverFailure } from './message.js';

export class UdpListener {
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    readonly port: number,
  ) {}

  /** Binds `host:port` (port 0: any free one) and starts answering. */
  static async listen(host: string, port: number, ctx: AnswerContext, log: Logger): Promise<UdpListener> {
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
      let bytes: Buffer | null;
      try {
        const r = respond(message, 'udp', ctx);
        if (r.outcome !== 'answered' && r.outcome !== 'refused')
          log.debug({ peer: `${peer.address}:${peer.port}`, outcome: r.outcome }, 'DNS: bad query');
        bytes = r.bytes;
      } catch (err) {
        log.error({ err }, 'DNS: answering a query failed');
        bytes = serverFailure(message);
      }
      if (bytes === null || listener.closed) return;
      socket.send(bytes, peer.port, peer.address, (err) => {
        // A peer that vanished (ICMP unreachable) is its own affair; log it quietly.
        if (err) log.debug({ err, peer: `${peer.address}:${peer.port}` }, 'DNS: UDP reply not sent');
      });
    });
    return listener;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}
