/**
 * Replicated access tokens in the state machine (src/registry: bootstrapAcl, createToken,
 * revokeToken; v3 in src/registry/version.ts): bootstrap succeeds once, decided at apply;
 * tokens persist (only their digest) and reload; revoke deletes; the cluster-version gate
 * refuses them below v3 without writing anything.
 */
import { describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { Registry } from '../src/registry/index.js';
import { Log, MemorySm, ok } from './registry-helpers.js';

const hash = (c: string): string => c.repeat(64);
const bootstrap = (id: string, h: string) =>
  ({ type: 'bootstrapAcl', id, name: 'bootstrap', role: 'admin', secretHash: h }) as Command;
const create = (id: string, h: string, extra: Record<string, unknown> = {}) =>
  ({ type: 'createToken', id, name: `t-${id}`, role: 'read', secretHash: h, ...extra }) as Command;

describe('replicated access tokens', () => {
  it('bootstrap succeeds once: the second (as from another node at the same time) is refused at apply', async () => {
    const log = await Log.open();
    expect(log.registry.aclBootstrapped()).toBe(false);
    const first = ok(log.apply(bootstrap('b1', hash('a'))).result);
    expect(first.changed).toBe(true);
    expect(log.registry.aclBootstrapped()).toBe(true);
    expect(log.apply(bootstrap('b2', hash('b'))).result).toMatchObject({ ok: false, code: 'ACL_BOOTSTRAPPED' });
    expect(log.registry.tokens().map((t) => t.id)).toEqual(['b1']);
    expect(log.registry.tokenByHash(hash('a'))).toMatchObject({
      id: 'b1',
      role: 'admin',
      createRevision: first.revision,
    });
  });

  it('bootstrap must be admin; bad fields are INVALID_ARGUMENT', async () => {
    const log = await Log.open();
    expect(
      log.apply({ type: 'bootstrapAcl', id: 'b1', name: 'bootstrap', role: 'read', secretHash: hash('a') }).result,
    ).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', field: 'role' });
    expect(log.apply(create('x', 'not-hex')).result).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
      field: 'secretHash',
    });
    expect(log.apply(create('x', hash('c'), { namespaces: [] })).result).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
      field: 'namespaces',
    });
    expect(log.apply(create('a/b', hash('c'))).result).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
      field: 'id',
    });
  });

  it('create, revoke, persist only the digest, and reload', async () => {
    const log = await Log.open();
    ok(log.apply(create('t1', hash('c'), { namespaces: ['prod', 'dev', 'prod'], servicePrefixes: ['pay'] })).result);
    expect(log.apply(create('t1', hash('d'))).result).toMatchObject({ ok: false, code: 'TOKEN_EXISTS' });
    expect(log.apply(create('t2', hash('c'))).result).toMatchObject({ ok: false, code: 'TOKEN_EXISTS' });
    ok(log.apply(create('t3', hash('e'))).result);
    expect(log.registry.tokenByHash(hash('c'))).toMatchObject({
      id: 't1',
      namespaces: ['dev', 'prod'],
      servicePrefixes: ['pay'],
    });
    const reopened = await log.reopen();
    expect(reopened.tokens()).toEqual(log.registry.tokens());
    expect(reopened.tokenByHash(hash('e'))?.id).toBe('t3');
    ok(log.apply({ type: 'revokeToken', id: 't1' } as Command).result);
    expect(log.registry.tokenByHash(hash('c'))).toBeUndefined();
    expect(log.apply({ type: 'revokeToken', id: 't1' } as Command).result).toMatchObject({
      ok: false,
      code: 'TOKEN_NOT_FOUND',
    });
    const again = await log.reopen();
    expect(again.tokens().map((t) => t.id)).toEqual(['t3']);
    expect(again.aclBootstrapped()).toBe(false);
  });

  it('below cluster version 3 the commands are refused and write nothing', async () => {
    const sm = new MemorySm(2);
    const log = new Log(await Registry.open(sm), sm);
    for (const c of [
      bootstrap('b1', hash('a')),
      create('t1', hash('c')),
      { type: 'revokeToken', id: 't1' } as Command,
    ]) {
      const out = log.apply(c);
      expect(out.result).toMatchObject({ ok: false, code: 'CLUSTER_NOT_UPGRADED' });
      expect(out.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    }
    expect(log.registry.aclBootstrapped()).toBe(false);
  });
});
