/**
 * Watches on a real 3-node cluster (separate processes, LevelDB, loopback): a follower
 * streams every change made through the leader in revision order; resumes by fromRevision
 * and Last-Event-ID miss nothing and repeat nothing, also while writes keep coming; a
 * resume point the node no longer holds gets `compacted`; a watcher that stops reading is
 * cut with its resume point while the node's watch buffers stay bounded, also while it
 * catches up from far back.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, type LocalNode } from '../scripts/local-cluster.js';
import { HttpWatcher, parseSse, type SseEvent } from './api-sse.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const BUFFER_BOUND = 64 * 1024;
let cluster: LocalCluster;
let leader: LocalNode;
let follower: LocalNode;
const watchers: HttpWatcher[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'warn',
    extraArgs: ['--watch-buffer-bytes', String(BUFFER_BOUND), '--watch-progress-ms', '300'],
  });
  const id = await waitForLeader(cluster.nodes.map((n) => n.url));
  leader = cluster.node(id);
  follower = cluster.nodes.find((n) => n.id !== id)!;
});
afterAll(async () => {
  for (const w of watchers) w.close();
  await cluster?.close();
});

async function watch(node: LocalNode, query: string, headers: Record<string, string> = {}): Promise<HttpWatcher> {
  const w = await HttpWatcher.open(`${node.url}/v1/watch${query}`, headers);
  watchers.push(w);
  return w;
}

const ids = (events: readonly SseEvent[]) => events.map((e) => Number(e.id));
const range = (from: number, revisions: readonly number[]) => revisions.filter((r) => r >= from);

/** Registers `n` instances in ns/svc through `node`, one after another; returns the revisions. */
async function writes(node: LocalNode, ns: string, svc: string, n: number, tag: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await register(node.url, ns, svc, `${tag}-${i}`, {
      address: `10.1.0.${i % 250}`,
      port: 1000 + i,
      cluster: i % 2 ? 'a' : 'b',
    });
    expect(res.status).toBe(200);
    out.push(res.body.revision as number);
  }
  return out;
}

describe('watch on a real cluster', () => {
  it('streams every change made through the leader to a follower, in revision order, per filter', async () => {
    const all = await watch(follower, '?namespace=w1');
    const svc = await watch(follower, '?namespace=w1&service=orders');
    const clusterA = await watch(follower, '?namespace=w1&service=orders&cluster=a');
    const other = await watch(follower, '?namespace=elsewhere');
    expect(all.status).toBe(200);
    const orders = await writes(leader, 'w1', 'orders', 12, 'o');
    const payments = await writes(leader, 'w1', 'payments', 4, 'p');
    const patched = await http(
      'PATCH',
      `${leader.url}/v1/namespaces/w1/services/orders/instances/o-1`,
      { weight: 3 },
      { 'if-match': '1' },
    );
    expect(patched.status).toBe(200);
    const removed = await http('DELETE', `${leader.url}/v1/namespaces/w1/services/orders/instances/o-2`);
    const expected = [...orders, ...payments, patched.body.revision as number, removed.body.revision as number];
    await all.until('every change on the follower', (w) => w.changes().length >= expected.length);
    expect(ids(all.changes())).toEqual(expected);
    expect(all.changes().at(-2)!.data).toMatchObject({
      type: 'put',
      instance: { id: 'o-1', weight: 3 },
      previous: { weight: 100 },
      cause: 'update',
    });
    expect(all.changes().at(-1)!.data).toMatchObject({ type: 'delete', instance: { id: 'o-2' }, cause: 'unregister' });
    await svc.until('the orders changes', (w) => w.changes().length >= orders.length + 2);
    expect(ids(svc.changes())).toEqual([...orders, expected.at(-2)!, expected.at(-1)!]);
    await clusterA.until('cluster a changes', (w) => w.changes().length >= 7);
    expect(clusterA.changes().every((e) => e.data.instance.cluster === 'a')).toBe(true);
    // An idle stream gets progress carrying the current revision; the other namespace saw no change.
    await other.until('a progress event', (w) =>
      w.events.some((e) => e.event === 'progress' && e.data.revision >= expected.at(-1)!),
    );
    expect(other.changes()).toHaveLength(0);
  });

  it('resumes by fromRevision and Last-Event-ID with no gap and no duplicate, also while writes continue', async () => {
    const before = await writes(leader, 'w2', 'svc', 10, 'a');
    const from = before[4]!;
    // Writes keep coming while the resumed watches switch from history to live events.
    let stop = false;
    const during: number[] = [];
    const writer = (async () => {
      for (let i = 0; !stop && i < 200; i++) {
        const res = await register(leader.url, 'w2', 'svc', `b-${i}`, { address: '10.2.0.1', port: 2000 + i });
        during.push(res.body.revision as number);
      }
    })();
    await waitFor('some concurrent writes', () => during.length >= 3);
    const byFrom = await watch(follower, `?namespace=w2&fromRevision=${from}`);
    const byLastId = await watch(cluster.nodes.find((n) => n !== follower && n !== leader)!, '?namespace=w2', {
      'last-event-id': String(from),
    });
    await waitFor('more concurrent writes', () => during.length >= 15);
    stop = true;
    await writer;
    const after = await writes(leader, 'w2', 'svc', 3, 'c');
    const revisions = [...before, ...during, ...after];
    await byFrom.until('all changes from fromRevision', (w) => w.changes().length >= range(from, revisions).length);
    expect(ids(byFrom.changes())).toEqual(range(from, revisions));
    await byLastId.until(
      'all changes after Last-Event-ID',
      (w) => w.changes().length >= range(from + 1, revisions).length,
    );
    expect(ids(byLastId.changes())).toEqual(range(from + 1, revisions));
  });

  it('answers a resume point the node no longer holds with compacted, then ends the stream', async () => {
    await writes(leader, 'w3', 'svc', 3, 'x');
    // A restarted node starts its history at the revision it loaded: older points are gone there.
    const node = cluster.nodes.find((n) => n !== leader)!;
    await cluster.kill(node.id);
    await cluster.restart(node.id);
    const rev = (await writes(leader, 'w3', 'svc', 1, 'y'))[0]!;
    await waitFor(
      'the restarted node to catch up',
      async () =>
        (await http('GET', `${node.url}/v1/namespaces/w3/services/svc/instances?minRevision=${rev}`)).status === 200,
    );
    const old = await watch(node, '?namespace=w3&fromRevision=1');
    await old.until('the stream to end', (w) => w.ended);
    expect(old.events).toHaveLength(1);
    expect(old.events[0]).toMatchObject({
      event: 'compacted',
      data: { revision: expect.any(Number), compactRevision: expect.any(Number) },
    });
    expect(old.events[0]!.data.revision).toBeGreaterThanOrEqual(rev);
    expect(old.events[0]!.id).toBeUndefined();
    // The client re-lists, then watches from the listed revision + 1: nothing is missed.
    const listed = await http('GET', `${node.url}/v1/namespaces/w3/services/svc/instances`);
    const again = await watch(node, `?namespace=w3&fromRevision=${listed.body.revision + 1}`);
    const next = await writes(leader, 'w3', 'svc', 2, 'z');
    await again.until('the changes after the re-list', (w) => w.changes().length >= 2);
    expect(ids(again.changes())).toEqual(next);
  });

  it("cuts a watcher that stops reading with its resume point, keeping the node's watch buffers bounded", async () => {
    const target = follower;
    const stalled = await stalledWatch(target, '/v1/watch?namespace=big');
    const metric = async (name: string) => metricValue(await http('GET', `${target.url}/metrics`), name);
    const overflowsBefore = await metric('rollcall_watch_overflows_total');
    // ~195 KB per event: a few MB fill the kernel buffers, then the node's own bound trips.
    const blob = Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`k${i}`, 'v'.repeat(4000)]));
    const revisions: number[] = [];
    let maxBuffered = 0;
    for (let batch = 0; batch < 50 && (await metric('rollcall_watch_overflows_total')) === overflowsBefore; batch++) {
      const results = await Promise.all(
        [0, 1, 2, 3].map((j) =>
          register(leader.url, 'big', 'svc', `i${batch}-${j}`, { address: '10.9.0.1', port: 1, metadata: blob }),
        ),
      );
      for (const res of results) {
        expect(res.status).toBe(200);
        revisions.push(res.body.revision);
      }
      await http('GET', `${target.url}/v1/namespaces/big/services/svc/instances?minRevision=${Math.max(...revisions)}`);
      maxBuffered = Math.max(maxBuffered, await metric('rollcall_watch_buffered_bytes'));
    }
    revisions.sort((a, b) => a - b);
    expect(await metric('rollcall_watch_overflows_total')).toBe(overflowsBefore + 1);
    // Never more than the bound plus the events of one notice (up to the 4 writes of a batch) held for it.
    expect(maxBuffered).toBeLessThan(BUFFER_BOUND + 4 * 200_000);
    // Once cut, nothing more is queued for it however much more happens.
    const held = await metric('rollcall_watch_buffered_bytes');
    for (let i = 0; i < 5; i++) {
      const res = await register(leader.url, 'big', 'svc', `after${i}`, {
        address: '10.9.0.1',
        port: 1,
        metadata: blob,
      });
      revisions.push(res.body.revision);
    }
    await http('GET', `${target.url}/v1/namespaces/big/services/svc/instances?minRevision=${Math.max(...revisions)}`);
    expect(await metric('rollcall_watch_buffered_bytes')).toBe(held);
    expect(await metric('process_resident_memory_bytes')).toBeLessThan(512 * 1024 * 1024);

    // The client finally reads: everything up to the cut, then the overflow event, then the end.
    const events = await stalled.readToEnd();
    const changes = events.filter((e) => e.event === 'message');
    const last = events.at(-1)!;
    expect(last.event).toBe('overflow');
    expect(ids(changes)).toEqual(revisions.slice(0, changes.length));
    expect(last.data.fromRevision).toBe(Number(changes.at(-1)!.id) + 1);
    await waitFor('the cut stream to be gone', async () => (await metric('rollcall_watch_buffered_bytes')) === 0);

    // Resuming where it says loses nothing.
    const resumed = await watch(target, `?namespace=big&fromRevision=${last.data.fromRevision}`);
    const missing = revisions.filter((r) => r >= last.data.fromRevision);
    await resumed.until('the rest', (w) => w.changes().length >= missing.length);
    expect(ids(resumed.changes()).slice(0, missing.length)).toEqual(missing);
  });

  it('cuts a watcher that stops reading while it catches up from far back, like a live one', async () => {
    // Issue 22 item 4: it used to stay in catch-up for ever, never reached by the cut.
    const target = follower;
    const metric = async (name: string) => metricValue(await http('GET', `${target.url}/metrics`), name);
    const blob = Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`k${i}`, 'v'.repeat(4000)]));
    const bigWrites = async (tag: string, n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i += 4) {
        const results = await Promise.all(
          [0, 1, 2, 3].map((j) =>
            register(leader.url, 'cu', 'svc', `${tag}${i + j}`, { address: '10.9.0.2', port: 1, metadata: blob }),
          ),
        );
        for (const res of results) {
          expect(res.status).toBe(200);
          out.push(res.body.revision as number);
        }
      }
      await http('GET', `${target.url}/v1/namespaces/cu/services/svc/instances?minRevision=${Math.max(...out)}`);
      return out.sort((a, b) => a - b);
    };
    // ~12 MB of history: more than the kernel takes from a client that does not read.
    const old = await bigWrites('old', 60);
    const overflowsBefore = await metric('rollcall_watch_overflows_total');
    const stalled = await stalledWatch(target, `/v1/watch?namespace=cu&fromRevision=${old[0]}`);
    let quiet = 0;
    await waitFor('the catch-up to stall on the unread socket', async () => {
      const stalledNow =
        (await metric('rollcall_watchers{state="catchup"}')) === 1 &&
        (await metric('rollcall_watch_buffered_bytes')) > 0;
      quiet = stalledNow ? quiet + 1 : 0;
      return quiet >= 3;
    });
    // Changes keep coming: the stalled catch-up is cut once they pass the budget.
    const added: number[] = [];
    for (let i = 0; i < 10 && (await metric('rollcall_watch_overflows_total')) === overflowsBefore; i++) {
      added.push(...(await bigWrites(`new${i}-`, 4)));
      expect(await metric('rollcall_watch_buffered_bytes')).toBeLessThan(BUFFER_BOUND + 200_000);
    }
    await waitFor('the cut', async () => (await metric('rollcall_watch_overflows_total')) === overflowsBefore + 1);
    expect(await metric('rollcall_watchers{state="catchup"}')).toBe(0);

    const revisions = [...old, ...added];
    const events = await stalled.readToEnd();
    const changes = events.filter((e) => e.event === 'message');
    const last = events.at(-1)!;
    expect(last.event).toBe('overflow');
    expect(changes.length).toBeGreaterThan(0);
    expect(ids(changes)).toEqual(revisions.slice(0, changes.length));
    expect(last.data.fromRevision).toBe(Number(changes.at(-1)!.id) + 1);
    const resumed = await watch(target, `?namespace=cu&fromRevision=${last.data.fromRevision}`);
    const missing = revisions.filter((r) => r >= last.data.fromRevision);
    await resumed.until('the rest', (w) => w.changes().length >= missing.length);
    expect(ids(resumed.changes()).slice(0, missing.length)).toEqual(missing);
  });
});

function metricValue(res: { body: unknown }, name: string): number {
  const line = String(res.body)
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no metric ${name}`);
  return Number(line.slice(name.length + 1));
}

/** A raw TCP client that sends a watch request and then does not read at all. */
async function stalledWatch(node: LocalNode, path: string): Promise<{ readToEnd(): Promise<SseEvent[]> }> {
  const socket: Socket = connect(node.httpPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  return {
    readToEnd: () =>
      new Promise((resolve, reject) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.once('error', reject);
        socket.once('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const head = raw.indexOf('\r\n\r\n');
          expect(raw.slice(0, head)).toMatch(/^HTTP\/1\.1 200/);
          resolve(parseSse(dechunk(raw.slice(head + 4))).events);
          socket.destroy();
        });
        socket.resume();
      }),
  };
}

/** Decodes an HTTP/1.1 chunked body. */
function dechunk(body: string): string {
  const buf = Buffer.from(body, 'utf8');
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) break;
    const size = parseInt(buf.subarray(i, eol).toString('latin1'), 16);
    if (!(size > 0)) break;
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
  return Buffer.concat(out).toString('utf8');
}
