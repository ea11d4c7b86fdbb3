/**
 * Watch streams against scripted fake nodes: resume across a cut connection with no gap and
 * no repeat, re-list after `compacted`, resume after `overflow`, move on from a silent node,
 * and a clear error from a server without watch streams.
 */
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CompactedError,
  type Instance,
  RollcallClient,
  UnsupportedError,
  type WatchEvent,
} from '../src/client/index.js';
import { inst, seeded } from './client-helpers.js';
import { json, ScriptedHttpNode } from './scripted-http-node.js';

interface Change {
  readonly revision: number;
  readonly type: 'put' | 'delete';
  readonly instance: Instance;
}

/** One registry history shared by the fake nodes, with the watch route served from it. */
class FakeRegistry {
  readonly changes: Change[] = [];
  /** Streams open per node. */
  readonly streams = new Map<ScriptedHttpNode, Set<ServerResponse>>();
  floor = 1;
  /** A node that replays from revision 1 whatever it is asked (to test dropping repeats). */
  replayAll = new Set<ScriptedHttpNode>();
  silent = new Set<ScriptedHttpNode>();

  get revision(): number {
    return this.changes.at(-1)?.revision ?? 0;
  }

  state(): Instance[] {
    const m = new Map<string, Instance>();
    for (const c of this.changes) c.type === 'put' ? m.set(c.instance.id, c.instance) : m.delete(c.instance.id);
    return [...m.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  change(type: 'put' | 'delete', id: string): Change {
    const revision = this.revision + 1;
    const c: Change = { revision, type, instance: inst(id, { modRevision: revision }) };
    this.changes.push(c);
    for (const [node, set] of this.streams) if (!this.silent.has(node)) for (const res of set) res.write(frame(c));
    return c;
  }

  serve(node: ScriptedHttpNode): void {
    this.streams.set(node, new Set());
    node.handler = (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/v1/watch') {
        const from = Number(url.searchParams.get('fromRevision') ?? this.revision + 1);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-rollcall-node': node.id });
        res.write('retry: 2000\n\n');
        if (from < this.floor) {
          res.end(
            `event: compacted\ndata: ${JSON.stringify({ revision: this.revision, compactRevision: this.floor })}\n\n`,
          );
          return;
        }
        if (this.silent.has(node)) return; // headers, then nothing: a stalled node
        for (const c of this.changes) if (c.revision >= (this.replayAll.has(node) ? 1 : from)) res.write(frame(c));
        this.streams.get(node)!.add(res);
        res.on('close', () => this.streams.get(node)!.delete(res));
        return;
      }
      if (url.pathname.endsWith('/instances'))
        return json(res, 200, { revision: this.revision, serviceRevision: this.revision, instances: this.state() });
      if (url.pathname === '/v1/cluster') return json(res, 200, { leader: 'n1', revision: this.revision, members: [] });
      json(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: 'no route' } });
    };
  }
}

function frame(c: Change): string {
  return `id: ${c.revision}\ndata: ${JSON.stringify({ ...c, cause: 'register' })}\n\n`;
}

const nodes: ScriptedHttpNode[] = [];
const clients: RollcallClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(nodes.splice(0).map((n) => n.close()));
});

async function setup(count: number, opts: Partial<ConstructorParameters<typeof RollcallClient>[0]> = {}) {
  const reg = new FakeRegistry();
  const ns: ScriptedHttpNode[] = [];
  for (let i = 1; i <= count; i++) {
    const n = await ScriptedHttpNode.start(`n${i}`);
    nodes.push(n);
    reg.serve(n);
    ns.push(n);
  }
  const client = new RollcallClient({
    endpoints: ns.map((n) => n.url),
    random: seeded(3),
    attemptTimeoutMs: 500,
    requestTimeoutMs: 3000,
    ...opts,
  });
  clients.push(client);
  return { reg, nodes: ns, client };
}

/** Pulls events into an array as they come. */
function collect(it: AsyncIterable<WatchEvent>): { events: WatchEvent[]; done: Promise<unknown> } {
  const events: WatchEvent[] = [];
  const done = (async () => {
    for await (const e of it) events.push(e);
  })().catch((e: unknown) => e);
  return { events, done };
}

const revs = (events: WatchEvent[]) =>
  events.filter((e) => e.type === 'put' || e.type === 'delete').map((e) => e.revision);

describe('watch', () => {
  it('resumes on another node after its node drops, with no gap and no repeat', async () => {
    const {
      reg,
      nodes: [n1, n2],
      client,
    } = await setup(2);
    for (let i = 0; i < 3; i++) reg.change('put', `a${i}`);
    reg.replayAll.add(n2!); // n2 replays everything: the watch must drop what it has seen
    const w = client.watch({ namespace: 'prod', service: 'orders', fromRevision: 1 });
    const got = collect(w);
    await expect.poll(() => revs(got.events)).toEqual([1, 2, 3]);
    expect(w.node).toBe('n1');
    await n1!.close(); // the node dies: its sockets close, its port refuses
    for (let i = 3; i < 6; i++) reg.change('put', `a${i}`);
    await expect.poll(() => revs(got.events)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(w.node).toBe('n2');
    expect(w.reconnects).toBe(1);
    reg.change('delete', 'a0');
    await expect.poll(() => revs(got.events)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    w.close();
    expect(await got.done).toBeUndefined(); // finished cleanly
  });

  it('starts with the current state when asked (initial), then streams changes after it', async () => {
    const { reg, client } = await setup(1);
    reg.change('put', 'a');
    reg.change('put', 'b');
    const w = client.watch({ namespace: 'prod', service: 'orders', initial: true });
    const got = collect(w);
    await expect.poll(() => got.events.length).toBe(1);
    expect(got.events[0]).toMatchObject({ type: 'reset', revision: 2, reason: 'initial' });
    reg.change('delete', 'a');
    await expect.poll(() => revs(got.events)).toEqual([3]);
    w.close();
  });

  it('re-lists after compacted and continues from the listed revision', async () => {
    const { reg, client } = await setup(1);
    for (let i = 0; i < 5; i++) reg.change('put', `a${i}`);
    reg.floor = 4; // revisions 1..3 are gone
    const w = client.watch({ namespace: 'prod', service: 'orders', fromRevision: 2 });
    const got = collect(w);
    await expect.poll(() => got.events.length).toBe(1);
    expect(got.events[0]).toMatchObject({ type: 'reset', revision: 5, reason: 'compacted' });
    expect((got.events[0] as { instances: readonly Instance[] }).instances.map((i) => i.id)).toEqual([
      'a0',
      'a1',
      'a2',
      'a3',
      'a4',
    ]);
    reg.change('put', 'a5');
    await expect.poll(() => revs(got.events)).toEqual([6]);
    w.close();
  });

  it('a namespace-wide watch re-lists the namespace after compacted; a watch of everything fails with CompactedError', async () => {
    const { reg, client } = await setup(1);
    for (let i = 0; i < 3; i++) reg.change('put', `a${i}`);
    reg.floor = 3;
    const w = client.watch({ namespace: 'prod', fromRevision: 1 });
    const got = collect(w);
    await expect.poll(() => got.events.length).toBe(1);
    expect(got.events[0]).toMatchObject({ type: 'reset', revision: 3, reason: 'compacted' });
    reg.change('put', 'a3');
    await expect.poll(() => revs(got.events)).toEqual([4]);
    w.close();
    const all = collect(client.watch({ fromRevision: 1 }));
    expect(await all.done).toBeInstanceOf(CompactedError);
  });

  it('moves on from a node that goes silent (no bytes for idleTimeoutMs)', async () => {
    const {
      reg,
      nodes: [n1],
      client,
    } = await setup(2, { watchIdleTimeoutMs: 300 });
    reg.silent.add(n1!);
    const w = client.watch({ namespace: 'prod', service: 'orders', fromRevision: 1 });
    const got = collect(w);
    reg.change('put', 'a');
    await expect.poll(() => revs(got.events), { timeout: 3000 }).toEqual([1]);
    expect(w.node).toBe('n2');
    w.close();
  });

  it('resumes where an overflow cut says', async () => {
    const {
      reg,
      nodes: [n1],
      client,
    } = await setup(1);
    reg.change('put', 'a');
    const base = n1!.handler;
    let cuts = 0;
    n1!.handler = (req, res, node) => {
      if (req.url?.startsWith('/v1/watch') && cuts++ === 0) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`event: overflow\nid: 1\ndata: ${JSON.stringify({ revision: 1, fromRevision: 2 })}\n\n`);
        return;
      }
      return base(req, res, node);
    };
    const w = client.watch({ namespace: 'prod', service: 'orders', fromRevision: 1 });
    const got = collect(w);
    await expect.poll(() => w.reconnects).toBe(1);
    // The reconnect counts before its request reaches the server: wait for the request.
    await expect
      .poll(() =>
        n1!.seen
          .filter((s) => s.url.startsWith('/v1/watch'))
          .map((s) => new URL(s.url, 'http://x').searchParams.get('fromRevision')),
      )
      .toEqual(['1', '2']);
    reg.change('put', 'b');
    await expect.poll(() => revs(got.events)).toEqual([2]); // resumed at the cut's fromRevision, not before
    w.close();
  });

  it('says clearly when the server has no watch streams', async () => {
    const {
      nodes: [n1],
      client,
    } = await setup(1);
    n1!.handler = (_req, res) =>
      json(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: 'no route GET /v1/watch' } });
    const got = collect(client.watch({ namespace: 'prod', fromRevision: 1 }));
    const err = await got.done;
    expect(err).toBeInstanceOf(UnsupportedError);
    expect(String(err)).toMatch(/no GET \/v1\/watch/);
  });

  it('discover falls back to polling a server without watch streams', async () => {
    const {
      reg,
      nodes: [n1],
      client,
    } = await setup(1, { pollIntervalMs: 50 });
    reg.change('put', 'a');
    const base = n1!.handler;
    n1!.handler = (req, res, node) =>
      req.url?.startsWith('/v1/watch')
        ? json(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: 'no route' } })
        : base(req, res, node);
    expect((await client.discover({ namespace: 'prod', service: 'orders' })).instances.map((i) => i.id)).toEqual(['a']);
    reg.change('put', 'b');
    await expect
      .poll(async () => (await client.discover({ namespace: 'prod', service: 'orders' })).instances.length)
      .toBe(2);
  });

  it('close() finishes an iterator that is waiting for the next event', async () => {
    const { client } = await setup(1);
    const w = client.watch({ namespace: 'prod', service: 'orders', fromRevision: 1 });
    const got = collect(w);
    await expect.poll(() => w.node).toBe('n1');
    await client.close(); // closes the watch with the client
    expect(await got.done).toBeUndefined();
    expect(w.closed).toBe(true);
  });
});
