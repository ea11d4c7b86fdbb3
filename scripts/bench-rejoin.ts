/**
 * A follower rejoining a large registry after the log moved past it: how long until it is
 * ready, what the snapshot costs on each side, and how writes to the leader fare meanwhile.
 * Rollcall only (etcd keeps 100,000 entries before it snapshots, so the same gap never
 * makes it send one).
 *
 *   npm run build && node dist/scripts/bench-rejoin.js [--instances 100000] [--behind 12000]
 *
 * 1. a 3-node cluster on loopback (temporary directories), `--instances` registered at 64
 *    connections through the leader;
 * 2. a follower is killed (SIGKILL) and `--behind` more writes go through the leader, more
 *    than the log tail it keeps (5,000), so the follower can only catch up by snapshot;
 * 3. 4 connections keep writing to the leader while the follower restarts; the script
 *    waits for the follower's /readyz.
 *
 * Prints: time to process up and to ready, the snapshot's size, the follower's install
 * (LevelDB + WAL, registry reload, from its log) and the writes' p50/p99/max meanwhile.
 * Progress goes to stderr; every process started is stopped at the end.
 */
import { parseArgs } from 'node:util';
import { runLoad, targetOf } from './bench/loadgen.js';
import { summarize } from './bench/stats.js';
import { payloadOf, RollcallSystem } from './bench/systems.js';
import { LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '100000' },
    behind: { type: 'string', default: '12000' },
  },
});
const instances = Number(values.instances);
const behind = Number(values.behind);
if (!Number.isInteger(instances) || instances < 1) throw new Error('--instances: a positive integer');
if (!Number.isInteger(behind) || behind < 1) throw new Error('--behind: a positive integer');

const t0 = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const PAYLOAD = payloadOf(256);
/** A progress line every 5 s of a long load. */
const every5s = (of: number) => (p: { elapsedMs: number; ok: number }) => {
  if (Math.floor(p.elapsedMs / 1000) % 5 === 0)
    progress(`  ${p.ok.toLocaleString('en-US')} of ${of.toLocaleString('en-US')}`);
};

interface Logged {
  readonly id: string;
  readonly line: string;
}
const logs: Logged[] = [];

progress('starting a 3-node cluster');
const cluster = await LocalCluster.start({ size: 3, logLevel: 'info', onLog: (id, line) => logs.push({ id, line }) });
const sys = RollcallSystem.over(cluster);
/** Set to end the background writes early (an error while they run). */
let stopWriting = false;
let during: ReturnType<typeof runLoad> | undefined;
try {
  const leader = await sys.leader(20_000);
  const follower = (leader + 1) % sys.size;
  const leaderTarget = [targetOf(sys.url(leader))];
  /** `count` registrations in `space` through the leader; every one must succeed. */
  const writeAll = async (space: string, count: number, connections: number): Promise<void> => {
    const res = await runLoad({
      targets: leaderTarget,
      connections,
      durationMs: 600_000,
      maxRequests: count,
      timeoutMs: 20_000,
      onTick: every5s(count),
      request: (seq) => sys.write(space, seq, PAYLOAD),
      inspect: (status) => status === 200,
    });
    if (res.ok < count) throw new Error(`${space}: only ${res.ok} of ${count} writes succeeded`);
  };
  progress(
    `registering ${instances.toLocaleString('en-US')} instances through the leader (${cluster.nodes[leader]!.id})`,
  );
  await writeAll('rejoin', instances, 64);

  progress(`killing follower ${cluster.nodes[follower]!.id}; ${behind.toLocaleString('en-US')} more writes without it`);
  await sys.kill(follower);
  await writeAll('rejoin-more', behind, 16);

  progress('restarting the follower while 4 connections keep writing to the leader');
  let ready: number | null = null;
  during = runLoad({
    targets: leaderTarget,
    connections: 4,
    durationMs: 600_000,
    timeoutMs: 20_000,
    record: true,
    request: (seq) => sys.write('rejoin-during', seq % 1000, PAYLOAD),
    inspect: (status) => status === 200,
    until: () => ready !== null || stopWriting,
  });
  await sleep(1000);
  const restartAt = performance.now();
  await cluster.restart(cluster.nodes[follower]!.id);
  const upMs = performance.now() - restartAt;
  progress(`follower process up after ${(upMs / 1000).toFixed(1)} s; waiting for its /readyz`);
  const deadline = restartAt + 300_000;
  while (ready === null) {
    if (performance.now() > deadline) throw new Error('the follower was not ready 300 s after its restart');
    try {
      const res = await fetch(`${sys.url(follower)}/readyz`, { signal: AbortSignal.timeout(5000) });
      if (res.status === 200) ready = performance.now() - restartAt;
    } catch {
      /* still starting or busy installing */
    }
    if (ready === null) await sleep(50);
  }
  const writes = await during;
  // Log lines come through a pipe: give the last ones a moment.
  await sleep(500);

  const field = (line: string, name: string): number | undefined => {
    const m = line.match(new RegExp(`"${name}":(\\d+)`));
    return m ? Number(m[1]) : undefined;
  };
  const sent = logs.find((l) => l.line.includes('sending a snapshot'));
  const installed = logs.find((l) => l.id === cluster.nodes[follower]!.id && l.line.includes('installed a snapshot'));
  const latency = summarize(writes.records.map((r) => r.end - r.start));
  const row = (what: string, value: string) => `| ${what} | ${value} |`;
  process.stdout.write(
    [
      `rejoin: ${instances.toLocaleString('en-US')} instances, follower ${behind.toLocaleString('en-US')} writes behind`,
      '',
      '| figure | value |',
      '|---|---:|',
      row('follower process up after restart', `${Math.round(upMs)} ms`),
      row('follower ready (/readyz 200) after restart', `${Math.round(ready)} ms`),
      row(
        'snapshot size',
        sent ? `${((field(sent.line, 'bytes') ?? 0) / 1e6).toFixed(1)} MB` : 'none sent (caught up from the log)',
      ),
      row('follower install: LevelDB batch and WAL', installed ? `${field(installed.line, 'writeMs')} ms` : 'n/a'),
      row('follower install: registry reload', installed ? `${field(installed.line, 'loadMs')} ms` : 'n/a'),
      row('writes to the leader meanwhile', `${writes.ok}`),
      row(
        'their latency p50 / p99 / max',
        `${latency.p50.toFixed(1)} / ${latency.p99.toFixed(1)} / ${latency.max.toFixed(0)} ms`,
      ),
      '',
    ].join('\n'),
  );
} finally {
  stopWriting = true;
  await during?.catch(() => undefined);
  progress('stopping every process');
  await sys.close();
}
