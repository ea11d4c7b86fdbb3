/**
 * The probe listener's thread (the one entry point of this folder): a bare node:http (or,
 * for an https:// --probe-listen, node:https) server for GET /healthz and GET /readyz,
 * answered from what the main thread published (state.ts) and never by asking it, so a
 * probe is answered in a millisecond while the main event loop works through hundreds of
 * readable sockets. Logs go to the main thread as messages (it owns the pino logger); an
 * uncaught error ends this thread, and the main thread logs it and starts another
 * (index.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse, STATUS_CODES } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { onRefusedHandshake } from '../../security/handshake-refusals.js';
import {
  answerProbe,
  type FromProbeWorker,
  HeartbeatCell,
  monotonicMs,
  type ProbeTls,
  type ProbeWorkerData,
  type PublishedReadiness,
  refusedRequestAnswer,
  type ToProbeWorker,
} from './state.js';

/** Probers are few (an orchestrator, a load balancer): more connections than this are refused. */
const MAX_CONNECTIONS = 256;
/** A probe is one small GET: a client slower than this only holds a connection. */
const HEADERS_TIMEOUT_MS = 5000;
const REQUEST_TIMEOUT_MS = 10_000;

const port = parentPort;
if (port === null)
  throw new Error('src/server/probes/worker.js runs as a worker thread (ProbeListener), not on its own');
const data = workerData as ProbeWorkerData;
const heartbeat = new HeartbeatCell(data.heartbeat);
let readiness: PublishedReadiness | null = data.readiness;

const post = (m: FromProbeWorker): void => port.postMessage(m);
const log = (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void =>
  post({ kind: 'log', level, msg, fields });
const errFields = (err: unknown): Record<string, unknown> =>
  err instanceof Error
    ? { err: { type: err.name, message: err.message, stack: err.stack, code: (err as NodeJS.ErrnoException).code } }
    : { err: String(err) };

function serve(req: IncomingMessage, res: ServerResponse): void {
  // Probes have no body; whatever one sends is read and dropped so the connection stays usable.
  req.resume();
  const answer = answerProbe(req.method ?? 'GET', req.url ?? '/', {
    nodeId: data.nodeId,
    lastBeatMs: heartbeat.lastBeatMs(),
    readiness,
    nowMs: monotonicMs(),
    stallLimitMs: data.stallLimitMs,
    readinessStaleMs: data.readinessStaleMs,
  });
  const text = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    'x-rollcall-node': data.nodeId,
  });
  res.end(req.method === 'HEAD' ? undefined : text);
}

function answer(req: IncomingMessage, res: ServerResponse): void {
  try {
    serve(req, res);
  } catch (err) {
    // A bug here must not end the thread (and every probe with it): answer 500, log it.
    log('error', 'probe listener: unexpected error answering a probe', errFields(err));
    if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error' } }));
  }
}

/** The secure-context part of the TLS options (what setSecureContext takes on a reload). */
function secureContext(tls: ProbeTls): { cert: Buffer; key: Buffer; ca?: Buffer } {
  // Buffers arrive through postMessage as plain Uint8Arrays: view them as Buffers again, no copy.
  const buffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  return { cert: buffer(tls.cert), key: buffer(tls.key), ...(tls.ca === null ? {} : { ca: buffer(tls.ca) }) };
}

const server =
  data.tls === null
    ? createServer(answer)
    : createHttpsServer(
        { ...secureContext(data.tls), requestCert: data.tls.ca !== null, rejectUnauthorized: data.tls.ca !== null },
        answer,
      );
if (data.tls !== null) {
  // A failed handshake (plain HTTP, an untrusted or missing client certificate): the main
  // thread logs it (rate-limited) and counts it with the other listeners' refusals.
  onRefusedHandshake(server as TlsServer, 'probe', (refusal) => post({ kind: 'tls-refused', refusal }));
}
server.maxConnections = MAX_CONNECTIONS;
server.headersTimeout = HEADERS_TIMEOUT_MS;
server.requestTimeout = REQUEST_TIMEOUT_MS;
server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
  log('debug', 'probe listener: bad request or connection error', { code: err.code ?? null, message: err.message });
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  // In the catalogue shape, as the main port answers what its parser refuses.
  const answer = refusedRequestAnswer(err.code);
  const text = JSON.stringify(answer.body);
  socket.end(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\nx-rollcall-node: ${data.nodeId}\r\n\r\n${text}`,
  );
});

let listening = false;
server.on('error', (err: NodeJS.ErrnoException) => {
  if (!listening) {
    post({ kind: 'listen-failed', message: err.message, code: err.code ?? null });
    port.close();
    return;
  }
  log('error', 'probe listener: server error', errFields(err));
});

server.listen(data.port, data.host, () => {
  listening = true;
  const addr = server.address();
  post({ kind: 'listening', port: typeof addr === 'object' && addr !== null ? addr.port : data.port });
});

port.on('message', (m: ToProbeWorker) => {
  switch (m.kind) {
    case 'readiness':
      readiness = m.readiness;
      return;
    case 'tls':
      try {
        if ('setSecureContext' in server) server.setSecureContext(secureContext(m.tls));
      } catch (err) {
        log('error', 'probe listener: the reloaded certificate was refused; keeping the previous one', errFields(err));
      }
      return;
    case 'close':
      // Idle keep-alive connections would hold close() open; probes in flight are a few ms.
      server.close(() => port.close());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 500).unref();
      return;
  }
});
