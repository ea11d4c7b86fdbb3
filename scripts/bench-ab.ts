/**
 * A/B of two builds of Rollcall on this machine, whose speed drifts by a third from one
 * minute to the next: each build gets its own 3-node cluster, and short measured rounds
 * alternate between them (A, B, A, B, ...), so both see the same moments. Per build: the
 * median and best rate, and the median CPU per operation over the three nodes (from
 * /proc), which moves least; then the ratio B / A of the medians.
 *
 *   npm run build && node dist/scripts/bench-ab.js --a DIR --b DIR [--workload W]
 *       [--rounds 5] [--seconds 3] [--connections 64]
 *
 *   --a, --b       checkouts with `dist/` built (e.g. `git worktree add --detach /tmp/a REV`,
 *                  a symlink to node_modules, `npx tsc -p tsconfig.json`)
 *   --workload     writes (to the leader, default), follower-writes, lin-reads or ser-reads
 *                  (on a follower)
 *
 * Loopback only; every process started is stopped at the end.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runLoad, type Target, targetOf } from './bench/loadgen.js';
import { cpuSeconds } from './bench/procs.js';
import { median } from './bench/stats.js';
import { payloadOf, RollcallSystem } from './bench/systems.js';
import { WRITE_KEYS } from './bench/workloads.js';
import type { LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    workload: { type: 'string', default: 'writes' },
    rounds: { type: 'string', default: '5' },
    seconds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '64' },
  },
});

const WORKLOADS = ['writes', 'follower-writes', 'lin-reads', 'ser-reads'] as const;
type Workload = (typeof WORKLOADS)[number];

function fail(message: string): never {
  process.stderr.write(`bench-ab: ${message}\n`);
  process.exit(2);
}

if (!values.a || !values.b) fail('give both builds: --a DIR --b DIR');
const workload = values.workload as Workload;
if (!WORKLOADS.includes(workload)) fail(`--workload: one of ${WORKLOADS.join(', ')}`);
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const connections = Number(values.connections);
if (!(rounds >= 1 && seconds > 0 && connections >= 1)) fail('--rounds, --seconds and --connections must be positive');

const progress = (line: string) => process.stderr.write(`${line}\n`);

interface Build {
  readonly name: 'A' | 'B';
  readonly dir: string;
  readonly sys: RollcallSystem;
  readonly target: Target;
  readonly rates: number[];
  readonly cpuPerOp: number[];
  /** Per round, ms: what a 1-connection change is judged by (the rate there is 1 / mean latency). */
  readonly p50s: number[];
  readonly p99s: number[];
}

const SPACE = 'ab';
const PAYLOAD = payloadOf(256);

function requestFor(sys: RollcallSystem): (seq: number, conn: number) => Buffer {
  if (workload === 'writes' || workload === 'follower-writes')
    return (seq, conn) => sys.write(SPACE, (seq * 64 + conn) % WRITE_KEYS, PAYLOAD);
  const serializable = workload === 'ser-reads';
  return (seq, conn) => sys.read(SPACE, (seq * 7 + conn) % WRITE_KEYS, serializable);
}

async function startBuild(name: 'A' | 'B', dir: string): Promise<Build> {
  const abs = path.resolve(dir);
  const mod = (await import(pathToFileURL(path.join(abs, 'dist/scripts/local-cluster.js')).href)) as {
    LocalCluster: typeof LocalCluster;
  };
  const sys = RollcallSystem.over(await mod.LocalCluster.start({ size: 3, logLevel: 'warn' }));
  const leader = await sys.leader(20_000);
  const via = workload === 'writes' ? leader : (leader + 1) % sys.size;
  const target = targetOf(sys.url(via));
  // Every run starts from the same state: the keys exist (reads find them, writes overwrite).
  const prefill = await runLoad({
    targets: [targetOf(sys.url(leader))],
    connections: 64,
    durationMs: 60_000,
    maxRequests: WRITE_KEYS,
    request: (seq) => sys.write(SPACE, seq, PAYLOAD),
  });
  if (prefill.ok < WRITE_KEYS) throw new Error(`${name}: prefill wrote ${prefill.ok} of ${WRITE_KEYS} keys`);
  // Warm-up (JIT, caches) before anything is measured.
  await runLoad({ targets: [target], connections, durationMs: 3000, request: requestFor(sys) });
  progress(
    `${name}: ${abs} — cluster up, ${workload} through ${sys.cluster.nodes[via]!.id}${via === leader ? ' (leader)' : ' (follower)'}`,
  );
  return { name, dir: abs, sys, target, rates: [], cpuPerOp: [], p50s: [], p99s: [] };
}

async function measure(build: Build): Promise<void> {
  const cpu = () => build.sys.pids().reduce<number>((sum, pid) => sum + (pid === undefined ? 0 : cpuSeconds(pid)), 0);
  const before = cpu();
  const res = await runLoad({
    targets: [build.target],
    connections,
    durationMs: seconds * 1000,
    request: requestFor(build.sys),
  });
  const after = cpu();
  build.rates.push(res.ok / seconds);
  build.cpuPerOp.push(((after - before) / Math.max(1, res.ok)) * 1e6);
  build.p50s.push(res.latency.p50);
  build.p99s.push(res.latency.p99);
}

const builds: Build[] = [];
try {
  builds.push(await startBuild('A', values.a));
  builds.push(await startBuild('B', values.b));
  for (let round = 1; round <= rounds; round++) {
    // Alternate which build goes first, so neither always follows the other.
    const order = round % 2 === 1 ? builds : [...builds].reverse();
    for (const b of order) await measure(b);
    const line = builds
      .map(
        (b) =>
          `${b.name} ${b.rates.at(-1)!.toFixed(0)}/s ${b.cpuPerOp.at(-1)!.toFixed(0)} µs/op p50 ${b.p50s.at(-1)!.toFixed(3)} p99 ${b.p99s.at(-1)!.toFixed(3)} ms`,
      )
      .join(', ');
    progress(`round ${round}/${rounds}: ${line}`);
  }
  const [a, b] = builds as [Build, Build];
  const row = (x: Build) =>
    `| ${x.name} | ${median(x.rates).toFixed(0)} | ${Math.max(...x.rates).toFixed(0)} | ${median(x.cpuPerOp).toFixed(0)} | ${Math.min(...x.cpuPerOp).toFixed(0)} | ${median(x.p50s).toFixed(3)} | ${median(x.p99s).toFixed(3)} |`;
  process.stdout.write(
    [
      `${workload}, ${connections} connections, ${rounds} alternating rounds of ${seconds} s`,
      '',
      '| build | rate, median (/s) | rate, best | CPU per op, median (µs, 3 nodes) | CPU per op, best | p50, median (ms) | p99, median (ms) |',
      '|---|---:|---:|---:|---:|---:|---:|',
      row(a),
      row(b),
      '',
      `B / A: rate ${(median(b.rates) / median(a.rates)).toFixed(2)}×, CPU per op ${(median(b.cpuPerOp) / median(a.cpuPerOp)).toFixed(2)}×, p50 ${(median(b.p50s) / median(a.p50s)).toFixed(2)}×, p99 ${(median(b.p99s) / median(a.p99s)).toFixed(2)}×`,
      '',
    ].join('\n'),
  );
} finally {
  for (const b of builds) await b.sys.close();
}
