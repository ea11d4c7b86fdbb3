/**
 * Listings in pages (limit + continue, every page at the first page's revision), the cap
 * on unpaginated answers, and answers written in slices: in process (InMemoryNodeApi).
 * The cluster-level regression is test/cluster-listing-stall.test.ts.
 */
import { once } from 'node:events';
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../src/cli/commands/index.js';
import { list as listCommand } from '../src/cli/commands/instances.js';
import { RollcallClient } from '../src/client/index.js';
import type { Command, Instance } from '../src/registry/index.js';
import { encodeContinue, listingSignature } from '../src/server/listing/continue-token.js';
import { InstanceIndex } from '../src/server/listing/instance-index.js';
import { sliceStats } from '../src/server/listing/sliced-json.js';
import { INSTANCE_URL, type TestApp, testApp } from './api-helpers.js';
import { waitFor } from './helpers/wait.js';
import { json, ScriptedHttpNode } from './scripted-http-node.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const reg = (service: string, id: string, extra: Record<string, unknown> = {}): Command =>
  ({ type: 'register', namespace: 'prod', service, id, address: '10.0.0.1', port: 80, ...extra }) as Command;
const ids = (list: readonly { id: string }[]) => list.map((i) => i.id);

/** Every page of a listing from `url` (which has its own query) with `limit`. */
async function walk(url: string, limit: number): Promise<{ pages: any[]; revisions: Set<number> }> {
  const pages: any[] = [];
  let token: string | undefined;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const res = await t.req({
      method: 'GET',
      url: `${url}${sep}limit=${limit}${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
    });
    expect(res.status, res.text).toBe(200);
    pages.push(res.body);
    token = res.body.continue;
  } while (token !== undefined);
  return { pages, revisions: new Set(pages.map((p) => p.revision)) };
}

describe('pages (limit and continue)', () => {
  it("page a service list, every page read at the first page's revision while the registry changes", async () => {
    t = await testApp();
    // Neighbours on both sides, in key order: another namespace, services before and after.
    t.node.apply({ ...reg('orders', 'x1'), namespace: 'a' } as Command);
    t.node.apply(reg('billing', 'x2'));
    t.node.apply(reg('orders-eu', 'x3'));
    for (let i = 0; i < 25; i++)
      t.node.apply(reg('orders', `i${String(i).padStart(2, '0')}`, { cluster: i % 2 ? 'b' : 'a' }));
    const whole = await t.req({ method: 'GET', url: INSTANCE_URL });
    expect(whole.body.continue).toBeUndefined();
    const first = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=10` });
    expect(first.status).toBe(200);
    expect(first.body.instances).toHaveLength(10);
    expect(first.body.revision).toBe(whole.body.revision);
    expect(first.headers['x-rollcall-index']).toBe(String(whole.body.serviceRevision));
    expect(typeof first.body.continue).toBe('string');
    // After the first page: one not listed yet leaves, one changes, two arrive (one inside the range still to come).
    const later = (whole.body.instances as Instance[])[20]!;
    t.node.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: later.id } as Command);
    t.node.apply({
      type: 'update',
      namespace: 'prod',
      service: 'orders',
      id: 'i23',
      expectedVersion: 1,
      patch: { weight: 7 },
    } as Command);
    t.node.apply(reg('orders', 'i04x', { cluster: 'b' }));
    t.node.apply(reg('orders', 'zz', { cluster: 'z' }));
    const rest: Instance[] = [];
    let token = first.body.continue as string | undefined;
    while (token !== undefined) {
      const res = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=10&continue=${encodeURIComponent(token)}` });
      expect(res.status, res.text).toBe(200);
      expect(res.body.revision).toBe(whole.body.revision);
      expect(res.body.serviceRevision).toBe(whole.body.serviceRevision);
      expect(res.headers['x-rollcall-revision']).toBe(String(whole.body.revision));
      rest.push(...res.body.instances);
      token = res.body.continue;
    }
    // Exactly the list at that revision: what left is there, what changed is as it was, nothing new.
    expect([...first.body.instances, ...rest]).toEqual(whole.body.instances);
    const now = await t.req({ method: 'GET', url: INSTANCE_URL });
    expect(ids(now.body.instances)).toContain('zz');
    expect(ids(now.body.instances)).not.toContain(later.id);
  });

  it('page a namespace and /v1/services (summaries, and instances grouped by service) the same way', async () => {
    t = await testApp();
    for (const svc of ['a', 'b', 'c'])
      for (let i = 0; i < 4; i++) t.node.apply(reg(svc, `${svc}${i}`, { enabled: i !== 3 }));
    const ns = await t.req({ method: 'GET', url: '/v1/namespaces/prod/instances?includeDisabled=true' });
    const nsPages = await walk('/v1/namespaces/prod/instances?includeDisabled=true', 5);
    expect(nsPages.pages).toHaveLength(3);
    expect(nsPages.pages.flatMap((p) => p.instances)).toEqual(ns.body.instances);

    const summaries = await t.req({ method: 'GET', url: '/v1/services' });
    const sPages = await walk('/v1/services', 1);
    expect(sPages.pages.flatMap((p) => p.services)).toEqual(summaries.body.services);
    expect(summaries.body.services[0]).toEqual({
      namespace: 'prod',
      service: 'a',
      instanceCount: 4,
      revision: 4,
      health: { healthy: 3, subhealthy: 0, suspect: 0, down: 0, disabled: 1 },
    });

    for (const query of ['instances=true', 'instances=true&includeDisabled=false']) {
      const grouped = await t.req({ method: 'GET', url: `/v1/services?${query}` });
      const gPages = await walk(`/v1/services?${query}`, 5);
      // A service over a page boundary is on both pages, with the same summary: merge its instances.
      const merged = new Map<string, any>();
      for (const s of gPages.pages.flatMap((p) => p.services)) {
        const key = `${s.namespace}/${s.service}`;
        const seen = merged.get(key);
        if (seen === undefined) merged.set(key, { ...s, instances: [...s.instances] });
        else {
          expect({ ...s, instances: [] }).toEqual({ ...seen, instances: [] });
          seen.instances.push(...s.instances);
        }
      }
      expect([...merged.values()]).toEqual(grouped.body.services);
      expect(gPages.revisions).toEqual(new Set([grouped.body.revision]));
    }
  });

  it('summaries of later pages are as of the first page, for services that changed or emptied since', async () => {
    t = await testApp();
    for (const svc of ['a', 'b', 'c']) t.node.apply(reg(svc, `${svc}1`));
    const before = await t.req({ method: 'GET', url: '/v1/services?instances=true' });
    const first = await t.req({ method: 'GET', url: '/v1/services?instances=true&limit=1' });
    t.node.apply({ type: 'unregister', namespace: 'prod', service: 'b', id: 'b1' } as Command);
    t.node.apply(reg('c', 'c2'));
    t.node.apply(reg('bb', 'bb1'));
    const second = await t.req({
      method: 'GET',
      url: `/v1/services?instances=true&limit=5&continue=${encodeURIComponent(first.body.continue)}`,
    });
    expect([...first.body.services, ...second.body.services]).toEqual(before.body.services);
  });

  it("answer 410 COMPACTED once history no longer reaches the first page's revision, with a continue that goes on at the current one", async () => {
    t = await testApp({ historySize: 4 });
    for (let i = 0; i < 6; i++) t.node.apply(reg('orders', `o${i}`));
    const first = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=2` });
    for (let i = 0; i < 6; i++) t.node.apply(reg('orders', `p${i}`));
    const gone = await t.req({
      method: 'GET',
      url: `${INSTANCE_URL}?limit=2&continue=${encodeURIComponent(first.body.continue)}`,
    });
    expect(gone.status).toBe(410);
    expect(gone.body.error).toMatchObject({ code: 'COMPACTED', revision: 12 });
    const goOn = await t.req({
      method: 'GET',
      url: `${INSTANCE_URL}?limit=100&continue=${encodeURIComponent(gone.body.error.continue)}`,
    });
    expect(goOn.status).toBe(200);
    expect(goOn.body.revision).toBe(12);
    expect(ids(goOn.body.instances)).toEqual(['o2', 'o3', 'o4', 'o5', 'p0', 'p1', 'p2', 'p3', 'p4', 'p5']);
  });

  it("refuse a malformed token, another listing's token, and a blocking query with continue", async () => {
    t = await testApp();
    for (let i = 0; i < 3; i++) t.node.apply(reg('orders', `o${i}`));
    const first = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=1` });
    const token = encodeURIComponent(first.body.continue);
    for (const url of [
      `${INSTANCE_URL}?continue=not-a-token`,
      `${INSTANCE_URL}?health=healthy&continue=${token}`,
      `/v1/namespaces/prod/services/payments/instances?continue=${token}`,
      `/v1/namespaces/prod/instances?continue=${token}`,
    ]) {
      const res = await t.req({ method: 'GET', url });
      expect([res.status, res.body.error.code, res.body.error.field], url).toEqual([
        400,
        'INVALID_ARGUMENT',
        'continue',
      ]);
    }
    // A token altered to point before its listing does not read outside it.
    t.node.apply(reg('billing', 'b1'));
    t.node.apply({ ...reg('orders', 'n1'), namespace: 'a' } as Command);
    const listing = listingSignature('service', { ns: 'prod', svc: 'orders', includeDisabled: false, health: 'all' });
    const tampered = encodeContinue({ revision: first.body.revision, after: '', listing, serviceRevision: 3 });
    const res = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=10&continue=${tampered}` });
    expect([res.status, ids(res.body.instances)]).toEqual([200, ['o0', 'o1', 'o2']]);
    const blocking = await t.req({ method: 'GET', url: `${INSTANCE_URL}?index=3&continue=${token}` });
    expect([blocking.status, blocking.body.error.field]).toEqual([400, 'index']);
    expect((await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=0` })).status).toBe(400);
  });
});

describe('the cap on one answer', () => {
  it('refuses an unpaginated listing larger than the cap with LIMIT_EXCEEDED naming it, and serves it in pages', async () => {
    t = await testApp({ listMaxItems: 5 });
    for (let i = 0; i < 6; i++) t.node.apply(reg('orders', `o${i}`));
    for (const url of [INSTANCE_URL, '/v1/namespaces/prod/instances', '/v1/services?instances=true']) {
      const res = await t.req({ method: 'GET', url });
      expect(res.status, url).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'LIMIT_EXCEEDED', field: 'limit', limit: 5, count: 6 });
      expect(res.body.error.message).toMatch(/more than the 5 .*--list-max-items.*limit/);
    }
    // Filters count: five healthy instances fit; one service summary fits.
    t.node.apply({
      type: 'setHealth',
      term: 1,
      namespace: 'prod',
      service: 'orders',
      id: 'o0',
      health: 'down',
    } as Command);
    expect((await t.req({ method: 'GET', url: `${INSTANCE_URL}?health=healthy` })).body.instances).toHaveLength(5);
    expect((await t.req({ method: 'GET', url: '/v1/services' })).status).toBe(200);
    // A larger limit is served as the cap.
    const page = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=100000` });
    expect(page.body.instances).toHaveLength(5);
    expect(page.body.continue).toBeDefined();
  });
});

describe('answers written in slices', () => {
  it('a listing of 50,000 instances is written in short slices, never in one turn (one listing stalled the leader into an election)', async () => {
    t = await testApp();
    const meta: Record<string, string> = {};
    for (let k = 0; k < 12; k++) meta[`label-${k}`] = `value-${k}`;
    for (let i = 0; i < 50_000; i++)
      t.node.apply(reg(`svc-${i % 5}`, `i-${i}`, { cluster: i % 3 ? 'default' : 'vip', metadata: meta, tags: ['v1'] }));
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    // What the monitoring page asked for before it paginated (built and encoded in one turn,
    // 300-700 ms here): refused before anything is read.
    const unpaginated = await fetch(`${address}/v1/services?instances=true&consistency=serializable`);
    expect(unpaginated.status).toBe(400);
    expect(((await unpaginated.json()) as { error: { code: string } }).error.code).toBe('LIMIT_EXCEEDED');
    // The paginated walk that replaces it: every turn of listing work is short. (The client
    // shares this process, so the loop's own delay would measure its JSON parsing too.)
    sliceStats.reset();
    let token: string | undefined;
    let seen = 0;
    do {
      const res = await fetch(
        `${address}/v1/services?instances=true&consistency=serializable&limit=10000${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
      );
      const body = (await res.json()) as { services: { instances: unknown[] }[]; continue?: string };
      for (const s of body.services) seen += s.instances.length;
      token = body.continue;
    } while (token !== undefined);
    expect(seen).toBe(50_000);
    // Counted in keys, not milliseconds: a busy machine stretches a turn's wall-clock time
    // (test/cluster-listing-stall.test.ts measures the loop's delay on a real leader).
    expect(sliceStats.turns, JSON.stringify(sliceStats)).toBeGreaterThan(20);
    expect(sliceStats.mostKeysInTurn, JSON.stringify(sliceStats)).toBeLessThan(10_000);
  }, 120_000);

  it('releases its view of the registry when the client goes away mid-answer', async () => {
    t = await testApp();
    for (let i = 0; i < 20_000; i++) t.node.apply(reg('orders', `o${i}`, { metadata: { k: 'v'.repeat(200) } }));
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const index = InstanceIndex.live(t.node.registry)!;
    // node:http, so going away closes the connection (fetch may keep it and drain the rest).
    const req = http.get(`${address}${INSTANCE_URL}?limit=10000`);
    const [res] = (await once(req, 'response')) as [http.IncomingMessage];
    await once(res, 'data');
    expect(index.openViews).toBe(1);
    req.destroy();
    await waitFor('the view of the abandoned listing to be released', () => index.openViews === 0, 20_000, 10);
    const head = await fetch(`${address}${INSTANCE_URL}?limit=10000`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    await waitFor('the view of the HEAD listing to be released', () => index.openViews === 0, 20_000, 10);
  });
});

describe('encoded instances kept between listings', () => {
  it("a listing after a change carries the instance's new bytes, in a service list and grouped by service", async () => {
    t = await testApp();
    t.node.apply(reg('orders', 'o1', { tags: ['blue'], metadata: { zone: 'a' } }));
    t.node.apply(reg('orders', 'o2'));
    const item = (body: { instances: { id: string }[] }, id: string) =>
      JSON.stringify(body.instances.find((i) => i.id === id));
    const grouped = async () =>
      (await t.req({ method: 'GET', url: '/v1/services?instances=true' })).body.services[0] as {
        instances: { id: string }[];
      };
    const before = await t.req({ method: 'GET', url: INSTANCE_URL });
    expect(before.text).toBe(JSON.stringify(before.body));
    expect(item(await grouped(), 'o1')).toBe(item(before.body, 'o1'));
    // Listed twice unchanged: the same bytes.
    expect((await t.req({ method: 'GET', url: INSTANCE_URL })).text).toBe(before.text);

    t.node.apply({
      type: 'setHealth',
      term: 1,
      namespace: 'prod',
      service: 'orders',
      id: 'o1',
      health: 'down',
    } as Command);
    t.node.apply(reg('orders', 'o2', { port: 81 }));
    const after = await t.req({ method: 'GET', url: INSTANCE_URL });
    expect(after.text).toBe(JSON.stringify(after.body));
    const o1 = after.body.instances.find((i: { id: string }) => i.id === 'o1');
    const o2 = after.body.instances.find((i: { id: string }) => i.id === 'o2');
    expect(o1).toMatchObject({ health: 'down', version: 2, tags: ['blue'], metadata: { zone: 'a' } });
    expect(o2).toMatchObject({ port: 81, version: 2 });
    // The single read (encoded afresh) and the grouped listing agree with the list, byte for byte.
    const single = await t.req({ method: 'GET', url: `${INSTANCE_URL}/o1` });
    expect(JSON.stringify(single.body.instance ?? single.body)).toBe(item(after.body, 'o1'));
    expect(item(await grouped(), 'o1')).toBe(item(after.body, 'o1'));
    expect(item(await grouped(), 'o2')).toBe(item(after.body, 'o2'));
  });
});

describe('the SDK and the CLI', () => {
  it('list, listNamespace and listServices read a listing larger than the cap in pages, as one list at one revision', async () => {
    t = await testApp({ listMaxItems: 5 });
    for (let i = 0; i < 13; i++) t.node.apply(reg(i % 2 ? 'orders' : 'billing', `o${String(i).padStart(2, '0')}`));
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const client = new RollcallClient({ endpoints: address });
    try {
      const direct = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=5` });
      const all = await client.list({ namespace: 'prod', service: 'orders', pageSize: 2 });
      expect(ids(all.instances)).toEqual(['o01', 'o03', 'o05', 'o07', 'o09', 'o11']);
      expect(all.revision).toBe(13);
      expect(all.serviceRevision).toBe(Number(direct.headers['x-rollcall-index']));
      expect((await client.listNamespace({ namespace: 'prod' })).instances).toHaveLength(13);
      const services = await client.listServices({ instances: true, pageSize: 4 });
      expect(services.services.map((s) => [s.service, s.instanceCount, s.instances?.length])).toEqual([
        ['billing', 7, 7],
        ['orders', 6, 6],
      ]);
      expect((await client.listServices()).services.map((s) => s.health.healthy)).toEqual([7, 6]);
      const page = await client.listPage({ namespace: 'prod', service: 'orders', limit: 4 });
      expect(page.instances).toHaveLength(4);
      const next = await client.listPage({ namespace: 'prod', service: 'orders', limit: 4, continue: page.continue! });
      expect(ids(next.instances)).toEqual(['o09', 'o11']);
      expect(next.continue).toBeUndefined();
    } finally {
      await client.close();
    }
  });

  it('list reads unpaginated from a server without pages (it refuses limit)', async () => {
    const old = await ScriptedHttpNode.start('old1');
    old.handler = (req, res) => {
      if (req.url?.includes('limit='))
        return json(res, 400, {
          error: {
            code: 'INVALID_ARGUMENT',
            message: 'querystring: must NOT have additional properties',
            field: 'limit',
          },
        });
      return json(res, 200, { revision: 4, serviceRevision: 3, instances: [] });
    };
    const client = new RollcallClient({ endpoints: old.url, followMembers: false });
    try {
      expect(await client.list({ namespace: 'prod', service: 'orders' })).toEqual({
        revision: 4,
        serviceRevision: 3,
        instances: [],
      });
      expect(await client.list({ namespace: 'prod', service: 'orders' })).toEqual({
        revision: 4,
        serviceRevision: 3,
        instances: [],
      });
      expect(old.seen.filter((s) => s.url.includes('limit=')).length).toBe(1);
    } finally {
      await client.close();
      await old.close();
    }
  });

  it('rollcall list --limit prints one page and the command for the next', async () => {
    t = await testApp();
    for (let i = 0; i < 5; i++) t.node.apply(reg('orders', `o${i}`));
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const run = async (argv: string[]) => {
      let out = '';
      let err = '';
      const code = await runCommand(listCommand, argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
      return { code, out, err };
    };
    const first = await run(['-n', 'prod', '-s', 'orders', '--endpoints', address, '--limit', '3']);
    expect(first.code, first.err).toBe(0);
    expect(first.out).toMatch(/^3 instances of prod\/orders at revision 5$/m);
    const more = /^more: rollcall list (.*)$/m.exec(first.out)![1]!.split(' ');
    expect(more).toContain('--continue');
    const second = await run(more);
    expect(second.out).toMatch(/^o3 /m);
    expect(second.out).toMatch(/^2 instances of prod\/orders at revision 5$/m);
    expect(second.out).not.toMatch(/^more:/m);
    expect((await run(['-n', 'prod', '-s', 'orders', '--endpoints', address])).out).toMatch(/^5 instances/m);
  });
});

describe('the event-loop delay metric', () => {
  it('exports p50, p90, p99 and the max over its window, and a 150 ms block shows in the max, in delay and in CPU per turn (and the counts come from the index)', async () => {
    t = await testApp();
    for (const svc of ['a', 'b']) for (const id of ['1', '2']) t.node.apply(reg(svc, id, { enabled: id === '1' }));
    t.node.apply({ type: 'unregister', namespace: 'prod', service: 'b', id: '2' } as Command);
    const metricsText = async () => (await t.req({ method: 'GET', url: '/metrics' })).text;
    const sample = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    // The delay histogram records the time between two firings of its timer, from the first
    // firing on: a block before that is not measured (the max then read 0.0016 s).
    await waitFor(
      'the loop-delay monitor to have measured',
      async () => sample(await metricsText(), 'rollcall_event_loop_delay_seconds_count') >= 2,
      10_000,
      10,
    );
    // Hold the loop for 150 ms of CPU and of wall clock: on a loaded machine 150 ms of wall
    // clock can be less CPU, and the process's CPU (what process.cpuUsage and the turn-CPU
    // metric count) includes its other threads (GC, libuv's pool), so 150 ms of it can take
    // less wall clock than the delay metric needs to show the block.
    const cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const started = cpu();
    const wallStarted = performance.now();
    while (cpu() - started < 150 || performance.now() - wallStarted < 150) {
      /* hold the loop */
    }
    // The monitors record the block the next time their timers fire, after it.
    const text = await waitFor(
      'the block to show in the loop-delay metrics',
      async () => {
        const text = await metricsText();
        return sample(text, 'rollcall_event_loop_delay_max_seconds') > 0.1 &&
          sample(text, 'rollcall_event_loop_turn_cpu_max_seconds') >= 0.14
          ? text
          : undefined;
      },
      10_000,
      10,
    );
    expect(text).toMatch(/^rollcall_instances 3$/m);
    expect(text).toMatch(/^rollcall_services 2$/m);
    expect(text).toMatch(/^# TYPE rollcall_event_loop_delay_seconds summary$/m);
    for (const q of ['0.5', '0.9', '0.99'])
      expect(text).toMatch(new RegExp(`^rollcall_event_loop_delay_seconds\\{quantile="${q}"\\} [0-9.e-]+$`, 'm'));
    expect(text).toMatch(/^rollcall_event_loop_delay_seconds_count [1-9][0-9]*$/m);
    const max = sample(text, 'rollcall_event_loop_delay_max_seconds');
    expect(max).toBeGreaterThan(0.1);
    expect(max).toBeLessThan(5);
    // The CPU a turn took: the block shows there too, whatever else the machine does.
    for (const q of ['0.5', '0.9', '0.99'])
      expect(text).toMatch(new RegExp(`^rollcall_event_loop_turn_cpu_seconds\\{quantile="${q}"\\} [0-9.e-]+$`, 'm'));
    const cpuMax = sample(text, 'rollcall_event_loop_turn_cpu_max_seconds');
    expect(cpuMax).toBeGreaterThanOrEqual(0.14);
    expect(cpuMax).toBeLessThan(5);
  });
});
