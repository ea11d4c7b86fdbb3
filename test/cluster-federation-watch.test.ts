/**
 * A watch across datacenters survives the remote node it went through (issue 18), with real
 * processes on loopback: dc-a of three nodes, dc-c of one that joins it, gossiping every
 * 200 ms. A watch opened on dc-c with `?dc=dc-a` is relayed from dc-a's leader (the first
 * member of the route); that node is killed with kill -9 while instances are registered in
 * dc-a, and the one stream dc-c's client holds goes on: every change of dc-a reaches it
 * once, in revision order, exactly as a watch opened on a surviving dc-a node sees them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { parseSse, type SseEvent } from './api-sse.js';
import { federationArgs } from './helpers/federation.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const SECRET = 'federation-watch-secret';
const ROUND_MS = 200;

let a: LocalCluster;
let c: LocalCluster;
const logs: string[] = [];

const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: ROUND_MS });

interface Federation {
  datacenters: { name: string; status: string; leader: string | null; members: { id: string; status: string }[] }[];
}

/** One SSE stream read as it comes: its events so far, and whether it has ended. */
class StreamReader {
  readonly events: SseEvent[] = [];
  ended = false;
  private text = '';

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {
    void this.pump();
  }

  changes(): { id: string; type: string; instance: string }[] {
    return this.events
      .filter((e) => e.event === 'message')
      .map((e) => ({ id: e.id ?? '', type: e.data.type, instance: e.data.instance.id }));
  }

  has(instance: string): boolean {
    return this.changes().some((e) => e.instance === instance);
  }

  private async pump(): Promise<void> {
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { value, done } = await this.reader.read();
        if (done) break;
        const parsed = parseSse(this.text + decoder.decode(value, { stream: true }));
        this.events.push(...parsed.events);
        this.text = parsed.rest;
      }
    } catch {
      // Aborted by the test, or cut: `ended` says so either way.
    }
    this.ended = true;
  }
}

async function openWatch(url: string, abort: AbortController): Promise<{ res: Response; stream: StreamReader }> {
  const res = await fetch(url, { signal: abort.signal });
  return { res, stream: new StreamReader(res.body!.getReader()) };
}

beforeAll(async () => {
  const onLog = (dc: string) => (id: string, line: string) => logs.push(`${dc}/${id} ${line}`);
  a = await LocalCluster.start({ size: 3, extraArgs: dcArgs('dc-a'), onLog: onLog('dc-a'), logLevel: 'info' });
  c = await LocalCluster.start({
    size: 1,
    extraArgs: dcArgs('dc-c', [a.nodes[0]!.url]),
    onLog: onLog('dc-c'),
    logLevel: 'info',
  });
  await Promise.all([
    waitForLeader(
      a.nodes.map((n) => n.url),
      60_000,
    ),
    waitForLeader([c.nodes[0]!.url], 60_000),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.close(), c?.close()]);
});

describe('a watch across datacenters', () => {
  it('resumes on another member when the remote node it used is killed: nothing lost or repeated', async () => {
    const leader = await waitForLeader(
      a.nodes.map((n) => n.url),
      30_000,
    );
    // dc-c must know dc-a's three members and its leader, so the route starts at the leader.
    await waitFor(
      "dc-c knows dc-a's members and leader",
      async () => {
        const f = (await http<Federation>('GET', `${c.nodes[0]!.url}/v1/federation`, undefined, {}, 2000)).body;
        const d = f.datacenters.find((x) => x.name === 'dc-a');
        return (
          d?.status === 'alive' && d.leader === leader && d.members.filter((m) => m.status === 'alive').length === 3
        );
      },
      30_000,
    );
    const survivor = a.nodes.find((n) => n.id !== leader)!;
    const killed = a.node(leader);
    for (const id of ['w1', 'w2', 'w3'])
      expect((await register(survivor.url, 'prod', 'web', id, { address: '10.1.0.1', port: 80 })).status).toBe(200);

    const abort = new AbortController();
    const relayed = await openWatch(
      `${c.nodes[0]!.url}/v1/watch?namespace=prod&service=web&fromRevision=1&dc=dc-a`,
      abort,
    );
    expect(relayed.res.status).toBe(200);
    expect(relayed.res.headers.get('x-rollcall-datacenter')).toBe('dc-a');
    await waitFor('the relayed watch has the history', async () => relayed.stream.has('w3'), 10_000);

    // Writes go on in dc-a (through the members that stay) while the node the watch used dies.
    const writes = (async () => {
      for (let k = 4; k <= 12; k++) {
        if (k === 6) await a.kill(killed.id);
        await waitFor(
          `w${k} registered in dc-a`,
          async () => {
            const r = await register(
              survivor.url,
              'prod',
              'web',
              `w${k}`,
              { address: '10.1.0.1', port: 80 },
              {
                'x-rollcall-client-id': 'federation-watch-writer',
                'x-rollcall-seq': String(k),
              },
            ).catch(() => null);
            return r?.status === 200;
          },
          30_000,
        );
      }
    })();
    await writes;
    await waitFor('the relayed watch has every change', async () => relayed.stream.has('w12'), 20_000);
    expect(relayed.stream.ended).toBe(false);

    // The same changes, as a surviving dc-a node serves them directly.
    const directAbort = new AbortController();
    const direct = await openWatch(`${survivor.url}/v1/watch?namespace=prod&service=web&fromRevision=1`, directAbort);
    await waitFor('the direct watch has every change', async () => direct.stream.has('w12'), 10_000);
    const got = relayed.stream.changes();
    const want = direct.stream.changes().filter((e) => Number(e.id) <= Number(got.at(-1)!.id));
    expect(got).toEqual(want);
    expect(new Set(got.map((e) => `${e.id}/${e.instance}`)).size).toBe(got.length);
    expect(got.map((e) => e.instance)).toEqual(Array.from({ length: 12 }, (_, k) => `w${k + 1}`));
    // And it really did go through the killed node, then another.
    expect(
      logs.some((l) => l.startsWith('dc-c/') && l.includes('resuming on another member') && l.includes(killed.url)),
      logs.filter((l) => l.includes('watch')).join('\n'),
    ).toBe(true);
    abort.abort();
    directAbort.abort();
  }, 90_000);
});
