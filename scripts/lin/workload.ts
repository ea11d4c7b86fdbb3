/**
 * Generated workloads: fast-check arbitraries for what each concurrent client does, and
 * the loop that plays a client's plan against a cluster until the run's deadline.
 *
 * A plan is a list of operations on a few keys (instances), played in a cycle: registers
 * (upserts), unregisters, compare-and-set updates (If-Match the version the client last
 * saw, usually just read, sometimes off by one so the CAS fails), and reads, linearizable by default, on the
 * leader, a follower or any node. Every write carries a value unique in the run (metadata
 * `w: "<process>.<n>"`), which lets the client tell its own result from a later state and
 * keeps the checker's search narrow. Address and port are fixed per key, because a PATCH
 * cannot change them: the model's view of an update is then exactly what the node applies.
 */
import fc from 'fast-check';
import type { InstanceFields, KeyRef, LinClient } from './client.js';
import type { TargetKind } from './cluster-view.js';
import { sleep } from './http.js';

export type PlannedOp =
  | {
      readonly f: 'register';
      readonly key: number;
      readonly weight: number;
      readonly target: TargetKind;
      readonly r: number;
    }
  | { readonly f: 'unregister'; readonly key: number; readonly target: TargetKind; readonly r: number }
  | {
      readonly f: 'update';
      readonly key: number;
      /** Read the instance first (read-modify-write), so the CAS has a fresh version to compare. */
      readonly fresh: boolean;
      readonly delta: number;
      readonly weight: number;
      readonly target: TargetKind;
      readonly r: number;
    }
  | { readonly f: 'get'; readonly key: number; readonly target: TargetKind; readonly r: number };

export interface ClientPlan {
  readonly ops: readonly PlannedOp[];
  /** Pause after each operation, ms (cycled with ops). */
  readonly thinkMs: readonly number[];
}

export interface WorkloadPlan {
  /** Number of instances (keys) the clients share. */
  readonly keys: number;
  readonly clients: readonly ClientPlan[];
}

export interface WorkloadOptions {
  readonly minClients?: number;
  readonly maxClients?: number;
  readonly minKeys?: number;
  readonly maxKeys?: number;
}

const unit = fc.nat({ max: 9999 }).map((n) => n / 10_000);
const targetArb: fc.Arbitrary<TargetKind> = fc.constantFrom<TargetKind>('leader', 'follower', 'any');

function opArb(keys: number): fc.Arbitrary<PlannedOp> {
  const key = fc.nat({ max: keys - 1 });
  const weight = fc.nat({ max: 1000 });
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.record({ f: fc.constant('register' as const), key, weight, target: targetArb, r: unit }),
    },
    { weight: 1, arbitrary: fc.record({ f: fc.constant('unregister' as const), key, target: targetArb, r: unit }) },
    {
      weight: 3,
      arbitrary: fc.record({
        f: fc.constant('update' as const),
        key,
        fresh: fc.constantFrom(true, true, true, false),
        delta: fc.constantFrom(0, 0, 0, 0, -1, 1),
        weight,
        target: targetArb,
        r: unit,
      }),
    },
    { weight: 4, arbitrary: fc.record({ f: fc.constant('get' as const), key, target: targetArb, r: unit }) },
  );
}

export function workloadArb(options: WorkloadOptions = {}): fc.Arbitrary<WorkloadPlan> {
  const minKeys = options.minKeys ?? 2;
  const maxKeys = options.maxKeys ?? 4;
  return fc.integer({ min: minKeys, max: maxKeys }).chain((keys) =>
    fc.record({
      keys: fc.constant(keys),
      clients: fc.array(
        fc.record({
          ops: fc.array(opArb(keys), { minLength: 10, maxLength: 40 }),
          thinkMs: fc.array(fc.oneof(fc.constant(0), fc.nat({ max: 25 })), { minLength: 1, maxLength: 8 }),
        }),
        { minLength: options.minClients ?? 4, maxLength: options.maxClients ?? 6 },
      ),
    }),
  );
}

/** The instance behind key number `i` of a run. */
export function keyRef(ns: string, i: number): KeyRef {
  return { ns, svc: 'lin', id: `k${i}` };
}

/** Fixed per key: PATCH cannot change address or port. */
export function fieldsFor(keyIndex: number, weight: number, tag: string): InstanceFields {
  return { address: `10.77.0.${keyIndex + 1}`, port: 8000 + keyIndex, weight, metadata: { w: tag } };
}

/** Plays `plan` in a cycle until `deadline` (Date.now() ms) or `signal`; returns the operations issued. */
export async function playClient(
  client: LinClient,
  plan: ClientPlan,
  ns: string,
  deadline: number,
  signal?: AbortSignal,
): Promise<number> {
  let i = 0;
  let writes = 0;
  while (Date.now() < deadline && !signal?.aborted) {
    const op = plan.ops[i % plan.ops.length]!;
    const think = plan.thinkMs[i % plan.thinkMs.length] ?? 0;
    i++;
    const k = keyRef(ns, op.key);
    switch (op.f) {
      case 'register':
        await client.register(k, fieldsFor(op.key, op.weight, `${client.process}.${++writes}`), op.target, op.r);
        break;
      case 'unregister':
        await client.unregister(k, op.target, op.r);
        break;
      case 'update': {
        if (op.fresh) await client.get(k, op.target, op.r);
        const expected = Math.max(1, (client.known.get(`${k.ns}/${k.svc}/${k.id}`) ?? 1) + op.delta);
        await client.update(
          k,
          expected,
          fieldsFor(op.key, op.weight, `${client.process}.${++writes}`),
          op.target,
          op.r,
        );
        break;
      }
      case 'get':
        await client.get(k, op.target, op.r);
        break;
    }
    if (think > 0) await sleep(think, signal);
  }
  return i;
}
