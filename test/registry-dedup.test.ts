import { describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { inst, Log } from './registry-helpers.js';

const withClient = (cmd: Command, id: string, seq: number): Command => ({ ...cmd, client: { id, seq } }) as Command;

describe('exactly once', () => {
  it('a retry returns the first result and changes nothing, even after the state moved on', async () => {
    const log = await Log.open();
    const first = log.apply(withClient(inst('a'), 'c1', 1));
    expect(first.result).toEqual({ ok: true, revision: 1, changed: true, version: 1 });
    log.apply(inst('a', { port: 2 })); // someone else changes it
    const retry = log.apply(withClient(inst('a'), 'c1', 1));
    expect(retry.result).toEqual(first.result);
    expect(retry.events).toEqual([]);
    expect(retry.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    expect(log.registry.getInstance('prod', 'orders', 'a')?.port).toBe(2);
  });

  it('caches failures too, and the cached result survives a restart', async () => {
    const log = await Log.open();
    const cas: Command = {
      type: 'update',
      namespace: 'prod',
      service: 'orders',
      id: 'a',
      expectedVersion: 1,
      patch: { weight: 3 },
    };
    const first = log.apply(withClient(cas, 'c1', 1));
    expect(first.result).toMatchObject({ ok: false, code: 'INSTANCE_NOT_FOUND' });
    log.apply(inst('a')); // now the CAS would succeed
    const restarted = await log.reopen();
    const again = new Log(restarted, log.sm).apply(withClient(cas, 'c1', 1));
    expect(again.result).toEqual(first.result);
    expect(restarted.getInstance('prod', 'orders', 'a')?.weight).toBe(100);
  });

  it('a new seq applies; an older seq than the last is STALE_REQUEST and changes nothing', async () => {
    const log = await Log.open();
    log.apply(withClient(inst('a'), 'c1', 1));
    log.apply(withClient(inst('b'), 'c1', 2));
    const stale = log.apply(withClient(inst('z'), 'c1', 1));
    // seq 1's result is no longer kept, so this is not a replay of it but a refusal
    expect(stale.result).toMatchObject({ ok: false, code: 'STALE_REQUEST' });
    expect(log.registry.getInstance('prod', 'orders', 'z')).toBeUndefined();
    expect(log.registry.dump().dedup).toEqual([
      { client: 'c1', seq: 2, index: 2, result: { ok: true, revision: 2, changed: true, version: 1 } },
    ]);
  });

  it('malformed client refs are rejected and not cached', async () => {
    const log = await Log.open();
    for (const client of [{ id: '', seq: 1 }, { id: 'c', seq: 0 }, { id: 'c', seq: 1.5 }, 'c']) {
      expect(log.apply({ ...inst('a'), client } as Command).result).toMatchObject({ code: 'INVALID_COMMAND' });
    }
    expect(log.registry.dump().dedup).toEqual([]);
    expect(log.registry.revision).toBe(0);
  });

  it('is bounded: evicts the client whose last command was applied longest ago, deterministically and durably', async () => {
    const log = await Log.open({ maxClients: 3 });
    log.apply(withClient(inst('a'), 'c1', 1)); // index 1
    log.apply(withClient(inst('b'), 'c2', 1)); // index 2
    log.apply(withClient(inst('c'), 'c3', 1)); // index 3
    log.apply(withClient(inst('a', { port: 5 }), 'c1', 2)); // index 4: c1 is now the most recent
    const out = log.apply(withClient(inst('d'), 'c4', 1)); // index 5: evicts c2
    expect(out.ops).toContainEqual({ type: 'del', key: 'd/c2' });
    expect(log.registry.dump().dedup.map((d) => [d.client, d.index])).toEqual([
      ['c3', 3],
      ['c1', 4],
      ['c4', 5],
    ]);
    // the restarted replica rebuilds the same LRU order from storage and evicts the same next victim
    const restarted = new Log(await log.reopen({ maxClients: 3 }), log.sm);
    expect(restarted.registry.dump().dedup).toEqual(log.registry.dump().dedup);
    const a = restarted.apply(withClient(inst('e'), 'c5', 1));
    const b = log.apply(withClient(inst('e'), 'c5', 1));
    expect(a.ops).toEqual(b.ops);
    expect(a.ops).toContainEqual({ type: 'del', key: 'd/c3' });
    // an evicted client's retry is applied as new (the documented cost of the bound)
    expect(log.apply(withClient(inst('b', { port: 9 }), 'c2', 1)).result).toMatchObject({ ok: true, changed: true });
  });
});
