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
 *   read: at `Expect: 100-continue` time, without sending 100 (the client then never sends
 *   it), or else as soon as the headers are in. A chunked body is refused when it passes
 *   the limit. Either way the rest of the body is then read and thrown away (up to
 *   DRAIN_MAX_BYTES or DRAIN_MAX_MS, then the connection is closed): a server that closes
 *   while the client is still sending makes the client's kernel see a reset, and the
 *   client gets EPIPE or ECONNRESET instead of the 413 (nginx's lingering close does the
 *   same). The connection stays usable after the drain.
 * - Last, any error answer that is still not in the catalogue shape (a bug) is rewritten
 *   into the nearest catalogue code, and logged.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { maxHeaderSize } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
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
      return ['MALFORMED_REQUEST', `not a valid HTTP/1.1 request (${err.code ?? 'error'}${err.reason ? `: ${err.reason}` : ''})`];
  }
}

/** Fastify's `clientErrorHandler`: what Node's parser refused, answered in the catalogue shape. */
export function clientErrorHandler(options: Pick<EdgeOptions, 'nodeId' | 'logger'>): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    // Answer once, and only if no response has started on this connection (it would corrupt it).
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (socket.writable && !socket.writableEnded && !inFlight?.headersSent) {
      const [code, message] = parserErrorAnswer(err);
      options.logger.debug({ code: err.code, remote: socket.remoteAddress }, 'request refused by the HTTP parser');
      // end(), not destroy(): the client may still be sending, and a close with unread data
      // resets the connection before it reads the answer. The timer bounds the wait.
      socket.end(rawErrorResponse(code, message, options.nodeId));
      setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
    } else if (!socket.writableEnded) {
      socket.destroy();
    }
  };
}

/**
 * Reads and discards what is left of a request whose answer did not need its body, so the
 * client can finish sending and read the answer; closes the connection past the bounds.
 *
 * When the connection is to close after the answer (the client sent `Connection: close`),
 * Node ends it with `socket.destroySoon()` as soon as the answer is written. For this
 * socket that becomes a lingering close: the write side is ended (the client sees the
 * answer and a FIN) and the socket is destroyed once the body is drained.
 */
export function drainRequest(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  const socket = req.socket;
  let left = DRAIN_MAX_BYTES;
  let lingering = false;
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
    Reflect.deleteProperty(socket, 'destroySoon'); // back to net.Socket's own
    if (lingering) socket.destroy();
  };
  socket.destroySoon = () => {
    lingering = true;
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

/** 413 for a body over the limit; the body is drained, or never comes (no 100 Continue sent). */
export function refuseBody(req: FastifyRequest, reply: FastifyReply, message: string, limit: number): FastifyReply {
  // Fastify asks to close after a body error; draining keeps the connection instead.
  reply.removeHeader('connection');
  if (expectsContinue(req.raw) && !continued.has(req.raw)) reply.header('connection', 'close');
  else drainRequest(req.raw);
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
  // CONNECT (no tunnels here): Node would drop the connection unanswered.
  server.on('connect', (req: IncomingMessage, socket: Socket) => {
    socket.on('error', () => {});
    socket.end(rawErrorResponse('ROUTE_NOT_FOUND', `no route CONNECT ${String(req.url).slice(0, 200)}`, options.nodeId));
    setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
  });

  app.addHook('onRequest', (req, reply, done) => {
    const raw = req.raw;
    if (raw.httpVersionMajor === 1 && raw.httpVersionMinor === 1 && req.headers.host === undefined) {
      reply.header('connection', 'close');
      sendError(reply, 'MALFORMED_REQUEST', 'an HTTP/1.1 request needs a Host header', { field: 'host' });
      return;
    }
    const length = req.headers['content-length'];
    if (length !== undefined) {
      const limit = req.routeOptions.bodyLimit ?? options.bodyLimit;
      if (Number(length) > limit) {
        refuseBody(req, reply, `body: Content-Length ${length} is over the limit of ${limit} bytes`, limit);
        return;
      }
    }
    done();
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
    options.logger.error({ method: req.method, route: req.routeOptions.url, status, code }, 'an error answer was not in the catalogue shape; sent with the nearest catalogue code');
    reply.code(ERROR_CATALOGUE[code].status);
    reply.header('content-type', 'application/json; charset=utf-8');
    done(null, JSON.stringify(errorBody(code, `request refused (status ${status})`)));
  });
}
