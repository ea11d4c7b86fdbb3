/**
 * The cross-datacenter watch relay (src/federation/watch-relay.ts) against scripted remote
 * members over loopback HTTP: a member that dies in the middle of a revision (one of its two
 * events sent, the next frame cut), and one that goes silent. The client's one stream gets
 * every change once, in order, and a new member is asked for the stream after the last
 * whole revision.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WatchRelay } from '../src/federation/watch-relay.js';
import { silentLogger } from '../src/log/index.js';
import { parseSse } from './api-sse.js';

const change = (rev: number, id: string) =>
  `id: ${rev}\ndata: ${JSON.stringify({ revision: rev, type: 'put', instance: { id } })}\n\n`;
const progress = (rev: number) => `event: progress\nid: ${rev}\ndata: {"revision":${rev}}\n\n`;

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

function streamHead(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'x-rollcall-revision': '4' });
  res.write('retry: 2000\n\n');
}

/** A local server relaying `first`, reopening on `next`; returns what its client read, once `until` is in it. */
async function relayThrough(
  first: string,
  next: string,
  until: string,
  idleMs = 10_000,
): Promise<{ text: string; asked: (string | undefined)[] }> {
  const asked: (string | undefined)[] = [];
  const relays: WatchRelay[] = [];
  const local = await serve((_req, res) => {
    void (async () => {
      const response = await fetch(first);
      const relay = new WatchRelay({
        datacenter: 'dc-x',
        first: { response, address: first },
        after: null,
        res,
        headers: { 'content-type': 'text/event-stream' },
        logger: silentLogger(),
        idleMs,
        reopen: async (after) => {
          asked.push(String(after));
          return { response: await fetch(next, { headers: { 'last-event-id': String(after) } }), address: next };
        },
      });
      relays.push(relay);
      await relay.run();
    })();
  });
  const abort = new AbortController();
  const res = await fetch(local, { signal: abort.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes(until)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  abort.abort();
  for (const r of relays) r.close();
  return { text, asked };
}

describe('WatchRelay', () => {
  it('resumes after the last whole revision and skips the part of a revision already sent', async () => {
    let lastEventId: string | undefined;
    const dies = await serve((_req, res) => {
      streamHead(res);
      // Revision 7 has two events; the member dies after the first and part of the second.
      res.write(change(5, 'a') + change(6, 'b') + change(6, 'c') + change(7, 'd'));
      res.write('id: 7\ndata: {"revision":7,"ty');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const next = await serve((req, res) => {
      lastEventId = req.headers['last-event-id'] as string | undefined;
      streamHead(res);
      res.write(change(7, 'd') + change(7, 'e') + progress(7) + change(8, 'f'));
    });
    const { text, asked } = await relayThrough(dies, next, '"f"');
    expect(asked).toEqual(['6']);
    expect(lastEventId).toBe('6');
    const events = parseSse(text).events;
    expect(events.map((e) => `${e.id}/${e.event}/${e.data.instance?.id ?? ''}`)).toEqual([
      '5/message/a',
      '6/message/b',
      '6/message/c',
      '7/message/d',
      '7/message/e',
      '7/progress/',
      '8/message/f',
    ]);
    // One `retry:` line: the client's stream did not start over.
    expect(text.match(/retry:/g)).toHaveLength(1);
  });

  it('a member that goes silent is given up after the idle limit', async () => {
    const silent = await serve((_req, res) => {
      streamHead(res);
      res.write(change(5, 'a'));
    });
    let lastEventId: string | undefined;
    const next = await serve((req, res) => {
      lastEventId = req.headers['last-event-id'] as string | undefined;
      streamHead(res);
      // Revision 5 may have had more events than the one relayed: it is asked for again, and `a` skipped.
      res.write(change(5, 'a') + change(6, 'b'));
    });
    const { text, asked } = await relayThrough(silent, next, '"b"', 200);
    expect(asked).toEqual(['4']);
    expect(lastEventId).toBe('4');
    expect(parseSse(text).events.map((e) => e.data.instance.id)).toEqual(['a', 'b']);
  });

  it('a lagging member that reports progress below the resume point still has its repeats skipped', async () => {
    const dies = await serve((_req, res) => {
      streamHead(res);
      // Revision 7 has two events; the member dies after the first.
      res.write(change(6, 'b') + change(7, 'c'));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const next = await serve((_req, res) => {
      streamHead(res);
      // A follower behind the dead member: idle at revision 6, it reports progress before revision 7 reaches it.
      res.write(progress(6));
      setTimeout(() => res.write(change(7, 'c') + change(7, 'd') + change(8, 'e')), 50);
    });
    const { text } = await relayThrough(dies, next, '"e"');
    expect(parseSse(text).events.map((e) => `${e.id}/${e.event}/${e.data.instance?.id ?? ''}`)).toEqual([
      '6/message/b',
      '7/message/c',
      '7/message/d',
      '8/message/e',
    ]);
  });

  it('a member found after the relay was closed is let go, not left streaming', async () => {
    const encoder = new TextEncoder();
    const first = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(encoder.encode(change(5, 'a')));
        c.error(new Error('reset'));
      },
    });
    let cancelled = false;
    const late = new ReadableStream<Uint8Array>({
      cancel() {
        cancelled = true;
      },
    });
    let answer: (u: { response: Response; address: string }) => void = () => undefined;
    let reopened: () => void = () => undefined;
    const asked = new Promise<void>((r) => {
      reopened = r;
    });
    const res = Object.assign(new EventEmitter(), {
      writableEnded: false,
      writeHead: () => undefined,
      write: () => true,
      end() {
        this.writableEnded = true;
      },
    });
    const relay = new WatchRelay({
      datacenter: 'dc-x',
      first: { response: new Response(first, { headers: { 'x-rollcall-revision': '4' } }), address: 'a' },
      after: null,
      res: res as unknown as ServerResponse,
      headers: {},
      logger: silentLogger(),
      reopen: () => {
        reopened();
        return new Promise((r) => {
          answer = r;
        });
      },
    });
    const running = relay.run();
    await asked;
    relay.close(); // the node is closing while a member is being asked
    answer({ response: new Response(late), address: 'b' });
    await running;
    expect(cancelled).toBe(true);
  });

  it('starts from the first answer revision when the caller gave none, and ends with a final frame', async () => {
    const first = await serve((_req, res) => {
      streamHead(res); // x-rollcall-revision: 4
      res.end();
    });
    let lastEventId: string | undefined;
    const next = await serve((req, res) => {
      lastEventId = req.headers['last-event-id'] as string | undefined;
      streamHead(res);
      res.write(change(5, 'a'));
      res.end('event: compacted\ndata: {"revision":9,"compactRevision":3}\n\n');
    });
    const { text } = await relayThrough(first, next, 'compacted');
    expect(lastEventId).toBe('4');
    expect(parseSse(text).events.map((e) => e.event)).toEqual(['message', 'compacted']);
  });
});
