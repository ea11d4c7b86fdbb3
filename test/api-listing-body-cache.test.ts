/**
 * Whole service listings share one encoded body per service revision and filters
 * (src/server/listing/body-cache.ts): an answer after any change is the new one, never a
 * cached stale one, and a cached answer is byte for byte the one written afresh. In process
 * (InMemoryNodeApi); functional, no timing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { BodyCache, bodyCacheStats, MIN_BYTES } from '../src/server/listing/body-cache.js';
import { INSTANCE_URL, type TestApp, testApp } from './api-helpers.js';

let t: TestApp;
afterEach(async () => {
  await t?.close();
});

const reg = (service: string, id: string, extra: Record<string, unknown> = {}): Command =>
  ({ type: 'register', namespace: 'prod', service, id, address: '10.0.0.1', port: 80, ...extra }) as Command;
/** Enough instances of about 400 bytes each that a whole listing is over MIN_BYTES (cached). */
const COUNT = Math.ceil(MIN_BYTES / 300);
const padding = { note: 'x'.repeat(300) };

/** The same listing read in pages (never cached): its instances are the truth to compare with. */
async function paged(url: string): Promise<unknown[]> {
  const sep = url.includes('?') ? '&' : '?';
  const out: unknown[] = [];
  let token: string | undefined;
  do {
    const res = await t.req({
      method: 'GET',
      url: `${url}${sep}limit=100${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
    });
    expect(res.status, res.text).toBe(200);
    out.push(...res.body.instances);
    token = res.body.continue;
  } while (token !== undefined);
  return out;
}

/** Lists `url` whole twice (the second from the cache) and checks both against the paged truth. */
async function listChecked(url: string): Promise<{ revision: number; instances: { id: string }[] }> {
  const hits = bodyCacheStats.hits;
  const first = await t.req({ method: 'GET', url });
  expect(first.status, first.text).toBe(200);
  const second = await t.req({ method: 'GET', url });
  expect(second.status, second.text).toBe(200);
  // The second is served from the cache (the first wrote it, or it was there already)...
  expect(bodyCacheStats.hits).toBeGreaterThan(hits);
  // ...and is byte for byte what the first was (same revision: nothing changed between).
  expect(second.text).toBe(first.text);
  expect(second.headers['x-rollcall-revision']).toBe(first.headers['x-rollcall-revision']);
  expect(first.text).toBe(JSON.stringify(first.body));
  expect(first.body.instances).toEqual(await paged(url));
  return first.body;
}

describe('whole service listings share an encoded body', () => {
  it('after a register, a health change, an unregister and a disable, the answer is the new one', async () => {
    t = await testApp();
    for (let i = 0; i < COUNT; i++)
      t.node.apply(reg('orders', `o${String(i).padStart(4, '0')}`, { metadata: padding }));
    bodyCacheStats.reset();
    const before = await listChecked(INSTANCE_URL);
    expect(before.instances).toHaveLength(COUNT);
    expect(bodyCacheStats.puts).toBe(1);

    t.node.apply(reg('orders', 'new', { metadata: padding }));
    const registered = await listChecked(INSTANCE_URL);
    expect(registered.instances.map((i) => i.id)).toContain('new');
    expect(registered.revision).toBeGreaterThan(before.revision);

    t.node.apply({
      type: 'setHealth',
      term: 1,
      namespace: 'prod',
      service: 'orders',
      id: 'o0001',
      health: 'down',
    } as Command);
    const changed = await listChecked(INSTANCE_URL);
    expect(changed.instances.find((i) => i.id === 'o0001')).toMatchObject({ health: 'down' });
    const healthy = await listChecked(`${INSTANCE_URL}?health=healthy`);
    expect(healthy.instances.map((i) => i.id)).not.toContain('o0001');
    expect(healthy.instances).toHaveLength(COUNT);

    t.node.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: 'o0002' } as Command);
    const unregistered = await listChecked(INSTANCE_URL);
    expect(unregistered.instances.map((i) => i.id)).not.toContain('o0002');
    expect(unregistered.instances).toHaveLength(COUNT);

    t.node.apply(reg('orders', 'o0003', { metadata: padding, enabled: false }));
    const disabled = await listChecked(INSTANCE_URL);
    expect(disabled.instances.map((i) => i.id)).not.toContain('o0003');
    const all = await listChecked(`${INSTANCE_URL}?includeDisabled=true`);
    expect(all.instances.map((i) => i.id)).toContain('o0003');

    // A change elsewhere moves the registry's revision, not the service's: the body is
    // served again, under the new revision.
    t.node.apply(reg('billing', 'b1'));
    const hits = bodyCacheStats.hits;
    const elsewhere = await t.req({ method: 'GET', url: INSTANCE_URL });
    expect(bodyCacheStats.hits).toBe(hits + 1);
    expect(elsewhere.body.revision).toBeGreaterThan(disabled.revision);
    expect(elsewhere.body.instances).toEqual(disabled.instances);
    expect(elsewhere.text).toBe(JSON.stringify(elsewhere.body));
  });

  it('keeps namespaces, clusters and health filters apart', async () => {
    t = await testApp();
    // Twice COUNT in prod: each cluster's half is still large enough to be cached.
    for (let i = 0; i < 2 * COUNT; i++)
      t.node.apply(reg('orders', `p${i}`, { metadata: padding, cluster: i % 2 ? 'b' : 'a' }));
    for (let i = 0; i < COUNT; i++)
      t.node.apply({ ...reg('orders', `s${i}`, { metadata: padding }), namespace: 'staging' } as Command);
    t.node.apply({
      type: 'setHealth',
      term: 1,
      namespace: 'prod',
      service: 'orders',
      id: 'p1',
      health: 'down',
    } as Command);
    const prod = await listChecked(INSTANCE_URL);
    const staging = await listChecked('/v1/namespaces/staging/services/orders/instances');
    expect(new Set(prod.instances.map((i) => i.id.charAt(0)))).toEqual(new Set(['p']));
    expect(new Set(staging.instances.map((i) => i.id.charAt(0)))).toEqual(new Set(['s']));
    const a = await listChecked(`${INSTANCE_URL}?cluster=a`);
    const b = await listChecked(`${INSTANCE_URL}?cluster=b`);
    expect(a.instances.length + b.instances.length).toBe(2 * COUNT);
    expect(a.instances.map((i) => i.id)).not.toContain('p1');
    const healthyB = await listChecked(`${INSTANCE_URL}?cluster=b&health=healthy`);
    expect(healthyB.instances.map((i) => i.id)).not.toContain('p1');
    expect(healthyB.instances).toHaveLength(b.instances.length - 1);
  });

  it('leaves pages and blocking queries correct: a page is never served from the cache', async () => {
    t = await testApp();
    for (let i = 0; i < COUNT; i++)
      t.node.apply(reg('orders', `o${String(i).padStart(4, '0')}`, { metadata: padding }));
    const whole = await listChecked(INSTANCE_URL);
    const page = await t.req({ method: 'GET', url: `${INSTANCE_URL}?limit=10` });
    expect(page.body.instances).toEqual(whole.instances.slice(0, 10));
    expect(page.body.continue).toBeDefined();
  });
});

describe('BodyCache', () => {
  const body = (n: number, fill = 'a') => [Buffer.from(fill.repeat(n - 1)), Buffer.from(fill)];
  const text = (b: readonly Buffer[] | undefined) => (b === undefined ? undefined : Buffer.concat(b).toString());

  it('misses at another revision and drops the stale entry', () => {
    const c = new BodyCache(1000, 10);
    c.put('k', 5, body(100));
    expect(text(c.get('k', 5))).toBe('a'.repeat(100));
    expect(c.get('k', 6)).toBeUndefined();
    expect(c.size).toBe(0);
    expect(c.bytes).toBe(0);
  });

  it('does not let a body at an older revision replace a newer one', () => {
    const c = new BodyCache(1000, 10);
    c.put('k', 7, body(100, 'n'));
    c.put('k', 6, body(100, 'o'));
    expect(text(c.get('k', 7))).toBe('n'.repeat(100));
  });

  it('keeps at most maxBytes, least recently used out first, and nothing below minBytes', () => {
    const c = new BodyCache(300, 10);
    c.put('small', 1, body(5));
    expect(c.size).toBe(0);
    c.put('a', 1, body(100));
    c.put('b', 1, body(100));
    c.put('c', 1, body(100));
    expect(c.get('a', 1)).toBeDefined(); // a is now the most recently used
    c.put('d', 1, body(100));
    expect(c.bytes).toBe(300);
    expect(c.get('b', 1)).toBeUndefined();
    expect(c.get('a', 1)).toBeDefined();
    expect(c.get('c', 1)).toBeDefined();
    expect(c.get('d', 1)).toBeDefined();
    c.put('huge', 1, body(301));
    expect(c.get('huge', 1)).toBeUndefined();
  });
});
