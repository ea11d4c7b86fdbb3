/** Builders shared by the client tests. */
import type { Instance } from '../src/client/index.js';

export function inst(id: string, over: Partial<Instance> = {}): Instance {
  return {
    id,
    namespace: 'prod',
    service: 'orders',
    cluster: 'default',
    address: '10.0.0.1',
    port: 9000,
    weight: 100,
    tags: [],
    metadata: {},
    health: 'healthy',
    enabled: true,
    ephemeral: false,
    createRevision: 1,
    modRevision: 1,
    version: 1,
    ...over,
  };
}

/** A small seeded generator (mulberry32), so "random" tests replay. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
