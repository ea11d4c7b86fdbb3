/**
 * The SDK against a real 3-node cluster (separate `rollcall server` processes, LevelDB,
 * loopback): registrations through a leader kill, expiry after the client process dies,
 * close() deregisters, a watch across a kill -9 of its node, discovery with routing and
 * push-empty protection, and a consumer started with every node down.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { RollcallClient, type WatchEvent } from '../src/client/index.js';
import { seeded } from './client-helpers.js';
import { waitFor, waitForLeader } from './helpers/http.js';

const SDK_URL = pathToFileURL(path.resolve('dist/src/index.js')).href;

let cluster: LocalCluster;
let urls: string[];
let snapshotDir: string;
const clients: RollcallClient[] = [];

function client(options: Partial<ConstructorParameters<typeof RollcallClient>[0]> = {}, seed = 1): RollcallClient {
  const c = new RollcallClient({
    endpoints: urls,
    random: seeded(seed),
    requestTimeoutMs: 15_000,
    attemptTimeoutMs: 2_000,
    ...options,
  });
  clients.push(c);
  return c;
}

const urlOf = (id: string) => cluster.node(id).url;
const running = () => cluster.running().map((n) => n.url);

/** Runs a watch in the background, keeping what it yields. */
function record(it: AsyncIterable<WatchEvent>) {
  const events: { at: number; ev: WatchEvent }[] = [];
  const done = (async () => {
    for await (const ev of it) events.push({ at: Date.now(), ev });
  })().catch((e: unknown) => e);
  return { events, done };
}

beforeAll(async () => {
  snapshotDir = await mkdtemp(path.join(tmpdir(), 'rollcall-client-snap-'));
  cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
  urls = cluster.nodes.map((n) => n.url);
  await waitForLeader(urls);
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.close()));
  await cluster?.close();
  if (snapshotDir) await rm(snapshotDir, { recursive: true, force: true });
});

describe('registrations', () => {
  it('survive a kill -9 of the leader without expiring', async () => {
    const consumer = client({}, 2);
    const watch = record(consumer.watch({ namespace: 'prod', service: 'survive', initial: true }));
    const provider = client({}, 3);
    const ttlMs = 3000;
    const reg = await provider.register({
      namespace: 'prod',
      service: 'survive',
      id: 's1',
      address: '10.0.0.1',
      port: 9000,
      ttlMs,
    });
    expect(reg.instance).toMatchObject({ id: 's1', ephemeral: true });

    const leader = await waitForLeader(urls);
    const killedAt = Date.now();
    await cluster.kill(leader);
    // Keepalives go on through the election and well past one TTL after the kill.
    await waitFor(
      'keepalives to continue for a full TTL after the kill',
      () => reg.lastKeepaliveAt > killedAt + ttlMs,
      20_000,
    );
    const { instance } = await provider.get({ namespace: 'prod', service: 'survive', id: 's1' });
    expect(instance?.sessionId).toBe(reg.sessionId);
    expect(reg.reregistrations).toBe(0);
    expect(watch.events.filter((e) => e.ev.type === 'delete')).toEqual([]);

    await cluster.restart(leader);
    await reg.close();
    await consumer.close();
  });

  it('expire after their TTL when the client process is killed', async () => {
    const ttlMs = 2000;
    const consumer = client({}, 4);
    const watch = record(consumer.watch({ namespace: 'prod', service: 'orphan', initial: true }));
    const script = `
      import { RollcallClient } from ${JSON.stringify(SDK_URL)};
      const c = new RollcallClient({ endpoints: ${JSON.stringify(urls)} });
      const reg = await c.register({ namespace: 'prod', service: 'orphan', id: 'o1', address: '10.0.0.9', port: 1, ttlMs: ${ttlMs} });
      process.stdout.write('registered ' + reg.sessionId + '\\n');
      setInterval(() => {}, 1 << 30);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          if (out.includes('\n')) resolve(out.trim());
        });
        child.once('exit', (code) => reject(new Error(`child exited early (${code})`)));
      });
      expect(line).toMatch(/^registered s-/);
      await waitFor(
        'the consumer to see o1',
        () =>
          watch.events.some((e) => e.ev.type === 'reset' && e.ev.instances.some((i) => i.id === 'o1')) ||
          watch.events.some((e) => e.ev.type === 'put'),
      );
    } finally {
      child.kill('SIGKILL');
    }
    const killedAt = Date.now();
    const gone = await waitFor(
      'o1 to expire',
      () => watch.events.find((e) => e.ev.type === 'delete' && e.ev.instance.id === 'o1'),
      15_000,
    );
    const after = gone.at - killedAt;
    // The last keepalive was at most ttl/3 (+10 % jitter) before the kill.
    expect(after).toBeGreaterThanOrEqual(ttlMs - ttlMs * 0.4);
    expect(after).toBeLessThan(ttlMs + 5000);
    expect((await consumer.get({ namespace: 'prod', service: 'orphan', id: 'o1' })).instance).toBeNull();
    await consumer.close();
  });

  it('re-register when the registry lost the session, and report health', async () => {
    const provider = client({}, 16);
    const admin = client({}, 17);
    const reg = await provider.register({
      namespace: 'prod',
      service: 'lost',
      id: 'l1',
      address: '10.0.0.1',
      port: 1,
      ttlMs: 1500,
    });
    const events: string[] = [];
    reg.on('lost', (i) => events.push(`lost:${i.reason}`));
    reg.on('restored', () => events.push('restored'));
    const first = reg.sessionId!;
    await admin.closeSession(first); // as if it had expired during a long pause
    expect((await admin.get({ namespace: 'prod', service: 'lost', id: 'l1' })).instance).toBeNull();
    await waitFor('the registration to come back', () => reg.reregistrations === 1);
    expect(events).toEqual(['lost:expired', 'restored']);
    expect(reg.sessionId).not.toBe(first);
    expect((await admin.get({ namespace: 'prod', service: 'lost', id: 'l1' })).instance?.sessionId).toBe(reg.sessionId);

    await reg.reportHealth(false); // out of rotation, still registered
    expect((await admin.list({ namespace: 'prod', service: 'lost' })).instances).toEqual([]);
    expect(
      (await admin.list({ namespace: 'prod', service: 'lost', includeDisabled: true })).instances.map((i) => i.id),
    ).toEqual(['l1']);
    await reg.reportHealth(true);
    expect((await admin.list({ namespace: 'prod', service: 'lost' })).instances.map((i) => i.id)).toEqual(['l1']);
    await reg.close();
  });

  it('are removed by close(): registration.close() and client.close()', async () => {
    const c = client({}, 5);
    const checker = client({}, 6);
    const ephemeral = await c.register({
      namespace: 'prod',
      service: 'bye',
      id: 'e1',
      address: '10.0.0.1',
      port: 1,
      ttlMs: 10_000,
    });
    const persistent = await c.register({ namespace: 'prod', service: 'bye', id: 'p1', address: '10.0.0.2', port: 2 });
    expect(persistent.instance.ephemeral).toBe(false);
    const get = (id: string) => checker.get({ namespace: 'prod', service: 'bye', id }).then((r) => r.instance);
    expect(await get('e1')).not.toBeNull();
    await ephemeral.close();
    expect(await get('e1')).toBeNull(); // gone at once, not after the TTL
    expect(await get('p1')).not.toBeNull();
    const again = await c.register({
      namespace: 'prod',
      service: 'bye',
      id: 'e2',
      address: '10.0.0.3',
      port: 3,
      ttlMs: 10_000,
    });
    expect(again.closed).toBe(false);
    await c.close(); // deregisters what is still open
    expect(await get('p1')).toBeNull();
    expect(await get('e2')).toBeNull();
    expect(persistent.closed && again.closed).toBe(true);
  });
});

describe('watch', () => {
  it('resumes across a kill -9 of the node it is connected to, with no gap and no duplicate', async () => {
    const leader = await waitForLeader(urls);
    // Connect the watch to the leader: its death also makes the writer fail over.
    const watcher = client({ endpoints: [urlOf(leader), ...urls.filter((u) => u !== urlOf(leader))] }, 7);
    const writer = client({}, 8);
    const w = watcher.watch({ namespace: 'prod', service: 'stream', initial: true });
    const seen = record(w);
    await waitFor('the watch to start', () => seen.events.length > 0);
    const acked: number[] = [];
    const write = async (i: number) =>
      acked.push(
        (
          await writer.putInstance({
            namespace: 'prod',
            service: 'stream',
            id: `w${i}`,
            address: '10.0.1.1',
            port: 1000 + i,
          })
        ).revision,
      );
    for (let i = 0; i < 10; i++) await write(i);
    await waitFor('the watch to catch up', () => seen.events.filter((e) => e.ev.type === 'put').length === 10);
    expect(w.node).toBe(leader);

    await cluster.kill(leader);
    for (let i = 10; i < 30; i++) await write(i);
    const changes = () => seen.events.map((e) => e.ev).filter((e) => e.type === 'put' || e.type === 'delete');
    await waitFor('every acknowledged write to arrive', () => changes().length >= 30, 20_000);
    expect(changes().map((e) => e.revision)).toEqual(acked); // in order, none missing, none twice
    expect(seen.events.filter((e) => e.ev.type === 'reset')).toHaveLength(1); // the initial list only
    expect(w.reconnects).toBeGreaterThanOrEqual(1);
    expect(w.node).not.toBe(leader);
    w.close();
    await cluster.restart(leader);
  });
});

describe('discovery', () => {
  it('routes, balances and protects against an empty push, kept current by the watch', async () => {
    const provider = client({}, 9);
    const put = (id: string, cluster: string, weight = 100) =>
      provider.putInstance({
        namespace: 'prod',
        service: 'pay',
        id,
        cluster,
        address: `10.0.2.${id.length}`,
        port: 80,
        weight,
      });
    await put('v1', 'vip');
    await put('d1', 'default', 300);
    await put('d2', 'default', 100);
    const vipConsumer = client({ routing: { consumerCluster: 'vip' } }, 10);
    const plain = client({}, 11);
    expect((await vipConsumer.discover({ namespace: 'prod', service: 'pay' })).instances.map((i) => i.id)).toEqual([
      'v1',
    ]);
    const r = await plain.discover({ namespace: 'prod', service: 'pay' });
    expect(r).toMatchObject({ fromSnapshot: false, emptyProtected: false });
    expect(r.instances.map((i) => i.id)).toEqual(['d1', 'd2']);

    const lb = plain.balancer({ namespace: 'prod', service: 'pay', picker: 'weighted' });
    const picks = await Promise.all(Array.from({ length: 8 }, () => lb.call(async (i) => i.id)));
    expect(picks.filter((p) => p === 'd1')).toHaveLength(6);

    // Changes arrive through the watch; removing every ordinary instance is held back.
    await put('d3', 'default');
    await waitFor(
      'd3 in the cache',
      async () => (await plain.discover({ namespace: 'prod', service: 'pay' })).instances.length === 3,
    );
    for (const id of ['d1', 'd2', 'd3', 'v1']) await provider.deregister({ namespace: 'prod', service: 'pay', id });
    const held = await waitFor('the empty push to be held back', async () => {
      const d = await plain.discover({ namespace: 'prod', service: 'pay' });
      return d.emptyProtected ? d : undefined;
    });
    expect(held.instances.map((i) => i.id)).toEqual(['d1', 'd2', 'd3']);
    await put('d4', 'default');
    await waitFor(
      'the hold to lift',
      async () =>
        (await plain.discover({ namespace: 'prod', service: 'pay' })).instances.map((i) => i.id).join() === 'd4',
    );
  });

  it('serves from the disk snapshot when started with every node down, says so, and goes live when they return', async () => {
    const provider = client({}, 12);
    for (const id of ['a', 'b', 'c'])
      await provider.putInstance({ namespace: 'prod', service: 'cart', id, address: '10.0.3.1', port: 80 });
    const first = client({ snapshotDir }, 13);
    expect((await first.discover({ namespace: 'prod', service: 'cart' })).instances).toHaveLength(3);
    await first.close(); // writes the snapshot one last time
    await provider.close();

    for (const n of cluster.nodes) await cluster.kill(n.id);
    const cold = client({ snapshotDir, attemptTimeoutMs: 500 }, 14);
    const t0 = Date.now();
    const d = await cold.discover({ namespace: 'prod', service: 'cart' });
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(d.fromSnapshot).toBe(true);
    expect(d.connected).toBe(false);
    expect(d.snapshotAgeMs).toBeGreaterThanOrEqual(0);
    expect(d.snapshotAgeMs).toBeLessThan(60_000);
    expect(d.instances.map((i) => i.id)).toEqual(['a', 'b', 'c']);
    await expect(cold.discover({ namespace: 'prod', service: 'never-seen', timeoutMs: 300 })).rejects.toThrow(
      /no snapshot/,
    );

    await Promise.all(cluster.nodes.map((n) => cluster.restart(n.id)));
    await waitForLeader(running());
    await waitFor(
      'the consumer to go live',
      async () => !(await cold.discover({ namespace: 'prod', service: 'cart' })).fromSnapshot,
      20_000,
    );
    const writer = client({}, 15);
    await writer.putInstance({ namespace: 'prod', service: 'cart', id: 'd', address: '10.0.3.2', port: 80 });
    await waitFor(
      'the new instance',
      async () => (await cold.discover({ namespace: 'prod', service: 'cart' })).instances.length === 4,
    );
  });
});
