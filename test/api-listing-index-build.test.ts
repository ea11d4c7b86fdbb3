/**
 * The listing index's sorted instances built in slices after a start (InstanceIndex's
 * background build): what changes while it is under way ends in the map, a listing can
 * hurry it, and release or a snapshot install leaves nothing of it behind. The delay, slice
 * length and chunk are injected small, so the build spans many turns of a small registry.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import type { Command, Instance } from '../src/registry/index.js';
import { buildApp } from '../src/server/app.js';
import { InstanceIndex, instanceSortKey } from '../src/server/listing/instance-index.js';
import { seeded as rng } from './client-helpers.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const SEED = Number(process.env.LISTING_SEED ?? Date.now() % 1_000_000);
/** Small enough that a service of a few hundred instances is read across slices. */
const FAST = { sortDelayMs: 0, sortSliceMs: 0.2, sortChunk: 16 } as const;
const BOUND_MS = 30_000;

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function filled(perService: (k: number) => number, services: number): Promise<InMemoryNodeApi> {
  const node = await InMemoryNodeApi.create({ historySize: 100_000 });
  for (let s = 0; s < services; s++)
    for (let k = 0; k < perService(s); k++) register(node, `s${s}`, `i${k}`, k % 2 === 0 ? 'x' : 'y');
  return node;
}

function register(node: InMemoryNodeApi, service: string, id: string, cluster: string): void {
  node.apply({ type: 'register', namespace: 'prod', service, id, address: '10.0.0.1', port: 80, cluster } as Command);
}

function unregister(node: InMemoryNodeApi, service: string, id: string): void {
  node.apply({ type: 'unregister', namespace: 'prod', service, id } as Command);
}

const registryKeys = (node: InMemoryNodeApi) =>
  node.registry
    .dump()
    .instances.map((i) => instanceSortKey(i))
    .sort();
const indexKeys = (index: InstanceIndex) => [...index.instances.entries()].map(([k]) => k);

/** Turns until `done()`, calling `each` every turn; throws after BOUND_MS of wall clock. */
async function until(done: () => boolean, each: () => void = () => {}): Promise<void> {
  const giveUp = performance.now() + BOUND_MS;
  while (!done()) {
    each();
    await turn();
    if (performance.now() > giveUp) throw new Error(`not done after ${BOUND_MS} ms`);
  }
}

describe('InstanceIndex background build', () => {
  it(`takes in changes made while it is under way, before and after its read position (seed ${SEED})`, async () => {
    const node = await filled((s) => (s === 3 ? 400 : 20 + s), 12);
    const index = InstanceIndex.acquire(node.registry, FAST);
    try {
      const r = rng(SEED);
      let duringBuild = 0;
      await until(
        () => index.sorted,
        () => {
          if (!index.building) return;
          duringBuild++;
          const service = `s${Math.floor(r() * 14)}`;
          const id = `i${Math.floor(r() * 450)}`;
          if (r() < 0.3) unregister(node, service, id);
          else register(node, service, id, r() < 0.5 ? 'x' : 'y');
        },
      );
      expect(duringBuild).toBeGreaterThan(5);
      expect(indexKeys(index)).toEqual(registryKeys(node));
    } finally {
      index.release();
    }
  });

  it('takes in a service created behind its read position, and one emptied and recreated while read', async () => {
    // s1 (400 instances) is read a chunk at a time: empty it and recreate it while it is being read.
    const node = await filled((s) => (s === 1 ? 400 : 10), 4);
    const index = InstanceIndex.acquire(node.registry, FAST);
    try {
      await until(() => index.buildPosition === 'prod\0s1' || index.sorted);
      expect(index.sorted).toBe(false);
      register(node, 'a-early', 'e1', 'x'); // sorts before every service read already
      for (let k = 0; k < 400; k++) unregister(node, 's1', `i${k}`);
      register(node, 's1', 'again', 'x');
      register(node, 's1', 'i7', 'y');
      await until(() => index.sorted);
      expect(indexKeys(index)).toEqual(registryKeys(node));
      expect(indexKeys(index)).toContain(instanceSortKey(node.registry.getInstance('prod', 'a-early', 'e1')!));
    } finally {
      index.release();
    }
  });

  it('reads a large service across several turns', async () => {
    const node = await filled(() => 2000, 1);
    const index = InstanceIndex.acquire(node.registry, FAST);
    try {
      let turnsInS0 = 0;
      await until(
        () => index.sorted,
        () => {
          if (index.buildPosition === 'prod\0s0') turnsInS0++;
        },
      );
      expect(turnsInS0).toBeGreaterThan(2);
      expect(indexKeys(index)).toEqual(registryKeys(node));
    } finally {
      index.release();
    }
  });

  it('lets a listing hurry a build under way, and one not begun', async () => {
    const node = await filled(() => 300, 6);
    const index = InstanceIndex.acquire(node.registry, FAST);
    try {
      await until(() => index.building && index.buildPosition !== null);
      expect(index.sorted).toBe(false);
      register(node, 's0', 'during', 'x');
      expect(await index.whenSorted(BOUND_MS)).toBe(true);
      expect(indexKeys(index)).toEqual(registryKeys(node));
    } finally {
      index.release();
    }
    // Not begun (the delay not over): whenSorted begins it now.
    const later = InstanceIndex.acquire(node.registry, { ...FAST, sortDelayMs: 60_000 });
    try {
      expect(later.building).toBe(false);
      expect(await later.whenSorted(BOUND_MS)).toBe(true);
      expect(indexKeys(later)).toEqual(registryKeys(node));
    } finally {
      later.release();
    }
  });

  it('starts over after a snapshot install during the build, and a listing waiting gets the new one', async () => {
    const node = await filled(() => 300, 6);
    const index = InstanceIndex.acquire(node.registry, FAST);
    try {
      await until(() => index.building && index.buildPosition !== null);
      const waiting = index.whenSorted(BOUND_MS);
      await node.registry.reload();
      register(node, 's2', 'after-install', 'y');
      expect(await waiting).toBe(true);
      expect(indexKeys(index)).toEqual(registryKeys(node));
    } finally {
      index.release();
    }
  });

  it('leaves no timer or immediate behind when released during the build, and refuses to be read after', async () => {
    const node = await filled(() => 300, 6);
    const count = () => {
      const r = process.getActiveResourcesInfo();
      return r.filter((x) => x === 'Timeout' || x === 'Immediate').length;
    };
    await turn();
    const before = count();
    const index = InstanceIndex.acquire(node.registry, FAST);
    await until(() => index.building && index.buildPosition !== null);
    const waiting = index.whenSorted(BOUND_MS);
    index.release();
    expect(await waiting).toBe(false);
    expect(index.building).toBe(false);
    expect(count()).toBe(before);
    expect(() => index.instances).toThrow(/after the last release/);
    expect(await index.whenSorted(10)).toBe(false);
  });

  it('makes a listing that comes before the build is done wait for it, answering at its own revision', async () => {
    const node = await filled((s) => (s === 2 ? 600 : 50), 5);
    // Acquired before the app: the app's lister shares this index and its (injected) build.
    const index = InstanceIndex.acquire(node.registry, { ...FAST, sortDelayMs: 60_000 });
    const app = buildApp({ logger: silentLogger(), minRevisionTimeoutMs: BOUND_MS, node });
    try {
      await app.ready();
      expect(index.building).toBe(false);
      // A services listing reads no instances: it neither waits for the build nor begins it.
      const services = await app.inject({ method: 'GET', url: '/v1/services?consistency=serializable&limit=3' });
      expect(services.statusCode).toBe(200);
      expect(index.building || index.sorted).toBe(false);
      const revision = node.registry.revision;
      const answer = app.inject({ method: 'GET', url: '/v1/namespaces/prod/services/s2/instances?limit=500' });
      // The listing began the build and waits for it while the event loop goes on.
      await until(() => index.building || index.sorted);
      expect(index.sorted).toBe(false);
      register(node, 's2', 'a-after', 'x');
      const res = await answer;
      expect(res.statusCode).toBe(200);
      const body = res.json() as { revision: number; instances: Instance[] };
      expect(body.revision).toBe(revision);
      expect(body.instances.map((i) => i.id)).not.toContain('a-after');
      const want = node.registry
        .listInstances('prod', 's2', { includeDisabled: true })
        .instances.filter((i) => i.id !== 'a-after')
        .slice(0, 500);
      expect(body.instances.map((i) => i.id)).toEqual(want.map((i) => i.id));
      expect(index.sorted).toBe(true);
    } finally {
      await app.close();
      index.release();
    }
  });
});
