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
import { runLoad, targetOf } from './bench/loadgen.js';
import { cpuSeconds } from './bench/procs.js';
import { median } from './bench/stats.js';
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
  readonly cluster: LocalCluster;
  readonly target: { host: string; port: number };
  readonly rates: number[];
  readonly cpuPerOp: number[];
}

const PAD = 'x'.repeat(256);
const KEYS = 10_000;

function writeOf(key: number): Buffer {
  const body = JSON.stringify({ address: '10.0.0.1', port: 80, metadata: { p: PAD } });
  return Buffer.from(
    `PUT /v1/namespaces/bench/services/ab/instances/k${key} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
  );
}

const writeRequest = (seq: number, conn: number): Buffer => writeOf((seq * 64 + conn) % KEYS);

function readRequest(serializable: boolean): (seq: number, conn: number) => Buffer {
  const query = serializable ? '?consistency=serializable' : '';
  return (seq, conn) => Buffer.from(`GET /v1/namespaces/bench/services/ab/instances/k${(seq * 7 + conn) % KEYS}${query} HTTP/1.1\r\nhost: x\r\n\r\n`);
}

const request = workload === 'writes' || workload === 'follower-writes' ? writeRequest : readRequest(workload === 'ser-reads');

async function leaderOf(cluster: LocalCluster): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const r = (await fetch(`${cluster.nodes[0]!.url}/v1/cluster`).then((res) => res.json(), () => ({}))) as { leader?: string | null };
    const at = cluster.nodes.findIndex((n) => n.id === r.leader);
    if (at >= 0) return at;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error('no leader within 20 s');
}

async function startBuild(name: 'A' | 'B', dir: string): Promise<Build> {
  const abs = path.resolve(dir);
  const mod = (await import(pathToFileURL(path.join(abs, 'dist/scripts/local-cluster.js')).href)) as { LocalCluster: typeof LocalCluster };
  const cluster = await mod.LocalCluster.start({ size: 3, logLevel: 'warn' });
  const leader = await leaderOf(cluster);
  const onLeader = workload === 'writes';
  const via = onLeader ? leader : (leader + 1) % 3;
  const target = targetOf(cluster.nodes[via]!.url);
  // Every run starts from the same state: the keys exist (reads find them, writes overwrite).
  const prefill = await runLoad({ targets: [targetOf(cluster.nodes[leader]!.url)], connections: 64, durationMs: 60_000, maxRequests: KEYS, request: (seq) => writeOf(seq) });
  if (prefill.ok < KEYS) throw new Error(`${name}: prefill wrote ${prefill.ok} of ${KEYS} keys`);
  // Warm-up (JIT, caches) before anything is measured.
  await runLoad({ targets: [target], connections, durationMs: 3000, request });
  progress(`${name}: ${abs} — cluster up, ${workload} through ${cluster.nodes[via]!.id}${onLeader ? ' (leader)' : ' (follower)'}`);
  return { name, dir: abs, cluster, target, rates: [], cpuPerOp: [] };
}

async function measure(build: Build): Promise<void> {
  const pids = build.cluster.nodes.map((n) => n.proc?.pid).filter((p): p is number => p !== undefined);
  const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const res = await runLoad({ targets: [build.target], connections, durationMs: seconds * 1000, request });
  const after = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  build.rates.push(res.ok / seconds);
  build.cpuPerOp.push(((after - before) / Math.max(1, res.ok)) * 1e6);
}

const builds: Build[] = [];
try {
  builds.push(await startBuild('A', values.a));
  builds.push(await startBuild('B', values.b));
  for (let round = 1; round <= rounds; round++) {
    // Alternate which build goes first, so neither always follows the other.
    const order = round % 2 === 1 ? builds : [...builds].reverse();
    for (const b of order) await measure(b);
    const line = builds.map((b) => `${b.name} ${b.rates.at(-1)!.toFixed(0)}/s ${b.cpuPerOp.at(-1)!.toFixed(0)} µs/op`).join(', ');
    progress(`round ${round}/${rounds}: ${line}`);
  }
  const [a, b] = builds as [Build, Build];
  const row = (x: Build) => `| ${x.name} | ${median(x.rates).toFixed(0)} | ${Math.max(...x.rates).toFixed(0)} | ${median(x.cpuPerOp).toFixed(0)} | ${Math.min(...x.cpuPerOp).toFixed(0)} |`;
  process.stdout.write(
    [
      `${workload}, ${connections} connections, ${rounds} alternating rounds of ${seconds} s`,
      '',
      '| build | rate, median (/s) | rate, best | CPU per op, median (µs, 3 nodes) | CPU per op, best |',
      '|---|---:|---:|---:|---:|',
      row(a),
      row(b),
      '',
      `B / A: rate ${(median(b.rates) / median(a.rates)).toFixed(2)}×, CPU per op ${(median(b.cpuPerOp) / median(a.cpuPerOp)).toFixed(2)}×`,
      '',
    ].join('\n'),
  );
} finally {
  for (const b of builds) await b.cluster.close();
}
