/**
 * The harness can fail: serializable reads on a follower cut off by the fault hook, while
 * writes go on through the majority, return stale instances, and the checker must say
 * so; the same when the proxies on the peer links cut it off (so a netsplit is a real
 * partition). The same scenario with linearizable reads stays linearizable (the cut-off
 * follower cannot reach the leader for a ReadIndex, so its reads fail or time out).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LinCluster, startLinCluster } from '../scripts/lin/lin-cluster.js';
import { runStaleReads, STALE_READERS } from '../scripts/lin/stale-reads.js';
import { linSettings, reportRun } from './helpers/lin-env.js';

const TEST_FILE = 'test/lin-stale-reads.test.ts';
const settings = linSettings(1);
const seed = settings.seeds[0]!;

describe('the linearizability harness on a real cluster', () => {
  let lc: LinCluster | undefined;

  beforeAll(async () => {
    lc = await startLinCluster();
  }, 60_000);

  afterAll(async () => {
    await lc?.close();
  }, 60_000);

  it('catches stale serializable reads on an isolated follower', async () => {
    const result = await runStaleReads(lc!.view, { seed, consistency: 'serializable' });
    const report = await reportRun(result, TEST_FILE, {
      keep: true,
      logs: lc!.logTail(),
      name: `stale-serializable-${seed}`,
    });
    console.log(`${result.isolated} was cut off\n${report}`);
    expect(result.problems, report).toEqual([]);
    expect(result.verdict, report).toBe(false);
    const stuck = result.check.failure!.stuck;
    expect(stuck.f, report).toBe('get');
    expect(STALE_READERS as readonly (number | string)[], report).toContain(stuck.process);
  }, 90_000);

  it('catches them when the proxies on the peer links cut the follower off (a real partition)', async () => {
    const result = await runStaleReads(lc!.view, { seed, consistency: 'serializable', cut: 'proxy' });
    const report = await reportRun(result, TEST_FILE, {
      keep: true,
      logs: lc!.logTail(),
      name: `stale-netsplit-${seed}`,
    });
    console.log(`${result.isolated} was cut off by the proxies\n${report}`);
    expect(
      result.faults.map((f) => f.kind),
      report,
    ).toEqual(['netsplit']);
    expect(result.problems, report).toEqual([]);
    expect(result.verdict, report).toBe(false);
    expect(STALE_READERS as readonly (number | string)[], report).toContain(result.check.failure!.stuck.process);
  }, 90_000);

  it('finds no violation when the same reads are linearizable', async () => {
    const result = await runStaleReads(lc!.view, { seed, consistency: 'linearizable' });
    const report = await reportRun(result, TEST_FILE, {
      keep: settings.keepAll,
      logs: lc!.logTail(),
      name: `stale-linearizable-${seed}`,
    });
    console.log(`${result.isolated} was cut off\n${report}`);
    expect(result.problems, report).toEqual([]);
    expect(result.verdict, report).toBe(true);
    // The writes went on through the majority while the follower was cut off.
    expect(result.stats.byF.register?.ok ?? 0, report).toBeGreaterThan(5);
  }, 90_000);
});
