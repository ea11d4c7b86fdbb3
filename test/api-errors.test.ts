/**
 * Issue 22 item 5: every 4xx and 5xx has the catalogue shape, whoever produced it — Node's
 * HTTP parser (431, a malformed request), fastify's defaults, the routes — on a real
 * listening server, not only through inject. Oversized bodies are refused with 413 from
 * Content-Length before they are read, and a body left unread by any early answer (413,
 * 401, ...) is drained so the client reads the answer instead of an EPIPE. A session id accepted when a session is opened is accepted
 * by keepalive and close (one schema for all three). A peer address that cannot be a
 * HOST:PORT is refused with 400 instead of being stored.
 */
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { TokenAuthority } from '../src/server/auth.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../src/server/errors.js';
import { INSTANCE_URL, type TestApp, testApp } from './api-helpers.js';
import { waitFor } from './helpers/wait.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

let app: FastifyInstance;
let node: InMemoryNodeApi;
let port: number;
const dispatched: string[] = [];

beforeAll(async () => {
  node = await InMemoryNodeApi.create();
  app = buildApp({ node, logger: silentLogger(), minRevisionTimeoutMs: 50, maxWaitMs: 2000 });
  // Every request the node dispatched, so a test can tell one was never served.
  app.addHook('onRequest', (req, _reply, done) => {
    dispatched.push(`${req.method} ${req.url}`);
    done();
  });
  // A route that answers an error of its own making, for the catalogue safety net.
  app.get('/v1/test/raw-error', { config: { access: 'public' } }, async (_req, reply) =>
    reply.code(418).send({ oops: true }),
  );
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
});

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Parses the HTTP/1.1 responses in `text` (Content-Length framed), skipping 1xx. */
function parseResponses(text: string): RawResponse[] {
  const out: RawResponse[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine, ...lines] = rest.slice(0, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1]);
    const headers: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    const len = Number(headers['content-length'] ?? 0);
    out.push({ status, headers, body: rest.slice(end + 4, end + 4 + len) });
    rest = rest.slice(end + 4 + len);
    if (status >= 100 && status < 200) out.pop();
  }
  return out;
}

/**
 * Writes `chunks` on a fresh connection and collects the answers until the server closes,
 * `until` answers are complete, or `ms` pass.
 */
async function raw(chunks: readonly (string | Buffer)[], ms = 2000, until = Infinity): Promise<RawResponse[]> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let got = '';
  let enough: () => void = () => {};
  const done = new Promise<void>((r) => (enough = r));
  socket.on('data', (d: Buffer) => {
    got += d.toString('latin1');
    if (parseResponses(got).length >= until) enough();
  });
  socket.on('error', () => {});
  for (const c of chunks) socket.write(c);
  await Promise.race([once(socket, 'close'), done, new Promise((r) => setTimeout(r, ms))]);
  socket.destroy();
  return parseResponses(got);
}

function expectCatalogue(res: { status: number; body: string }, code: ErrorCode): void {
  expect(res.status, res.body).toBe(ERROR_CATALOGUE[code].status);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message).toEqual(expect.any(String));
  expect(body.error.message.length).toBeGreaterThan(5);
}

const TEN_MB = 10 * 1024 * 1024;
const putHead = (length: number, extra = '') =>
  `PUT ${INSTANCE_URL}/big HTTP/1.1\r\nHost: x\r\n${extra}Content-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
const HEALTHZ_CLOSE = 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';

/** One exchange on a fresh connection: what the client writes, and the answers it reads, in order. */
interface Exchange {
  readonly what: string;
  readonly send: readonly (string | Buffer)[];
  /** Each answer: a catalogue code (its status and shape are checked) or a plain status. */
  readonly answers: readonly (ErrorCode | number)[];
  /** Nothing follows the last answer: read until the node closes the connection (or `ms` pass). */
  readonly nothingMore?: boolean;
  /** The last answer says `Connection: close`. */
  readonly closes?: boolean;
  /** The answers are JSON. */
  readonly json?: boolean;
  readonly ms?: number;
}

const malformed = (what: string, text: string, code: ErrorCode = 'MALFORMED_REQUEST'): Exchange => ({
  what,
  send: [text],
  answers: [code],
  nothingMore: true,
  json: true,
});

const EXCHANGES: readonly Exchange[] = [
  // Below the routes: Node's HTTP parser and fastify's defaults answer in the catalogue shape too.
  malformed(
    'headers over the limit (431)',
    `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
    'HEADERS_TOO_LARGE',
  ),
  malformed('a header name with a space', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n'),
  malformed('a bad request line', 'FOO BAR\r\n\r\n'),
  malformed(
    'Content-Length with Transfer-Encoding',
    'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  ),
  malformed(
    'a Content-Length that is not a number',
    'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
  ),
  malformed(
    'bad chunk framing',
    'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  ),
  malformed('HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\n\r\n'),
  malformed('CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 'ROUTE_NOT_FOUND'),
  {
    // A body without a length is the next "request": its answer must not replace or cut
    // the one before it, and the client, still sending, must read both.
    what: 'a good request first, then bytes after it that are not HTTP (fuzzer, seed 3)',
    send: [HEALTHZ, Buffer.alloc(2 * 1024 * 1024, 0x61)],
    answers: [200, 'MALFORMED_REQUEST'],
    ms: 3000,
  },
  {
    what: 'a body it could not parse: the connection goes on and the next request is answered',
    send: [
      `PUT ${INSTANCE_URL}/i1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{x}${HEALTHZ_CLOSE}`,
    ],
    answers: ['INVALID_JSON', 200],
    nothingMore: true,
  },
  {
    what: 'an Expect it does not know: served, not answered 417 without a body',
    send: ['GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n'],
    answers: [200],
    nothingMore: true,
  },
  // Oversized bodies: refused from Content-Length before they are read, and drained so the
  // client reads the answer instead of a reset.
  {
    // Raw, not node:http: its keep-alive client stops writing once it has the answer (it
    // waits for a 'drain' it is never given), whatever the server does.
    what: 'a 10 MB body with Content-Length, drained whole for a keep-alive client that then reuses the connection',
    send: [putHead(TEN_MB), Buffer.alloc(TEN_MB, 0x61), HEALTHZ],
    answers: ['BODY_TOO_LARGE', 200],
    ms: 5000,
  },
  {
    what: 'a 300 KB body over the limit, drained, and the connection keeps serving',
    send: [putHead(300 * 1024), Buffer.alloc(300 * 1024, 0x61), HEALTHZ_CLOSE],
    answers: ['BODY_TOO_LARGE', 200],
    nothingMore: true,
  },
  {
    // RFC 9110 §10.1.1: a client need not wait for the 100. The node did not send it, closes
    // after the answer, and drains meanwhile so the answer is not lost in a reset.
    what: 'a 10 MB body sent anyway after Expect: 100-continue',
    send: [putHead(TEN_MB, 'Expect: 100-continue\r\n'), Buffer.alloc(TEN_MB, 0x61)],
    answers: ['BODY_TOO_LARGE'],
    closes: true,
    ms: 5000,
  },
  {
    // No byte of the body is ever sent: an answer at all shows it came from Content-Length alone.
    what: 'a Content-Length over the limit and no body yet: answered before any of it arrives',
    send: [putHead(TEN_MB)],
    answers: ['BODY_TOO_LARGE'],
    ms: 5000,
  },
  {
    what: 'a Content-Length over the limit on a GET',
    send: [`GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${TEN_MB}\r\n\r\n`],
    answers: ['BODY_TOO_LARGE'],
    ms: 5000,
  },
];

describe('answers on a real connection have the catalogue shape, and are read by the client', () => {
  it.each(EXCHANGES.map((e) => [e.what, e] as const))('%s', async (_what, e) => {
    const answers = await raw(e.send, e.ms ?? 2000, e.nothingMore ? Infinity : e.answers.length);
    expect(
      answers.map((a) => a.status),
      answers.map((a) => a.body).join('\n'),
    ).toEqual(e.answers.map((x) => (typeof x === 'number' ? x : ERROR_CATALOGUE[x].status)));
    e.answers.forEach((x, i) => {
      if (typeof x === 'string') expectCatalogue(answers[i]!, x);
      if (e.json) expect(answers[i]!.headers['content-type']).toMatch(/^application\/json/);
    });
    if (e.closes) expect(answers.at(-1)!.headers['connection']).toBe('close');
  });

  it('closes after an answer marked close without resetting a client still sending (fuzzer, seed 3)', async () => {
    // A PUT without a length (so without a body) that asks to close is refused at once while
    // the client goes on writing what it meant as a body, 64 KiB every 20 ms. Node's close
    // would reset the connection, and the client would get EPIPE, possibly before the answer.
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let got = '';
    let error: string | null = null;
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    socket.write(
      `PUT ${INSTANCE_URL}/i1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n`,
    );
    for (let i = 0; i < 30 && error === null; i++) {
      socket.write(Buffer.alloc(64 * 1024, 0x61));
      await new Promise((r) => setTimeout(r, 20));
    }
    socket.end();
    await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 3000))]);
    socket.destroy();
    expect(error).toBeNull();
    const answers = parseResponses(got);
    expect(answers.length).toBe(1);
    expectCatalogue(answers[0]!, 'INVALID_JSON');
    expect(answers[0]!.headers['connection']).toBe('close');
  });

  it('does not serve a request pipelined behind one that closes the connection', async () => {
    const body = JSON.stringify({ address: '10.0.0.9', port: 80 });
    const answers = await raw([
      HEALTHZ_CLOSE +
        `PUT ${INSTANCE_URL}/piped HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ]);
    expect(answers.map((a) => a.status)).toEqual([200]);
    expect(answers[0]!.headers['connection']).toBe('close');
    // raw() read until the node closed the connection: a request it dispatched from it has
    // been seen by then (dispatch happens as its headers are parsed), served or not.
    expect(dispatched.filter((r) => r.includes('/piped'))).toEqual([]);
    expect(node.registry.getInstance('prod', 'orders', 'piped')).toBeUndefined();
  });

  it('answers the not-ready 503 of /readyz in the catalogue shape, keeping its fields', async () => {
    node.leader = null;
    try {
      const res = await app.inject({ method: 'GET', url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({
        error: { code: 'NOT_READY', message: expect.stringContaining('no leader') },
        ready: false,
        reasons: [expect.stringContaining('no leader')],
      });
    } finally {
      node.leader = node.id;
    }
  });

  it('turns an error body a route made up into a catalogue one', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/test/raw-error' });
    expectCatalogue({ status: res.statusCode, body: res.body }, 'INVALID_ARGUMENT');
  });
});

describe('a node that is stopping', () => {
  it('answers a request that arrives while it closes with SHUTTING_DOWN in the catalogue shape', async () => {
    const other = buildApp({ node: await InMemoryNodeApi.create(), logger: silentLogger() });
    await other.listen({ host: '127.0.0.1', port: 0 });
    const accepted = once(other.server, 'connection') as Promise<[Socket]>;
    const socket = connect((other.server.address() as { port: number }).port, '127.0.0.1');
    await once(socket, 'connect');
    const [serverSide] = await accepted;
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    // A request under way (its headers not finished) keeps the connection open through close().
    socket.write('GET /v1/cluster HTTP/1.1\r\nHost: x\r\n');
    await waitFor('the node to have read the first half of the request', () => serverSide.bytesRead > 0, 5000, 5);
    const closed = other.close();
    await waitFor('the node to stop listening', () => !other.server.listening, 5000, 5);
    socket.write('\r\n');
    await closed;
    await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 2000))]);
    socket.destroy();
    const [res] = parseResponses(got);
    expectCatalogue(res!, 'SHUTTING_DOWN');
    expect(res!.headers['connection']).toBe('close');
  });
});

describe('oversized bodies sent by node:http', () => {
  /** Sends `total` bytes with node:http (Content-Length, or chunked when `length` is false). */
  function send(
    total: number,
    opts: { length: boolean; expectContinue?: boolean },
  ): Promise<{ status: number; body: string; error: string | null; continued: boolean }> {
    return new Promise((resolve) => {
      const headers: Record<string, string | number> = { 'content-type': 'application/json' };
      if (opts.length) headers['content-length'] = total;
      if (opts.expectContinue) headers.expect = '100-continue';
      let continued = false;
      const answer = { status: 0, body: '' };
      let error: string | null = null;
      const req = httpRequest(
        { host: '127.0.0.1', port, method: 'PUT', path: `${INSTANCE_URL}/big`, headers, agent: false },
        (res) => {
          res.on('data', (d: Buffer) => (answer.body += d.toString()));
          res.on('end', () => (answer.status = res.statusCode ?? 0));
        },
      );
      // An EPIPE or a reset while the body is still going out counts, even after the answer came.
      req.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      req.on('close', () => resolve({ ...answer, error, continued }));
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      if (opts.expectContinue) {
        req.on('continue', () => {
          continued = true;
          pump();
        });
        req.flushHeaders();
      } else pump();
    });
  }

  it.each([
    ['with Content-Length', { length: true }],
    ['chunked, once it passes the limit', { length: false }],
    ['with Expect: 100-continue, refused before the body is sent', { length: true, expectContinue: true }],
  ] as const)('a 10 MB body %s: 413 on a real socket, not EPIPE', async (_what, opts) => {
    const res = await send(TEN_MB, opts);
    expect(res.error).toBeNull();
    expect(res.continued).toBe(false);
    expectCatalogue(res, 'BODY_TOO_LARGE');
    expect(JSON.parse(res.body).error.message).toMatch(/262144/);
  });
});

describe('answers decided before the body is read', () => {
  // A larger body limit, so the body is far more than the sockets buffer and is refused for
  // want of a token, not for its size.
  let authed: FastifyInstance;
  let authedPort: number;
  beforeAll(async () => {
    authed = buildApp({
      node: await InMemoryNodeApi.create(),
      logger: silentLogger(),
      bodyLimit: 64 * 1024 * 1024,
      tokens: TokenAuthority.parse(JSON.stringify([{ token: 'admin-token-00000000000000', role: 'admin' }])),
    });
    await authed.listen({ host: '127.0.0.1', port: 0 });
    authedPort = (authed.server.address() as { port: number }).port;
  });
  afterAll(async () => {
    await authed?.close();
  });

  /** node:http without an agent: `Connection: close`, so the node closes after the answer. */
  function sendUnauthenticated(
    total: number,
    chunked: boolean,
    path = `${INSTANCE_URL}/x`,
  ): Promise<{ status: number; body: string; error: string | null }> {
    return new Promise((resolve) => {
      const answer = { status: 0, body: '' };
      let error: string | null = null;
      const headers: Record<string, string | number> = { 'content-type': 'application/json' };
      if (!chunked) headers['content-length'] = total;
      const req = httpRequest(
        { host: '127.0.0.1', port: authedPort, method: 'PUT', path, headers, agent: false },
        (res) => {
          res.on('data', (d: Buffer) => (answer.body += d.toString()));
          res.on('end', () => (answer.status = res.statusCode ?? 0));
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
      req.on('close', () => resolve({ ...answer, error }));
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
  }

  it.each([
    ['a 401 (with Content-Length)', false, `${INSTANCE_URL}/x`, 'UNAUTHENTICATED', undefined],
    ['a 401 (chunked)', true, `${INSTANCE_URL}/x`, 'UNAUTHENTICATED', undefined],
    // Fastify answers a bad path before any hook runs; the body is drained there too.
    [
      'a 400 for a path that cannot be decoded (fuzzer, seed 3)',
      false,
      '/v1/namespaces/%/services/x/instances/y',
      'INVALID_ARGUMENT',
      'path',
    ],
  ] as const)(
    '%s reaches a client still sending an 8 MB body, not a reset',
    async (_what, chunked, path, code, field) => {
      const res = await sendUnauthenticated(8 * 1024 * 1024, chunked, path);
      expect(res.error).toBeNull();
      expectCatalogue(res, code);
      expect(JSON.parse(res.body).error.field).toBe(field);
    },
  );
});

describe('session ids: one schema for open, keepalive and close', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const ACCEPTED = ['a.b', 'svc:1', 'x@y', 'orders-7f3a_1', `A${'b'.repeat(127)}`];
  it.each(ACCEPTED)('%s: opened, kept alive, bound to an instance and closed', async (id) => {
    const opened = await t.req({
      method: 'POST',
      url: '/v1/sessions',
      headers: { 'x-rollcall-session-id': id },
      payload: { ttlMs: 10_000 },
    });
    expect(opened.status, opened.text).toBe(201);
    const seg = encodeURIComponent(id);
    const kept = await t.req({ method: 'PUT', url: `/v1/sessions/${seg}/keepalive` });
    expect(kept.status, kept.text).toBe(200);
    const reg = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/e-${id.length}`,
      payload: { address: '10.0.0.1', port: 80, sessionId: id },
    });
    expect(reg.status, reg.text).toBe(200);
    const closed = await t.req({ method: 'DELETE', url: `/v1/sessions/${seg}` });
    expect(closed.status, closed.text).toBe(200);
    expect(closed.body.deleted).toBe(1);
  });

  it('accepts the ids it makes up itself (random, or derived from the client id)', async () => {
    for (const headers of [{}, { 'x-rollcall-client-id': 'c1', 'x-rollcall-seq': '1' }]) {
      const opened = await t.req({ method: 'POST', url: '/v1/sessions', headers, payload: { ttlMs: 10_000 } });
      expect(opened.status).toBe(201);
      const seg = encodeURIComponent(opened.body.id);
      expect((await t.req({ method: 'PUT', url: `/v1/sessions/${seg}/keepalive` })).status).toBe(200);
      expect((await t.req({ method: 'DELETE', url: `/v1/sessions/${seg}` })).status).toBe(200);
    }
  });

  const REFUSED = ['_x', '-x', `a${'b'.repeat(128)}`, 'a b', 'a/b', 'é'];
  it.each(REFUSED)('%s: refused alike by open, keepalive, close and register', async (id) => {
    const seg = encodeURIComponent(id);
    const opened = await t.req({
      method: 'POST',
      url: '/v1/sessions',
      headers: { 'x-rollcall-session-id': encodeURIComponent(id) === id ? id : seg },
      payload: { ttlMs: 10_000 },
    });
    expect([opened.status, opened.body.error?.field]).toEqual([400, 'x-rollcall-session-id']);
    for (const [method, url] of [
      ['PUT', `/v1/sessions/${seg}/keepalive`],
      ['DELETE', `/v1/sessions/${seg}`],
    ] as const) {
      const res = await t.req({ method, url });
      expect([method, res.status, res.body.error?.code], res.text).toEqual([method, 400, 'INVALID_ARGUMENT']);
    }
    const reg = await t.req({
      method: 'PUT',
      url: `${INSTANCE_URL}/r1`,
      payload: { address: '10.0.0.1', port: 80, sessionId: id },
    });
    expect([reg.status, reg.body.error?.field]).toEqual([400, 'sessionId']);
  });
});

describe('POST /v1/cluster/members checks peerAddress', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  const BAD = [
    'a b:80',
    'a b/c:80',
    'http://host:80',
    'host:0',
    'host:65536',
    'host:',
    ':80',
    '::1:80',
    '[::1]',
    '[nope]:80',
    '300.1.2.3:80',
    '-host:80',
    'host..x:80',
    `${'a'.repeat(64)}.x:80`,
    'host:80 ',
    'h\u00e9:80',
  ];
  it.each(BAD)('refuses %j with 400 naming peerAddress', async (peerAddress) => {
    const res = await t.req({ method: 'POST', url: '/v1/cluster/members', payload: { id: 'n4', peerAddress } });
    expect([res.status, res.body.error?.code, res.body.error?.field], res.text).toEqual([
      400,
      'INVALID_ARGUMENT',
      'peerAddress',
    ]);
  });

  const GOOD = [
    '127.0.0.1:7104',
    'node-4.rollcall.svc:7000',
    'n4:1',
    '[::1]:7104',
    '[fe80::1]:65535',
    'localhost:7104',
  ];
  it.each(GOOD)('accepts %j', async (peerAddress) => {
    const res = await t.req({ method: 'POST', url: '/v1/cluster/members', payload: { id: 'n4', peerAddress } });
    expect(res.status, res.text).toBe(201);
  });
});
