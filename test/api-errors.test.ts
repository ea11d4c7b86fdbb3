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
import { connect } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { TokenAuthority } from '../src/server/auth.js';
import { ERROR_CATALOGUE, type ErrorCode } from '../src/server/errors.js';
import { INSTANCE_URL, type TestApp, testApp } from './api-helpers.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

let app: FastifyInstance;
let node: InMemoryNodeApi;
let port: number;

beforeAll(async () => {
  node = await InMemoryNodeApi.create();
  app = buildApp({ node, logger: silentLogger(), minRevisionTimeoutMs: 50, maxWaitMs: 2000 });
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

describe('answers from below the routes have the catalogue shape', () => {
  const cases: [string, string, ErrorCode][] = [
    [
      'headers over the limit (431)',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      'HEADERS_TOO_LARGE',
    ],
    ['a header name with a space', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: x\r\n\r\n', 'MALFORMED_REQUEST'],
    ['a bad request line', 'FOO BAR\r\n\r\n', 'MALFORMED_REQUEST'],
    [
      'Content-Length with Transfer-Encoding',
      'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      'MALFORMED_REQUEST',
    ],
    [
      'a Content-Length that is not a number',
      'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}',
      'MALFORMED_REQUEST',
    ],
    [
      'bad chunk framing',
      'POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
      'MALFORMED_REQUEST',
    ],
    ['HTTP/1.1 without Host', 'GET /healthz HTTP/1.1\r\n\r\n', 'MALFORMED_REQUEST'],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 'ROUTE_NOT_FOUND'],
  ];
  it.each(cases)('%s', async (_what, text, code) => {
    const [res, ...more] = await raw([text]);
    expect(res, 'an answer before the connection closed').toBeDefined();
    expectCatalogue(res!, code);
    expect(res!.headers['content-type']).toMatch(/^application\/json/);
    expect(more).toEqual([]);
  });

  it('answers a good request first, then the bytes after it that are not HTTP (fuzzer, seed 3)', async () => {
    // A body without a length is the next "request": its answer must not replace or cut
    // the one before it, and the client, still sending, must read both.
    const answers = await raw(
      ['GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', Buffer.alloc(2 * 1024 * 1024, 0x61)],
      3000,
      2,
    );
    expect(answers.map((a) => a.status)).toEqual([200, 400]);
    expectCatalogue(answers[1]!, 'MALFORMED_REQUEST');
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

  it('keeps the connection after a body it could not parse, and answers the next request', async () => {
    const answers = await raw([
      `PUT ${INSTANCE_URL}/i1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{x}GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    ]);
    expect(answers.map((a) => a.status)).toEqual([400, 200]);
    expectCatalogue(answers[0]!, 'INVALID_JSON');
  });

  it('does not serve a request pipelined behind one that closes the connection', async () => {
    const body = JSON.stringify({ address: '10.0.0.9', port: 80 });
    const answers = await raw([
      'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' +
        `PUT ${INSTANCE_URL}/piped HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    ]);
    expect(answers.map((a) => a.status)).toEqual([200]);
    expect(answers[0]!.headers['connection']).toBe('close');
    await new Promise((r) => setTimeout(r, 50));
    expect(node.registry.getInstance('prod', 'orders', 'piped')).toBeUndefined();
  });

  it('serves a request whose Expect it does not know instead of answering 417 without a body', async () => {
    const [res] = await raw([
      'GET /healthz HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nConnection: close\r\n\r\n',
    ]);
    expect(res?.status).toBe(200);
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
    const socket = connect((other.server.address() as { port: number }).port, '127.0.0.1');
    await once(socket, 'connect');
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    // A request under way (its headers not finished) keeps the connection open through close().
    socket.write('GET /v1/cluster HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setTimeout(r, 50));
    const closed = other.close();
    await new Promise((r) => setTimeout(r, 50));
    socket.write('\r\n');
    await closed;
    await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, 2000))]);
    socket.destroy();
    const [res] = parseResponses(got);
    expectCatalogue(res!, 'SHUTTING_DOWN');
    expect(res!.headers['connection']).toBe('close');
  });
});

describe('oversized bodies', () => {
  const TEN_MB = 10 * 1024 * 1024;

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

  it('answers a 10 MB body with Content-Length 413 on a real socket, not EPIPE', async () => {
    const res = await send(TEN_MB, { length: true });
    expect(res.error).toBeNull();
    expectCatalogue(res, 'BODY_TOO_LARGE');
    expect(JSON.parse(res.body).error.message).toMatch(/262144/);
  });

  it('drains the whole 10 MB for a keep-alive client, which then reuses the connection', async () => {
    // Raw, not node:http: its keep-alive client stops writing once it has the answer (it
    // waits for a 'drain' it is never given), whatever the server does.
    const [first, second] = await raw(
      [
        `PUT ${INSTANCE_URL}/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${TEN_MB}\r\n\r\n`,
        Buffer.alloc(TEN_MB, 0x61),
        'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n',
      ],
      5000,
      2,
    );
    expectCatalogue(first!, 'BODY_TOO_LARGE');
    expect(second?.status).toBe(200);
  });

  it('answers 413 to a client that sends the body anyway after Expect: 100-continue', async () => {
    // RFC 9110 §10.1.1: a client need not wait for the 100. The node did not send it, closes
    // after the answer, and drains meanwhile so the answer is not lost in a reset.
    const [res] = await raw(
      [
        `PUT ${INSTANCE_URL}/big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: ${TEN_MB}\r\n\r\n`,
        Buffer.alloc(TEN_MB, 0x61),
      ],
      5000,
      1,
    );
    expectCatalogue(res!, 'BODY_TOO_LARGE');
    expect(res!.headers['connection']).toBe('close');
  });

  it('answers a 10 MB chunked body 413 once it passes the limit, not EPIPE', async () => {
    const res = await send(TEN_MB, { length: false });
    expect(res.error).toBeNull();
    expectCatalogue(res, 'BODY_TOO_LARGE');
  });

  it('refuses before the body is sent when the client asks Expect: 100-continue', async () => {
    const res = await send(TEN_MB, { length: true, expectContinue: true });
    expect(res.continued).toBe(false);
    expect(res.error).toBeNull();
    expectCatalogue(res, 'BODY_TOO_LARGE');
  });

  it('answers from Content-Length alone, before any of the body arrives', async () => {
    const started = performance.now();
    const [res] = await raw(
      [
        `PUT ${INSTANCE_URL}/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${TEN_MB}\r\n\r\n`,
      ],
      1000,
      1,
    );
    expectCatalogue(res!, 'BODY_TOO_LARGE');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('drains a refused body and keeps serving the connection', async () => {
    const big = 300 * 1024;
    const [first, second] = await raw([
      `PUT ${INSTANCE_URL}/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${big}\r\n\r\n`,
      Buffer.alloc(big, 0x61),
      'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ]);
    expectCatalogue(first!, 'BODY_TOO_LARGE');
    expect(second?.status).toBe(200);
  });

  it('answers a body over the limit on a GET too', async () => {
    const [res] = await raw([`GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${TEN_MB}\r\n\r\n`], 1000, 1);
    expectCatalogue(res!, 'BODY_TOO_LARGE');
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
    ['with Content-Length', false],
    ['chunked', true],
  ])('a 401 reaches a client still sending an 8 MB body (%s), not a reset', async (_what, chunked) => {
    const res = await sendUnauthenticated(8 * 1024 * 1024, chunked);
    expect(res.error).toBeNull();
    expectCatalogue(res, 'UNAUTHENTICATED');
  });

  it('a 400 for a path that cannot be decoded reaches a client still sending its body (fuzzer, seed 3)', async () => {
    // Fastify answers a bad path before any hook runs; the body is drained there too.
    const res = await sendUnauthenticated(8 * 1024 * 1024, false, '/v1/namespaces/%/services/x/instances/y');
    expect(res.error).toBeNull();
    expectCatalogue(res, 'INVALID_ARGUMENT');
    expect(JSON.parse(res.body).error.field).toBe('path');
  });
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
