/**
 * Long simulation campaigns against the Raft core.
 *
 *   npm run sim -- --seeds 10000 [--from 1] [--voters 3|5]
 *
 * Each seed generates one fault schedule (fast-check, seeded) and runs it in the
 * deterministic simulator with every safety check on. Prints progress, a summary,
 * and for each failure the schedule and the command that replays it.
 */
import { parseArgs } from 'node:util';
import fc from 'fast-check';
import { scheduleArb } from '../raft/sim/arbitraries.js';
import { runSchedule, Simulator } from '../raft/sim/index.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
  },
});

const count = values.seed ? 1 : Number(values.seeds);
const from = values.seed ? Number(values.seed) : Number(values.from);
const totals = {
  runs: 0,
  failures: 0,
  events: 0,
  proposed: 0,
  acked: 0,
  readsServed: 0,
  leaderChanges: 0,
  snapshots: 0,
  virtualMs: 0,
};
const started = Date.now();
const failures: string[] = [];

for (let i = 0; i < count; i++) {
  const seed = from + i;
  const [sample] = fc.sample(scheduleArb, { seed, numRuns: 1 });
  if (!sample) continue;
  const sim = new Simulator({
    seed: sample.simSeed,
    nodes: ['n1', 'n2', 'n3', 'n4', 'n5'],
    voters: sample.voters,
    compactEvery: sample.compactEvery,
    maxMessageBytes: sample.maxMessageBytes,
  });
  totals.runs++;
  try {
    runSchedule(sim, sample.actions);
  } catch (err) {
    totals.failures++;
    failures.push(
      `seed ${seed}: ${String(err)}\n  schedule: ${JSON.stringify(sample)}\n  replay: npm run sim -- --seed ${seed}`,
    );
  }
  const st = sim.stats();
  totals.events += st.events;
  totals.proposed += st.proposed;
  totals.acked += st.acked;
  totals.readsServed += st.readsServed;
  totals.leaderChanges += st.leaderChanges;
  totals.snapshots += st.snapshotsInstalled;
  totals.virtualMs += st.time;
  if (process.stderr.isTTY && (i % 25 === 0 || i === count - 1)) {
    process.stderr.write(
      `\r  ${i + 1}/${count} schedules, ${totals.failures} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
}
if (process.stderr.isTTY) process.stderr.write('\n');
for (const f of failures) console.log(f);
console.log(
  JSON.stringify({
    ...totals,
    seeds: `${from}..${from + count - 1}`,
    wallSeconds: Number(((Date.now() - started) / 1000).toFixed(1)),
  }),
);
process.exitCode = totals.failures > 0 ? 1 : 0;
