/**
 * The harness's self-test: a follower is cut off (through the fault hook, or through the
 * proxies on the peer links) while writes go on through the leader and the other follower
 * (a majority), and readers read the cut-off follower. With `?consistency=serializable` it
 * answers from its stale state, which is not linearizable and must be caught; with
 * linearizable reads it cannot answer (no ReadIndex without the leader), so the history
 * stays linearizable.
 */
import type { LinClient } from './client.js';
import { findLeader, poll } from './cluster-control.js';
import type { ClusterView } from './cluster-view.js';
import type { PlannedFault } from './faults.js';
import { request, sleep } from './http.js';
import { type RunResult, runScenario } from './run.js';
import { fieldsFor, keyRef } from './workload.js';

export interface StaleReadOptions {
  readonly seed: number;
  readonly consistency: 'serializable' | 'linearizable';
  /**
   * The window of operations (default 1500 ms). The first stale read comes within a few
   * dozen operations of the cut (the window holds several hundred), so a longer one only
   * adds time.
   */
  readonly durationMs?: number;
  readonly keys?: number;
  /** How the follower is cut off: the fault hook (`isolate`, the default) or the proxies (`netsplit`: blackholed both ways). */
  readonly cut?: 'hook' | 'proxy';
}

export const STALE_WRITERS = [0, 1] as const;
export const STALE_READERS = [2, 3] as const;

export async function runStaleReads(
  view: ClusterView,
  options: StaleReadOptions,
): Promise<RunResult & { isolated: string }> {
  const keys = options.keys ?? 2;
  const ns = `stale-${options.seed >>> 0}-${Date.now().toString(36)}`;
  let isolated = '';
  const result = await runScenario(view, {
    seed: options.seed,
    ns,
    keys,
    clients: STALE_WRITERS.length + STALE_READERS.length,
    durationMs: options.durationMs ?? 1500,
    // Reads on a cut-off node time out; keep them short so the window holds many.
    client: { attemptTimeoutMs: 1000 },
    drive: async (clients, deadline, signal, nemesis) => {
      const leader = await findLeader(view, 10_000);
      if (leader === null) throw new Error('stale reads: no leader');
      const follower = view.members.find((m) => m !== leader)!;
      isolated = follower;
      const writer = clients[STALE_WRITERS[0]]!;
      let n = 0;
      // Every key exists, and the follower has applied it, before it is cut off.
      for (let k = 0; k < keys; k++) await writer.register(keyRef(ns, k), fieldsFor(k, 1, `seed.${k}`), 'leader', 0);
      const applied = await poll(async () => {
        for (let k = 0; k < keys; k++) {
          const r = await request(
            'GET',
            `${view.url(follower)}/v1/namespaces/${ns}/services/lin/instances/k${k}?consistency=serializable`,
            undefined,
            {},
            1000,
          );
          if (r.status !== 200) return undefined;
        }
        return true;
      }, 10_000);
      if (applied === null) throw new Error(`stale reads: ${follower} never applied the first writes`);

      let injected!: () => void;
      const inPlace = new Promise<void>((resolve) => (injected = resolve));
      const durationMs = Math.max(0, deadline - Date.now());
      const planned: PlannedFault =
        options.cut === 'proxy'
          ? {
              kind: 'netsplit',
              target: 'follower',
              node: follower,
              r: 0,
              delayMs: 0,
              durationMs,
              netsplit: { shape: 'isolate', mode: 'blackhole', delayMs: 0, jitterMs: 0, peer: 0 },
            }
          : { kind: 'isolate', target: 'follower', node: follower, r: 0, delayMs: 0, durationMs };
      const fault = nemesis.inject(planned, signal, () => injected());
      await Promise.race([inPlace, fault]);

      const writers = STALE_WRITERS.map(async (p) => {
        const c = clients[p]!;
        while (Date.now() < deadline && !signal.aborted) {
          const k = n++ % keys;
          const key = keyRef(ns, k);
          const expected = c.known.get(`${key.ns}/${key.svc}/${key.id}`);
          if (expected !== undefined && n % 2 === 0)
            await c.update(key, expected, fieldsFor(k, n % 100, `${p}.${n}`), 'leader', 0);
          else await c.register(key, fieldsFor(k, n % 100, `${p}.${n}`), 'leader', 0);
        }
      });
      const readers = STALE_READERS.map(async (p) =>
        readLoop(clients[p]!, ns, keys, follower, options.consistency, deadline, signal),
      );
      await Promise.all([fault, ...writers, ...readers]);
    },
  });
  return { ...result, isolated };
}

async function readLoop(
  c: LinClient,
  ns: string,
  keys: number,
  node: string,
  consistency: 'serializable' | 'linearizable',
  deadline: number,
  signal: AbortSignal,
): Promise<void> {
  let i = c.process;
  while (Date.now() < deadline && !signal.aborted) {
    await c.get(keyRef(ns, i++ % keys), { node }, 0, consistency);
    await sleep(10, signal);
  }
}
