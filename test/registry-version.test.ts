/**
 * The cluster-version gate in the registry's apply (src/registry/version.ts): at version 1 a
 * command of v2 is refused exactly as a v1 build refuses an unknown type (nothing written,
 * no dedup record), setClusterVersion only raises, is term-fenced, persists, and a reopen
 * keeps it.
 */
import { describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import {
  META_CLUSTER_VERSION_KEY,
  parseCommand,
  RESERVED_METADATA_KEY,
  Registry,
  STATE_MACHINE_VERSION,
} from '../src/registry/index.js';
import { inst, Log, MemorySm, ok } from './registry-helpers.js';

async function v1Log(): Promise<Log> {
  const sm = new MemorySm(null);
  return new Log(await Registry.open(sm), sm);
}

const checkHealth = (expectedVersion: number, client?: { id: string; seq: number }) =>
  ({
    type: 'setCheckHealth',
    namespace: 'prod',
    service: 'orders',
    id: 'a',
    expectedVersion,
    health: 'down',
    ...(client ? { client } : {}),
  }) as Command;

describe('cluster version gate', () => {
  it('an absent version is 1; this build implements 6', async () => {
    const log = await v1Log();
    expect(log.registry.clusterVersion).toBe(1);
    expect(STATE_MACHINE_VERSION).toBe(6);
  });

  it('recordMemberAddresses is refused below v5, as a v4 build refuses it; from v5 it applies and changes no registry state', async () => {
    const log = await v1Log();
    const record = { type: 'recordMemberAddresses', term: 1, addresses: { n1: '127.0.0.1:7101' } } as Command;
    expect(log.apply({ type: 'setClusterVersion', term: 1, version: 4 } as Command).result.ok).toBe(true);
    const refused = log.apply(record);
    expect(refused.result).toMatchObject({ ok: false, code: 'CLUSTER_NOT_UPGRADED' });
    expect(refused.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    expect(log.apply({ type: 'setClusterVersion', term: 1, version: 5 } as Command).result.ok).toBe(true);
    const before = log.registry.dump();
    const applied = log.apply(record);
    expect(applied.result).toMatchObject({ ok: true, changed: false });
    expect(applied.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    expect({ ...log.registry.dump(), appliedIndex: 0 }).toEqual({ ...before, appliedIndex: 0 });
    // Fenced by the term, and checked like every command.
    log.term = 2;
    log.apply(inst('x'));
    expect(log.apply(record).result).toMatchObject({ ok: false, code: 'STALE_TERM' });
    expect(parseCommand({ ...record, addresses: {} }, 5).ok).toBe(false);
    expect(parseCommand({ ...record, addresses: { n1: 7101 } }, 5).ok).toBe(false);
  });

  it('from v4 the Consul record key is not counted toward 64 metadata keys; below, it is (as a v3 build applies)', async () => {
    const sm = new MemorySm(3);
    const log = new Log(await Registry.open(sm), sm);
    const metadata = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`k${k}`, 'v']));
    const withRecord = inst('a', { metadata: { ...metadata, [RESERVED_METADATA_KEY]: '{}' } });
    const refused = log.apply(withRecord);
    expect(refused.result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', field: 'metadata' });
    expect(log.registry.getInstance('prod', 'orders', 'a')).toBeUndefined();
    expect(log.apply({ type: 'setClusterVersion', term: 1, version: 4 } as Command).result.ok).toBe(true);
    expect(log.apply(withRecord).result.ok).toBe(true);
    expect(Object.keys(log.registry.getInstance('prod', 'orders', 'a')!.metadata)).toHaveLength(65);
    // Only that key: 65 keys of a user's own are still too many.
    const tooMany = inst('b', { metadata: { ...metadata, k64: 'v' } });
    expect(log.apply(tooMany).result).toMatchObject({ ok: false, field: 'metadata' });
    expect(parseCommand(withRecord, 3).ok).toBe(false);
    expect(parseCommand(withRecord).ok).toBe(true);
  });

  it('at version 1, setCheckHealth is refused before the dedup table and writes nothing', async () => {
    const log = await v1Log();
    const version = ok(log.apply(inst('a')).result).version!;
    const before = log.registry.dump();
    const out = log.apply(checkHealth(version, { id: 'c1', seq: 1 }));
    expect(out.result).toMatchObject({ ok: false, code: 'CLUSTER_NOT_UPGRADED' });
    expect(out.result.ok ? '' : out.result.message).toMatch(/needs cluster version 2; the cluster runs version 1/);
    expect(out.events).toEqual([]);
    // Only the applied index moved: what a v1 build writes for an unknown command type.
    expect(out.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    expect({ ...log.registry.dump(), appliedIndex: 0 }).toEqual({ ...before, appliedIndex: 0 });
    expect(log.registry.dump().dedup).toEqual([]);
    expect(log.registry.getInstance('prod', 'orders', 'a')?.health).toBe('healthy');
  });

  it('at version 1, expiryIntent is refused too (a v1 build does not know it)', async () => {
    const log = await v1Log();
    const out = log.apply({ type: 'expiryIntent', term: 1, sessionIds: [], now: 0 } as Command);
    expect(out.result).toMatchObject({ ok: false, code: 'CLUSTER_NOT_UPGRADED' });
    expect(out.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
  });

  it('setClusterVersion raises it, persists it, and setCheckHealth then applies', async () => {
    const log = await v1Log();
    const version = ok(log.apply(inst('a')).result).version!;
    const raised = log.apply({ type: 'setClusterVersion', term: 1, version: 2 } as Command);
    expect(raised.result).toMatchObject({ ok: true, changed: false });
    expect(raised.ops.map((o) => o.key)).toContain(META_CLUSTER_VERSION_KEY);
    expect(log.registry.clusterVersion).toBe(2);
    expect(ok(log.apply(checkHealth(version, { id: 'c1', seq: 1 })).result).changed).toBe(true);
    expect(log.registry.getInstance('prod', 'orders', 'a')?.health).toBe('down');
    const reopened = await log.reopen();
    expect(reopened.clusterVersion).toBe(2);
    expect(reopened.dump()).toEqual(log.registry.dump());
  });

  it('never lowers, and a deposed leader cannot raise it', async () => {
    const log = await v1Log();
    log.term = 3;
    log.apply({ type: 'setClusterVersion', term: 3, version: 2 } as Command);
    const lower = log.apply({ type: 'setClusterVersion', term: 3, version: 1 } as Command);
    expect(lower.result).toMatchObject({ ok: true, changed: false });
    expect(lower.ops.map((o) => o.key)).not.toContain(META_CLUSTER_VERSION_KEY);
    expect(log.registry.clusterVersion).toBe(2);

    const other = await v1Log();
    other.term = 3;
    other.apply(inst('x'));
    expect(other.apply({ type: 'setClusterVersion', term: 2, version: 2 } as Command).result).toMatchObject({
      ok: false,
      code: 'STALE_TERM',
    });
    expect(other.registry.clusterVersion).toBe(1);
  });

  it('replicas that raise at the same entry stay byte-identical whatever they are sent', async () => {
    const a = await v1Log();
    const b = await v1Log();
    const cmds: Command[] = [
      inst('a'),
      checkHealth(1, { id: 'c', seq: 1 }),
      { type: 'setClusterVersion', term: 1, version: 2 } as Command,
      checkHealth(1, { id: 'c', seq: 2 }),
    ];
    for (const c of cmds) expect(a.apply(c).ops).toEqual(b.apply(c).ops);
    expect([...a.sm.data]).toEqual([...b.sm.data]);
  });
});
