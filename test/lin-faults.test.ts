/**
 * Property tests of a real cluster: fast-check generates, per seed, a workload for 4-6
 * concurrent clients (registers, unregisters, compare-and-set updates, linearizable
 * reads on the leader and on followers), 2-3 session owners keeping short-TTL sessions
 * alive, and a fault schedule (kill -9 and restart, the leader too; SIGSTOP/SIGCONT;
 * isolation and one-way loss through the fault hook; leadership transfer; adding and
 * removing a member; a crash of every node; removing the leader and bringing it back
 * under a new id with empty data; partitions, one-way cuts and delays made by the TCP
 * proxies on the peer links). Each case runs for a bounded window against a 3-node
 * cluster of real processes, then the cluster is healed, every key is read on every
 * member, and the history must be linearizable (registry model) and no session may have
 * expired while its owner kept it alive (a false expiry).
 *
 * A failure prints the seed, saves the history and the sessions' log under
 * test-output/lin/, and prints the command that replays the check and the one that reruns
 * the case. See docs/linearizability.md, "Real clusters under faults"; settings in
 * helpers/lin-env.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseForSeed } from '../scripts/lin/case.js';
import { describeFault, FAULT_KINDS } from '../scripts/lin/faults.js';
import { type LinCluster, startLinCluster } from '../scripts/lin/lin-cluster.js';
import { rerunCommand } from '../scripts/lin/report.js';
import { runCase } from '../scripts/lin/run.js';
import { linSettings, reportRun } from './helpers/lin-env.js';

const TEST_FILE = 'test/lin-faults.test.ts';
// One case per fault kind (the seed picks the first fault's kind, seed mod the number of
// kinds: scripts/lin/case.ts), so every `npm test` injects every kind, in a 4-s window: the
// first fault starts within 1.2 s and holds at most 2.5 s, so it is injected and undone
// inside it. The long form is LIN_RUNS / LIN_MS here, or `npm run soak` (README, "Tests,
// simulations and benchmarks").
const settings = linSettings(FAULT_KINDS.length, 4000);

describe('linearizability of a real 3-node cluster under generated faults', () => {
  let lc: LinCluster | undefined;

  beforeAll(async () => {
    console.log(
      `lin-faults: seeds ${settings.seeds.join(', ')} (rerun one with SEED=n, more with LIN_RUNS=n), ${settings.durationMs} ms of operations each` +
        `${settings.sessions ? '' : ', no sessions (LIN_SESSIONS=0)'}`,
    );
    lc = await startLinCluster();
  }, 60_000);

  afterAll(async () => {
    await lc?.close();
  }, 60_000);

  for (const seed of settings.seeds) {
    const c = caseForSeed(seed);
    const faults = c.faults.map(describeFault).join(' ');
    const sessions = settings.sessions ? `, ${c.sessions.owners.length} sessions` : '';
    it(`seed ${seed}: ${c.workload.clients.length} clients, ${c.workload.keys} keys${sessions}; ${faults}`, async () => {
      // A run that left the cluster unsettled gets a fresh cluster for the next one.
      if (!lc) lc = await startLinCluster();
      const result = await runCase(lc.view, c, {
        durationMs: settings.durationMs,
        checkTimeoutMs: 30_000,
        client: { trustWriteReplies: settings.trustWriteReplies },
        sessions: settings.sessions,
      });
      const report = await reportRun(result, TEST_FILE, { keep: settings.keepAll, case: c, logs: lc.logTail() });
      console.log(report);
      if (result.notes.laterStateReplies > 0) {
        console.warn(
          `seed ${seed}: ${result.notes.laterStateReplies} write answers showed a later state than the write's own: ${JSON.stringify(result.notes.laterStateSamples)}`,
        );
      }
      if (!result.settled) {
        await lc.close();
        lc = undefined;
      }
      expect(result.verdict, report).toBe(true);
      // A session whose owner kept it alive never expires (see the rule in scripts/lin/session-judge.ts).
      const falseExpiries = result.sessions?.falseExpiries.map((v) => `seed ${seed}: ${v.summary}`) ?? [];
      expect(falseExpiries, `false expiries (rerun: ${rerunCommand(seed, TEST_FILE)})\n${report}`).toEqual([]);
      expect(result.problems, report).toEqual([]);
      expect(result.notes.unexpected, report).toEqual({});
      expect(result.sessions?.unexpected ?? {}, report).toEqual({});
      // The workload made progress, and the healed cluster answers every final read.
      expect(result.windowStats.ok, report).toBeGreaterThan(0);
      expect(result.finalReads.ok, report).toBe(result.finalReads.total);
    }, 120_000);
  }
});
