import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../src/codec/index.js';
import type { AppliedEntry, Command, ConfState, SmStore } from '../src/registry/index.js';
import { META_APPLIED_KEY, META_CONF_KEY, Registry } from '../src/registry/index.js';
import { scanBatches } from '../src/storage/index.js';
import { inst, MemorySm, seed } from './registry-helpers.js';

const SEED = seed(20_240_601);

// ---- random command sequences over small name pools, so commands collide and interact

const pick = <T>(xs: readonly T[]) => fc.constantFrom(...xs);
const ns = pick(['prod', 'test']);
const svc = pick(['orders', 'billing']);
const id = pick(['a', 'b', 'c', 'd']);
const sid = pick(['s1', 's2', 's3']);
/** Mostly fresh requests, some retries of the last one, a few late duplicates of older ones. */
const client = fc.option(
  fc.record({ id: pick(['c1', 'c2', 'c3']), mode: pick(['next', 'next', 'next', 'retry', 'old']) }),
  { nil: undefined },
);
const LEADER_TYPES = new Set(['expire', 'markSuspect', 'clearSuspect', 'setHealth']);

const registerArb = fc.record(
  {
    type: fc.constant('register'),
    namespace: ns,
    service: svc,
    id,
    address: pick(['10.0.0.1', '10.0.0.2']),
    port: pick([80, 8080]),
    cluster: pick(['default', 'vip']),
    weight: fc.integer({ min: 0, max: 200 }),
    tags: fc.array(pick(['x', 'y', 'z']), { maxLength: 3 }),
    metadata: fc.dictionary(pick(['k1', 'k2', 'environment']), pick(['v1', 'v2', 'prod'])),
    enabled: fc.boolean(),
    sessionId: sid,
  },
  { requiredKeys: ['type', 'namespace', 'service', 'id', 'address', 'port'] },
);

const commandArb: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  { weight: 6, arbitrary: registerArb },
  { weight: 2, arbitrary: fc.record({ type: fc.constant('unregister'), namespace: ns, service: svc, id }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant('update'),
      namespace: ns,
      service: svc,
      id,
      expectedVersion: fc.integer({ min: 1, max: 3 }),
      patch: fc.record(
        {
          weight: fc.integer({ min: 0, max: 5 }),
          enabled: fc.boolean(),
          tags: fc.array(pick(['x', 'q'])),
          metadata: fc.dictionary(pick(['environment', 'k1']), pick(['prod', 'v1'])),
        },
        { requiredKeys: [] },
      ),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      type: fc.constant('openSession'),
      sessionId: sid,
      ttlMs: pick([1_000, 5_000]),
      now: fc.nat(100_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('closeSession'), sessionId: sid }) },
  {
    weight: 2,
    arbitrary: fc.record({
      type: pick(['expire', 'markSuspect', 'markSuspect']),
      termDelta: pick([-1, 0, 0, 0]),
      sessionIds: fc.array(sid, { maxLength: 3 }),
      now: fc.nat(100_000),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('clearSuspect'),
      termDelta: pick([-1, 0, 0]),
      sessionIds: fc.array(sid, { maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        type: fc.constant('setCheckHealth'),
        namespace: ns,
        service: svc,
        id,
        expectedVersion: fc.integer({ min: 1, max: 3 }),
        health: pick(['healthy', 'subhealthy', 'down']),
        metadata: fc.dictionary(pick(['environment', 'rollcall.consul']), pick(['prod', 'v1'])),
      },
      { requiredKeys: ['type', 'namespace', 'service', 'id', 'expectedVersion', 'health'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('setHealth'),
      termDelta: pick([-1, 0]),
      namespace: ns,
      service: svc,
      id,
      health: pick(['healthy', 'subhealthy', 'down']),
    }),
  },
  {
    // Rules that refuse some of the registers and updates above (ACCESS_DENIED, ENVIRONMENT_MISMATCH),
    // a few invalid documents, and compare-and-set on the rules revision.
    weight: 2,
    arbitrary: fc.record(
      {
        type: fc.constant('setAccessRules'),
        rules: fc.record(
          {
            environment: pick([null, 'prod', 'v1']),
            allow: fc.array(
              fc.record(
                { namespace: pick(['prod', '*']), cidr: pick(['10.0.0.0/31', '10.0.0.2', '::1/128', 'bogus']) },
                { requiredKeys: [] },
              ),
              { maxLength: 2 },
            ),
            deny: fc.array(
              fc.record(
                {
                  name: pick(['lab', 'x']),
                  service: pick(['orders', 'billing']),
                  cidr: pick(['10.0.0.1/32', 'fd00::/8']),
                },
                { requiredKeys: ['service'] },
              ),
              { maxLength: 2 },
            ),
          },
          { requiredKeys: [] },
        ),
        expectedRevision: fc.nat(12),
      },
      { requiredKeys: ['type', 'rules'] },
    ),
  },
  {
    weight: 1,
    arbitrary: fc.record(
      {
        type: fc.constant('setHealthPolicy'),
        policy: pick([
          {},
          { defaults: { alerts: { minHealthy: 2 } } },
          { services: { 'prod/orders': { health: { minDwellMs: 0 } } } },
          { cluster: { lag: 1 } },
        ]),
        expectedRevision: fc.nat(4),
      },
      { requiredKeys: ['type', 'policy'] },
    ),
  },
  { weight: 1, arbitrary: fc.constant({ type: 'bogus' }) },
  // Raising the cluster version (both replicas start at 1): setCheckHealth is refused before, applied after.
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant('setClusterVersion'),
      termDelta: pick([-1, 0, 0]),
      version: pick([1, 2]),
    }),
  },
);

const entryArb = fc.record({
  command: fc.option(fc.tuple(commandArb, client), { freq: 6, nil: null }),
  newTerm: fc.nat(9).map((n) => n === 0),
  conf: fc.option(fc.subarray(['n1', 'n2', 'n3', 'n4']), { freq: 8, nil: undefined }),
});
const scheduleArb = fc.array(fc.array(entryArb, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 12 });

/** Turns generated entries into log entries: contiguous indexes, non-decreasing terms, commands in their term. */
type GenEntry = typeof entryArb extends fc.Arbitrary<infer T> ? T : never;

function toBatches(schedule: readonly (readonly GenEntry[])[]): AppliedEntry[][] {
  let index = 0;
  let term = 1;
  const seqs = new Map<string, number>();
  return schedule.map((batch) =>
    batch.map((e) => {
      if (e.newTerm) term++;
      let command: Command | null = null;
      if (e.command !== null) {
        const [raw, c] = e.command;
        const { termDelta, ...rest } = raw as { termDelta?: number };
        const cmd: Record<string, unknown> =
          termDelta === undefined ? { ...rest } : { ...rest, term: term + termDelta };
        if (c !== undefined && !LEADER_TYPES.has(String(cmd['type']))) {
          const last = seqs.get(c.id) ?? 0;
          const seq = c.mode === 'next' || last === 0 ? last + 1 : c.mode === 'retry' ? last : Math.max(1, last - 1);
          seqs.set(c.id, Math.max(last, seq));
          cmd['client'] = { id: c.id, seq };
        }
        command = cmd as unknown as Command;
      }
      const entry: { index: number; term: number; command: Command | null; conf?: ConfState } = {
        index: ++index,
        term,
        command,
      };
      if (e.conf !== undefined) entry.conf = { voters: e.conf, learners: [] };
      return entry;
    }),
  );
}

let dir: string;
let db: Level<string, Uint8Array>;
let runs = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rollcall-registry-'));
  db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' });
  await db.open();
});

afterAll(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const freshSublevel = () => db.sublevel<string, Uint8Array>(`run${++runs}`, { valueEncoding: 'view' });
type Sub = ReturnType<typeof freshSublevel>;

/** A string-keyed sublevel as the registry's store, scanned in small batches (the node's smStore scans its binary sublevel the same way). */
function levelStore(sub: Sub): SmStore {
  return { batches: () => scanBatches<string, Uint8Array>(sub, 5) };
}

describe('persistence', () => {
  it('a LevelDB sublevel is a valid store, and the reserved meta keys hold {index, term} and ConfState', async () => {
    const sm = freshSublevel();
    const reg = await Registry.open(levelStore(sm));
    const conf = { voters: ['n1'], learners: ['n2'] };
    const out = reg.applyBatch([
      { index: 1, term: 1, command: null, conf },
      { index: 2, term: 1, command: inst('a') },
    ]);
    await sm.batch([...out.ops]);
    expect(decode((await sm.get(META_APPLIED_KEY)) as Uint8Array)).toEqual({ index: 2, term: 1 });
    expect(decode((await sm.get(META_CONF_KEY)) as Uint8Array)).toEqual(conf);
    const again = await Registry.open(levelStore(sm));
    expect(again.dump()).toEqual(reg.dump());
    expect(again.history.floor).toBe(1);
    expect(again.history.since(0)).toBe('compacted');
  });

  it('random command sequences: LevelDB round trip equals memory, and replicas are identical (ops included)', async () => {
    const outcomes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(scheduleArb, async (schedule) => {
        const batches = toBatches(schedule);
        const sm = freshSublevel();
        const a = await Registry.open(levelStore(sm), { maxClients: 2, historySize: 8 });
        const mem = new MemorySm(null);
        const b = await Registry.open(mem, { maxClients: 2, historySize: 1_000 });
        for (const batch of batches) {
          const outA = a.applyBatch(batch);
          const outB = b.applyBatch(batch);
          expect(outA.ops).toEqual(outB.ops);
          expect(outA.events).toEqual(outB.events);
          expect([...outA.results]).toEqual([...outB.results]);
          for (const r of outA.results.values()) outcomes.add(r.ok ? 'ok' : r.code);
          await sm.batch([...outA.ops]);
          mem.write(outB.ops);
        }
        expect(a.dump()).toEqual(b.dump());
        const reopened = await Registry.open(levelStore(sm), { maxClients: 2 });
        expect(reopened.dump()).toEqual(a.dump());
        await b.reload();
        expect(b.dump()).toEqual(a.dump());
        // the memory indexes agree with the primary map
        for (const s of a.listServices()) {
          const listed = a.listInstances(s.namespace, s.service, { includeDisabled: true }).instances;
          expect(listed.length).toBe(s.instanceCount);
        }
        for (const s of a.sessions()) for (const i of a.sessionInstances(s.id)) expect(i.sessionId).toBe(s.id);
      }),
      { seed: SEED, numRuns: 80 },
    );
    // The generators reach the access-rule verdicts and the rules CAS, not just success.
    for (const code of [
      'ACCESS_DENIED',
      'ENVIRONMENT_MISMATCH',
      'VERSION_MISMATCH',
      'INVALID_ARGUMENT',
      'CLUSTER_NOT_UPGRADED',
    ])
      expect(outcomes).toContain(code);
  });

  it('replaying after a restart from any cut point reaches the same state', async () => {
    await fc.assert(
      fc.asyncProperty(scheduleArb, fc.nat(), async (schedule, cutSeed) => {
        const batches = toBatches(schedule);
        const cut = cutSeed % (batches.length + 1);
        const mem = new MemorySm();
        let reg = await Registry.open(mem);
        const reference = await Registry.open(new MemorySm());
        for (const [i, batch] of batches.entries()) {
          if (i === cut) reg = await Registry.open(mem);
          mem.write(reg.applyBatch(batch).ops);
          reference.applyBatch(batch);
        }
        // redelivering already-applied entries is harmless
        for (const batch of batches) expect(reg.applyBatch(batch).ops).toEqual([]);
        expect(reg.dump()).toEqual(reference.dump());
      }),
      { seed: SEED + 1, numRuns: 100 },
    );
  });
});
