/**
 * Property tests of a real cluster: fast-check generates, per seed, a workload for 4-6
 * concurrent clients (registers, unregisters, compare-and-set updates, linearizable
 * reads on the leader and on followers) and a fault schedule (kill -9 and restart, the
 * leader too; SIGSTOP/SIGCONT; isolation and one-way loss through the fault hook;
 * leadership transfer; adding and removing a member). Each case runs for a bounded window
 * against a 3-node cluster of real processes, then the cluster is healed, every key is
 * read on every member, and the history must be linearizable (registry model).
 *
 * A failure prints the seed, saves the history under test-output/lin/, and prints the
 * command that replays the check and the one that reruns the case. See
 * docs/linearizability.md, "Real clusters under faults"; settings in helpers/lin-env.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseForSeed } from '../scripts/lin/case.js';
import { type LinCluster, startLinCluster } from '../scripts/lin/lin-cluster.js';
import { runCase } from '../scripts/lin/run.js';
import { linSettings, reportRun } from './helpers/lin-env.js';

const TEST_FILE = 'test/lin-faults.test.ts';
const settings = linSettings(5);

describe('linearizability of a real 3-node cluster under generated faults', () => {
  let lc: LinCluster | undefined;

  beforeAll(async () => {
    console.log(`lin-faults: seeds ${settings.seeds.join(', ')} (rerun one with SEED=n), ${settings.durationMs} ms of operations each`);
    lc = await startLinCluster();
  }, 60_000);

  afterAll(async () => {
    await lc?.close();
  }, 60_000);

  for (const seed of settings.seeds) {
    const c = caseForSeed(seed);
    const faults = c.faults.map((f) => `${f.kind}:${f.target}`).join(' ');
    it(`seed ${seed}: ${c.workload.clients.length} clients, ${c.workload.keys} keys; ${faults}`, async () => {
      // A run that left the cluster unsettled gets a fresh cluster for the next one.
      if (!lc) lc = await startLinCluster();
      const result = await runCase(lc.view, c, {
        durationMs: settings.durationMs,
        checkTimeoutMs: 30_000,
        client: { trustWriteReplies: settings.trustWriteReplies },
      });
      const report = await reportRun(result, TEST_FILE, { keep: settings.keepAll, case: c, logs: lc.logTail() });
      console.log(report);
      if (result.notes.laterStateReplies > 0) {
        console.warn(`seed ${seed}: ${result.notes.laterStateReplies} write answers showed a later state than the write's own: ${JSON.stringify(result.notes.laterStateSamples)}`);
      }
      if (!result.settled) {
        await lc.close();
        lc = undefined;
      }
      expect(result.verdict, report).toBe(true);
      expect(result.problems, report).toEqual([]);
      expect(result.notes.unexpected, report).toEqual({});
      // The workload made progress, and the healed cluster answers every final read.
      expect(result.windowStats.ok, report).toBeGreaterThan(0);
      expect(result.finalReads.ok, report).toBe(result.finalReads.total);
    }, 120_000);
  }
});
