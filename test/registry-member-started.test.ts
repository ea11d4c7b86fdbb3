/**
 * The started-member record (cluster version 6, src/registry/version.ts): recordMemberStarted
 * is refused below 6 exactly as a v5 build refuses an unknown type, is idempotent, refuses a
 * member not in the configuration, is deleted by the conf change that removes the member
 * (so remove + add starts afresh), seeds every current member at the raise to 6, and
 * survives a reopen (what a restart and a snapshot install load from the state machine).
 */
import { describe, expect, it } from 'vitest';
import type { Command, ConfState } from '../src/registry/index.js';
import { META_STARTED_MEMBERS_KEY, parseCommand, Registry } from '../src/registry/index.js';
import { Log, MemorySm } from './registry-helpers.js';

const started = (member: string) => ({ type: 'recordMemberStarted', member }) as Command;
const conf = (voters: string[], learners: string[] = []): ConfState => ({ voters, learners });

async function logAt(version: number | null, members: ConfState = conf(['n1', 'n2', 'n3'])): Promise<Log> {
  const sm = new MemorySm(version);
  const log = new Log(await Registry.open(sm), sm);
  log.applyEntries([{ command: null, conf: members }]);
  return log;
}

describe('the started-member record', () => {
  it('is refused below version 6, writing only the applied index, as a v5 build refuses an unknown type', async () => {
    const log = await logAt(5);
    const out = log.apply(started('n3'));
    expect(out.result).toMatchObject({ ok: false, code: 'CLUSTER_NOT_UPGRADED' });
    expect(out.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    expect(log.registry.hasStarted('n3')).toBe(false);
  });

  it('records a current member once: applying it again changes nothing', async () => {
    const log = await logAt(6);
    const revision = log.registry.revision;
    const first = log.apply(started('n3'));
    expect(first.result).toMatchObject({ ok: true, changed: false });
    expect(first.ops.map((o) => o.key)).toEqual(['\x00meta/applied', META_STARTED_MEMBERS_KEY]);
    expect(log.registry.startedMembers()).toEqual(new Map([['n3', log.index]]));
    const at = log.index;
    const again = log.apply(started('n3'));
    expect(again.result).toMatchObject({ ok: true, changed: false });
    expect(again.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
    expect(log.registry.startedMembers()).toEqual(new Map([['n3', at]]));
    // No instance changed: the registry's revision does not move.
    expect(log.registry.revision).toBe(revision);
  });

  it('refuses a member that is not in the configuration (a proposal that outlived its removal)', async () => {
    const log = await logAt(6);
    expect(log.apply(started('n9')).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', field: 'member' });
    expect(log.registry.hasStarted('n9')).toBe(false);
    // A learner is a member: it publishes itself too.
    log.applyEntries([{ command: null, conf: conf(['n1', 'n2', 'n3'], ['n4']) }]);
    expect(log.apply(started('n4')).result.ok).toBe(true);
    expect(log.registry.hasStarted('n4')).toBe(true);
  });

  it('is deleted by the conf change that removes the member, so remove + add starts afresh', async () => {
    const log = await logAt(6);
    log.apply(started('n2'));
    log.apply(started('n3'));
    const removed = log.applyEntries([{ command: null, conf: conf(['n1', 'n2']) }]);
    expect(log.registry.hasStarted('n3')).toBe(false);
    expect(log.registry.hasStarted('n2')).toBe(true);
    expect(removed.ops.map((o) => o.key)).toContain(META_STARTED_MEMBERS_KEY);
    // Added back: not started until it publishes itself again.
    log.applyEntries([{ command: null, conf: conf(['n1', 'n2'], ['n3']) }]);
    expect(log.registry.hasStarted('n3')).toBe(false);
    expect(log.apply(started('n3')).result.ok).toBe(true);
    expect(log.registry.hasStarted('n3')).toBe(true);
    // The last entry gone, the key goes too.
    const last = log.applyEntries([{ command: null, conf: conf(['n1']) }]);
    expect(last.ops).toContainEqual({ type: 'del', key: META_STARTED_MEMBERS_KEY });
    expect(log.sm.data.has(META_STARTED_MEMBERS_KEY)).toBe(false);
  });

  it('the raise to 6 records every current member (each reported a running build)', async () => {
    const log = await logAt(5, conf(['n1', 'n2'], ['n3']));
    log.apply({ type: 'setClusterVersion', term: 1, version: 6 } as Command);
    expect([...log.registry.startedMembers().keys()]).toEqual(['n1', 'n2', 'n3']);
    // A later raise (6 -> 7) does not add members that never published.
    const later = await logAt(6);
    later.apply({ type: 'setClusterVersion', term: 1, version: 7 } as Command);
    expect(later.registry.startedMembers().size).toBe(0);
  });

  it('survives a reopen, and replicas applying the same entries write the same bytes', async () => {
    const a = await logAt(6);
    const b = await logAt(6);
    for (const log of [a, b]) {
      log.apply(started('n3'));
      log.apply(started('n1'));
    }
    expect(a.sm.data.get(META_STARTED_MEMBERS_KEY)).toEqual(b.sm.data.get(META_STARTED_MEMBERS_KEY));
    const reopened = await a.reopen();
    expect(reopened.startedMembers()).toEqual(a.registry.startedMembers());
    expect([...reopened.startedMembers().keys()]).toEqual(['n1', 'n3']);
  });

  it('is a member command: it takes no client, and names a member', () => {
    expect(parseCommand({ type: 'recordMemberStarted', member: 'n1' }).ok).toBe(true);
    expect(parseCommand({ type: 'recordMemberStarted', member: '' }).ok).toBe(false);
    expect(parseCommand({ type: 'recordMemberStarted', member: 'n1', client: { id: 'c', seq: 1 } })).toMatchObject({
      ok: false,
      code: 'INVALID_COMMAND',
    });
  });
});
