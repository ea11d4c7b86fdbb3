/**
 * DNS over TCP (RFC 1035 §4.2.2, RFC 7766): every message is prefixed with its length in two
 * bytes; a connection may carry many queries, pipelined, answered in order (a question
 * about another datacenter's service holds the ones behind it until its lookup ends, at most
 * the remote deadline: remote.ts). This is where a client comes back for the full answer
 * after a truncated UDP one.
 *
 * Bounds: a connection idle for `idleMs` is closed (RFC 7766 §6.2.3 suggests seconds, not
 * minutes); at most `maxConnections` at once (node closes any more at once); a client that
 * does not read its answers is not read from either; a message that cannot be answered at
 * all (no header) closes its connection. close() stops listening and destroys every open
 * connection.
 *
 * With TLS (--dns-tls-*), the listener speaks DNS over TLS (RFC 7858): the same framing
 * inside a TLS session, and the same bounds (the idle timer also covers a handshake).
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  createServer as createTlsServer,
  type SecureContextOptions,
  type TlsOptions,
  type Server as TlsServer,
} from 'node:tls';
import type { Logger } from '../log/index.js';
import type { HandshakeRefusals } from '../security/handshake-refusals.js';
import type { AnswerContext } from './answer.js';
import { respond, serverFailure } from './message.js';

export interface TcpLimits {
  readonly idleMs: number;
  readonly maxConnections: number;
}

export const DEFAULT_TCP_LIMITS: TcpLimits = { idleMs: 10_000, maxConnections: 512 };

export class TcpListener {
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly tls: boolean,
  ) {}

  static async listen(
    host: string,
    port: number,
    ctx: AnswerContext,
    log: Logger,
    limits: TcpLimits = DEFAULT_TCP_LIMITS,
    tls?: TlsOptions,
    tlsRefusals?: HandshakeRefusals,
  ): Promise<TcpListener> {
    const server = tls === undefined ? createServer() : createTlsServer({ ...tls, handshakeTimeout: limits.idleMs });
    server.maxConnections = limits.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const a = server.address();
    const listener = new TcpListener(server, typeof a === 'object' && a !== null ? a.port : port, tls !== undefined);
    server.on('error', (err) => log.warn({ err }, 'DNS TCP listener error'));
    if (tls === undefined) {
      server.on('connection', (socket: Socket) => listener.serve(socket, ctx, log, limits));
    } else {
      server.on('secureConnection', (socket: Socket) => listener.serve(socket, ctx, log, limits));
      // A resolver without our CA, or plain DNS on the TLS port: logged (rate-limited) and counted there.
      if (tlsRefusals === undefined)
        server.on('tlsClientError', (err: Error) => log.debug({ err }, 'DNS over TLS: handshake failed'));
      else tlsRefusals.watch(server as TlsServer, 'dns');
    }
    return listener;
  }

  /** With TLS: new connections use this certificate and key; established ones keep theirs. */
  setSecureContext(options: SecureContextOptions): void {
    if (!this.tls) throw new Error('DNS over TCP is plain; there is no certificate to replace');
    (this.server as TlsServer).setSecureContext(options);
  }

  private serve(socket: Socket, ctx: AnswerContext, log: Logger, limits: TcpLimits): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(limits.idleMs, () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ err }, 'DNS: TCP connection error'));
    let pending: Buffer = Buffer.alloc(0);
    /** A deferred answer is being waited for: the queries behind it wait too (answers go in order). */
    let waiting = false;
    const write = (bytes: Buffer | null): boolean => {
      if (bytes === null) {
        socket.destroy();
        return false;
      }
      const framed = Buffer.allocUnsafe(2 + bytes.length);
      framed.writeUInt16BE(bytes.length, 0);
      bytes.copy(framed, 2);
      socket.write(framed);
      return true;
    };
    // Answers while the client reads them: a client that pipelines queries without reading
    // the answers is paused rather than buffered for without bound.
    const pump = (): void => {
      while (!waiting && pending.length >= 2 && !socket.writableNeedDrain) {
        const size = pending.readUInt16BE(0);
        if (pending.length < 2 + size) break;
        const message = pending.subarray(2, 2 + size);
        pending = pending.subarray(2 + size);
        const bytes = answer(message, ctx, log);
        if (bytes instanceof Promise) {
          // Nothing is answered until it ends, so nothing more is read: what the client
          // pipelines meanwhile waits in TCP's buffers (flow control), not in `pending`.
          waiting = true;
          socket.pause();
          void bytes.then((b) => {
            waiting = false;
            if (socket.destroyed) return;
            if (!write(b)) return;
            socket.resume();
            pump();
          });
          return;
        }
        if (!write(bytes)) return;
      }
      if (socket.writableNeedDrain) socket.pause();
    };
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      pump();
    });
    socket.on('drain', () => {
      if (waiting) return;
      socket.resume();
      pump();
    });
  }

  /** Stops listening and closes every connection; resolves once the listener is closed. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
  }
}

/** The answer's bytes (null: close the connection), or a promise of them for a deferred one (never rejects). */
function answer(message: Buffer, ctx: AnswerContext, log: Logger): Buffer | null | Promise<Buffer | null> {
  const failed = (err: unknown): Buffer | null => {
    log.error({ err }, 'DNS: answering a query failed');
    return serverFailure(message);
  };
  try {
    const r = respond(message, 'tcp', ctx);
    if (r.outcome === 'deferred') return r.later.then((later) => later.bytes, failed);
    if (r.outcome !== 'answered' && r.outcome !== 'refused')
      log.debug({ outcome: r.outcome }, 'DNS: bad query over TCP');
    return r.bytes;
  } catch (err) {
    return failed(err);
  }
}
