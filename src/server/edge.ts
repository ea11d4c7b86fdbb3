/**
 * The edge of the HTTP server: answers for what never reaches a route, in the catalogue
 * shape like every other error (issue 22 item 5).
 *
 * - What Node's HTTP parser refuses (a malformed request line or header, bad framing,
 *   headers over the limit, a request too slow to arrive) gets a catalogue answer written
 *   on the socket, which is then closed: MALFORMED_REQUEST, HEADERS_TOO_LARGE,
 *   REQUEST_TIMEOUT. So does CONNECT (ROUTE_NOT_FOUND), which Node would drop unanswered.
 * - An HTTP/1.1 request without `Host` is MALFORMED_REQUEST (Node would answer an empty 400).
 *   An `Expect` other than 100-continue is ignored (Node would answer an empty 417).
 * - A body whose Content-Length is over the limit is refused with 413 before any of it is
 *   read: at `Expect: 100-continue` time, without sending 100 (the client then need not
 *   send it), or else as soon as the headers are in. A chunked body is refused when it
 *   passes the limit.
 * - Whenever an answer leaves before the request's body was read (that 413, but also a 401,
 *   403 or 404 decided from the headers), the rest of the body is read and thrown away (up
 *   to DRAIN_MAX_BYTES or DRAIN_MAX_MS, then the connection is closed): a server that
 *   closes while the client is still sending makes the client's kernel see a reset, and the
 *   client gets EPIPE or ECONNRESET instead of the answer (nginx's lingering close does the
 *   same). The connection stays usable after the drain unless it was to close.
 * - Last, any error answer that is still not in the catalogue shape (a bug) is rewritten
 *   into the nearest catalogue code, and logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { maxHeaderSize } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../log/index.js';
import { ERROR_CATALOGUE, type ErrorCode, errorBody, sendError } from './errors.js';

/** A refused body is read and discarded up to this many bytes... */
export const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** ...or for this long, whichever comes first; then the connection is closed. */
export const DRAIN_MAX_MS = 10_000;
/** A connection answered by the parser handler is closed at the latest after this. */
const CLOSE_GRACE_MS = 2_000;

export interface EdgeOptions {
  readonly nodeId: string;
  /** The server-wide body limit, bytes. */
  readonly bodyLimit: number;
  readonly logger: Logger;
}

/** A full HTTP/1.1 response (catalogue body, Connection: close), for writing on a bare socket. */
export function rawErrorResponse(code: ErrorCode, message: string, nodeId: string): string {
  const status = ERROR_CATALOGUE[code].status;
  const body = JSON.stringify(errorBody(code, message));
  return (
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\n` +
    'content-type: application/json; charset=utf-8\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    `x-rollcall-node: ${nodeId}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  404: 'Not Found',
  408: 'Request Timeout',
  413: 'Payload Too Large',
  431: 'Request Header Fields Too Large',
};

/** Which catalogue answer a parser error gets. */
function parserErrorAnswer(err: NodeJS.ErrnoException & { reason?: string }): [ErrorCode, string] {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return ['HEADERS_TOO_LARGE', `the request line and headers are over ${maxHeaderSize} bytes`];
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return ['BODY_TOO_LARGE', 'body: the chunk extensions are too large'];
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return ['REQUEST_TIMEOUT', 'the request did not arrive in time'];
    default:
      // llhttp's reason names the rule broken ("Invalid header value char"), never the input.
      return [
        'MALFORMED_REQUEST',
        `not a valid HTTP/1.1 request (${err.code ?? 'error'}${err.reason ? `: ${err.reason}` : ''})`,
      ];
  }
}

/** Connections whose bytes the parser refused: it reports every later chunk again. */
const refusedSockets = new WeakSet<Socket>();

/**
 * Fastify's `clientErrorHandler`: what Node's parser refused, answered in the catalogue
 * shape, then the connection is closed.
 *
 * The bad bytes may follow a good request still being answered (a body-less request, then
 * garbage): that answer goes first, then ours, as HTTP/1.1 orders answers; bad bytes in the
 * body of the request in flight make this the answer to that request. Until the socket
 * is destroyed (CLOSE_GRACE_MS after, or DRAIN_MAX_MS when an answer was under way, a
 * watch for one), whatever the client still sends is read and dropped, and Node's own
 * "close after this answer" only ends our side: a close with unread data would reset the
 * connection before the client reads the answers.
 */
export function clientErrorHandler(
  options: Pick<EdgeOptions, 'nodeId' | 'logger'>,
): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed || refusedSockets.has(socket)) return;
    refusedSockets.add(socket);
    const [code, message] = parserErrorAnswer(err);
    options.logger.debug({ code: err.code, remote: socket.remoteAddress }, 'request refused by the HTTP parser');
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
    const pending = inFlight !== null && !inFlight.writableFinished;
    // Bad bytes inside the body of the request in flight: that request gets this answer.
    const ownBody = pending && inFlight.req.complete === false;
    if (ownBody && inFlight.headersSent) {
      socket.destroy(); // its answer has begun: nothing can follow it
      return;
    }
    const waiting = pending && !ownBody;
    setTimeout(() => socket.destroy(), waiting ? DRAIN_MAX_MS : CLOSE_GRACE_MS).unref();
    // Bytes after a request that asked `Connection: close`: that request's answer is the last.
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      if (!pending) socket.end();
      return;
    }
    // Node's own close after the answer in flight only ends our side: ours follows it.
    socket.destroySoon = () => {
      if (socket.writable && !waiting) socket.end();
    };
    const answer = (): void => {
      if (socket.writable && !socket.writableEnded) socket.end(rawErrorResponse(code, message, options.nodeId));
    };
    if (waiting) inFlight.once('finish', answer);
    else answer();
  };
}

/**
 * For an answer that leaves before the request's body was read: drain the body (see
 * drainRequest), and close afterwards when the client was told nothing (no 100 Continue)
 * and may be waiting instead of sending it.
 */
export function beforeEarlyAnswer(req: IncomingMessage, reply: Pick<FastifyReply, 'header'>): void {
  if (req.complete !== false || req.destroyed) return;
  if (expectsContinue(req) && !continued.has(req)) reply.header('connection', 'close');
  drainRequest(req);
}

/**
 * Node ends a connection that is to close (the client asked, HTTP/1.0, or an answer said
 * so) with `socket.destroySoon()` as soon as the last answer is written. Bytes the client
 * sent since (the rest of a body, a pipelined request, garbage) are then unread, the close
 * becomes a reset, and the reset can destroy the answer before the client reads it. This
 * replacement ends our side only (the client reads the answer, then a FIN), and destroys the
 * socket when the client closes or CLOSE_GRACE_MS later; what arrives meanwhile is read and
 * dropped (requests on it are not served: see installEdge). nginx and Apache call it a
 * lingering close.
 */
function lingeringClose(socket: Socket): () => void {
  return () => {
    if (socket.destroyed) return;
    if (socket.writable) socket.end();
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  };
}

/**
 * Reads and discards what is left of a request whose answer did not need its body, so the
 * client can finish sending and read the answer; closes the connection past the bounds
 * (DRAIN_MAX_BYTES, DRAIN_MAX_MS). A connection that is to close after the answer closes
 * once the body is drained, not when the answer is written.
 */
export function drainRequest(req: IncomingMessage): void {
  // `complete` is false until a real request's body has ended (inject's requests lack it).
  if (req.complete !== false || req.destroyed) return;
  const socket = req.socket;
  const closeLater = socket.destroySoon;
  let closeAsked = false;
  let left = DRAIN_MAX_BYTES;
  const cut = (): void => {
    stop();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    left -= chunk.length;
    if (left < 0) cut();
  };
  const stop = (): void => {
    clearTimeout(timer);
    req.off('data', onData);
    req.off('end', stop);
    req.off('close', stop);
    socket.destroySoon = closeLater;
    if (closeAsked) closeLater.call(socket);
  };
  socket.destroySoon = () => {
    closeAsked = true;
    if (socket.writable) socket.end();
  };
  const timer = setTimeout(cut, DRAIN_MAX_MS);
  timer.unref();
  req.on('data', onData);
  req.once('end', stop);
  req.once('close', stop);
  req.resume();
}

/** Requests whose 100 Continue this server sent (the client then sends the body). */
const continued = new WeakSet<IncomingMessage>();

function expectsContinue(req: IncomingMessage): boolean {
  const e = req.headers.expect;
  return typeof e === 'string' && /100-continue/i.test(e);
}

/**
 * Undoes fastify's `Connection: close` after a body error: the body has been read, or the
 * edge drains it, so the connection goes on as the request allowed (keep-alive unless it
 * asked to close). (Removing the header would leave Node's own one out too.)
 */
export function keepConnection(reply: FastifyReply): void {
  reply.header('connection', reply.raw.shouldKeepAlive ? 'keep-alive' : 'close');
}

/** 413 for a body over the limit (the onSend hook drains what is left of it). */
export function refuseBody(reply: FastifyReply, message: string, limit: number): FastifyReply {
  keepConnection(reply);
  return sendError(reply, 'BODY_TOO_LARGE', message, { field: 'body', limit });
}

/** The status an error answer not in the catalogue shape is given instead, by its status. */
const FALLBACK: Readonly<Record<number, ErrorCode>> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'ROUTE_NOT_FOUND',
  408: 'REQUEST_TIMEOUT',
  413: 'BODY_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
  503: 'SHUTTING_DOWN',
};

function isCatalogueBody(payload: unknown): boolean {
  const text = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : null;
  if (text === null) return false;
  try {
    const err = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    return typeof err?.code === 'string' && Object.hasOwn(ERROR_CATALOGUE, err.code) && typeof err.message === 'string';
  } catch {
    return false;
  }
}

/**
 * Installs the edge on `app` (before the auth hook: a body over the limit is refused
 * whoever sends it).
 */
export function installEdge(app: FastifyInstance, options: EdgeOptions): void {
  const server = app.server;
  // Node would write an empty 400 itself; the onRequest hook below answers instead.
  // (The `requireHostHeader` option of http.createServer, which Node reads per request.)
  (server as typeof server & { requireHostHeader: boolean }).requireHostHeader = false;
  // No 100 Continue for a body over the limit: the client is told 413 before it sends it.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    const length = Number(req.headers['content-length']);
    if (!(length > options.bodyLimit)) {
      continued.add(req);
      res.writeContinue();
    }
    server.emit('request', req, res);
  });
  // An expectation we do not know is ignored (RFC 9110 §10.1.1 allows it), not an empty 417.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res));
  server.on('connection', (socket: Socket) => {
    socket.destroySoon = lingeringClose(socket);
  });
  // CONNECT (no tunnels here): Node would drop the connection unanswered.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {});
    socket.end(
      rawErrorResponse('ROUTE_NOT_FOUND', `no route CONNECT ${String(req.url).slice(0, 200)}`, options.nodeId),
    );
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  });

  app.addHook('onRequest', (req, reply, done) => {
    const raw = req.raw;
    // A request that arrives while the connection closes is not served: its answer could
    // not be sent, and a write must not happen unanswered (RFC 9112 §9.6). (Node's parser
    // itself refuses what follows a request that asked `Connection: close`.)
    if (raw.socket.writable === false) {
      reply.hijack();
      return;
    }
    if (raw.httpVersionMajor === 1 && raw.httpVersionMinor === 1 && req.headers.host === undefined) {
      reply.header('connection', 'close');
      sendError(reply, 'MALFORMED_REQUEST', 'an HTTP/1.1 request needs a Host header', { field: 'host' });
      return;
    }
    const length = req.headers['content-length'];
    if (length !== undefined) {
      const limit = req.routeOptions.bodyLimit ?? options.bodyLimit;
      if (Number(length) > limit) {
        refuseBody(reply, `body: Content-Length ${length} is over the limit of ${limit} bytes`, limit);
        return;
      }
    }
    done();
  });

  // An answer decided before the body was read: drain the body so the client reads the
  // answer. A client told nothing (no 100 Continue) may wait instead of sending: close.
  app.addHook('onSend', (req, reply, payload, done) => {
    beforeEarlyAnswer(req.raw, reply);
    done(null, payload);
  });

  // Callback style, as the other onSend hook: only error answers pay for the check.
  app.addHook('onSend', (req, reply, payload, done) => {
    const status = reply.statusCode;
    const stream = payload !== null && typeof payload === 'object' && !Buffer.isBuffer(payload);
    if (status < 400 || req.method === 'HEAD' || stream || isCatalogueBody(payload)) {
      done(null, payload);
      return;
    }
    const code = FALLBACK[status] ?? (status >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT');
    options.logger.error(
      { method: req.method, route: req.routeOptions.url, status, code },
      'an error answer was not in the catalogue shape; sent with the nearest catalogue code',
    );
    reply.code(ERROR_CATALOGUE[code].status);
    reply.header('content-type', 'application/json; charset=utf-8');
    done(null, JSON.stringify(errorBody(code, `request refused (status ${status})`)));
  });
}
