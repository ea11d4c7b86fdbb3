/**
 * Restart to ready from a prepared data set, without registering through HTTP each time
 * (issue 21: a million instances take ~10 minutes to register; their restart ~30 s).
 *
 *   npm run build
 *   node dist/scripts/bench-restart.js --prepare DIR [--instances 1000000] [--shape scale|restart]
 *   node dist/scripts/bench-restart.js --data DIR [--rounds 3] [--builds OLD,NEW] [--cpu-prof PROFDIR]
 *
 * `--prepare`: a 3-node cluster (real processes) founded in DIR, one instance registered
 * through HTTP, stopped gracefully; then the same N instances written straight into every
 * node's state machine (`Registry.applyBatch`'s ops, as a node writes them, without the applied
 * index: the Raft log stays as it was, the registry's revision moves on). `--shape scale`:
 * the scale run's ~100-byte instances, the first 10,000 in service `big`, the rest ~100 per
 * service; `--shape restart`: `npm run bench`'s restart workload (one service, a 256-byte
 * metadata value).
 *
 * `--data`: per round and per build (the order alternates between rounds), a copy of DIR,
 * all three nodes started at once, until a linearizable read of the HTTP-registered instance
 * succeeds on every node. Prints per start: processes up (every node printed its ready line)
 * and ready (wall, ms), and each node's CPU to ready (user + system, /proc). `--builds`: the
 * repository roots whose dist/ to run (default: this one). `--cpu-prof DIR`: the V8 profiler
 * on the nodes (cpu-prof-preload.ts), which are then stopped gracefully so it writes.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { smStore, writeStateOps } from '../src/node/state-store.js';
import type { AppliedEntry, BatchOp, Command } from '../src/registry/index.js';
import { Registry } from '../src/registry/index.js';
import { openNodeDatabase } from '../src/storage/index.js';
import { instanceBody, instancePlacement } from './bench/scale.js';
import { payloadOf } from './bench/systems.js';
import { LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    prepare: { type: 'string' },
    data: { type: 'string' },
    instances: { type: 'string', default: '1000000' },
    shape: { type: 'string', default: 'scale' },
    rounds: { type: 'string', default: '3' },
    builds: { type: 'string' },
    'cpu-prof': { type: 'string' },
  },
});

const NS = 'bench';
/** The instance registered through HTTP, read to tell a node is ready. */
const PROBE = { service: 'probe', id: 'p0' };
const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const t0 = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

function command(k: number, n: number, shape: string, payload: string): Command {
  if (shape === 'restart')
    return {
      type: 'register',
      namespace: NS,
      service: 'restart',
      id: `k${String(k).padStart(7, '0')}`,
      address: '10.0.0.1',
      port: 8080,
      metadata: { p: payload },
    };
  const { service, id } = instancePlacement(k, n);
  const body = JSON.parse(instanceBody(k)) as { address: string; port: number; tags: string[]; metadata: object };
  return {
    type: 'register',
    namespace: NS,
    service,
    id,
    address: body.address,
    port: body.port,
    tags: body.tags,
    metadata: body.metadata as Record<string, string>,
  };
}

async function prepare(dir: string, n: number, shape: string): Promise<void> {
  const cluster = await LocalCluster.start({ size: 3, dataRoot: dir, logLevel: 'warn' });
  try {
    for (;;) {
      const res = await fetch(
        `${cluster.nodes[0]!.url}/v1/namespaces/${NS}/services/${PROBE.service}/instances/${PROBE.id}`,
        { method: 'PUT', headers: { 'content-type': 'application/json' }, body: instanceBody(0) },
      ).catch(() => null);
      if (res?.status === 200 || res?.status === 201) break;
      await sleep(100);
    }
    // Every node applied it: a linearizable read through each.
    for (const node of cluster.nodes) await waitReadable(node.url, 30_000);
  } finally {
    await cluster.close(true);
  }
  const payload = payloadOf(256);
  for (const node of cluster.nodes) {
    const db = await openNodeDatabase(node.dataDir);
    const registry = await Registry.open(smStore(db));
    let index = registry.appliedIndex;
    const BATCH = 1000;
    for (let at = 0; at < n; at += BATCH) {
      const entries: AppliedEntry[] = [];
      for (let k = at; k < Math.min(n, at + BATCH); k++)
        entries.push({ index: ++index, term: registry.appliedTerm, command: command(k, n, shape, payload) });
      const { ops } = registry.applyBatch(entries);
      // The Raft log ends where it ended: the applied index on disk must not pass it.
      await writeStateOps(
        db,
        ops.filter((op: BatchOp) => op.key !== '\x00meta/applied'),
      );
    }
    await db.db.close();
    progress(`${node.id}: ${n} instances written`);
  }
}

async function waitReadable(url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${url}/v1/namespaces/${NS}/services/${PROBE.service}/instances/${PROBE.id}`, {
      signal: AbortSignal.timeout(1000),
    }).catch(() => null);
    if (res !== null) await res.arrayBuffer();
    if (res?.status === 200) return;
    if (performance.now() > deadline) throw new Error(`${url} not readable within ${timeoutMs} ms`);
    await sleep(20);
  }
}

function cpuMs(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then((stat) => {
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100;
  });
}

async function startOnce(data: string, root: string, profDir: string | undefined) {
  const copy = await mkdtemp(path.join(tmpdir(), 'rollcall-restart-'));
  await cp(data, copy, { recursive: true });
  const preload = pathToFileURL(path.join(root, 'dist/scripts/bench/cpu-prof-preload.js')).href;
  const started = performance.now();
  const phases: string[] = [];
  const cluster = await LocalCluster.start({
    size: 3,
    dataRoot: copy,
    logLevel: 'warn',
    startTimeoutMs: 600_000,
    cliPath: () => path.join(root, 'dist/src/cli/main.js'),
    onLog: (id, line) => {
      // ROLLCALL_PHASES=1: lines a build instrumented by hand writes at each step of its start.
      if (line.startsWith('{"phase"')) phases.push(`${id} ${line}`);
      else if (/"level":(40|50|60)/.test(line)) progress(`  ${id}: ${line.slice(0, 300)}`);
    },
    ...(profDir === undefined ? {} : { env: { NODE_OPTIONS: `--import ${preload}`, ROLLCALL_CPU_PROF_DIR: profDir } }),
  });
  const upMs = performance.now() - started;
  const cpu: number[] = [];
  try {
    await Promise.all(
      cluster.nodes.map(async (node, i) => {
        await waitReadable(node.url, 120_000);
        cpu[i] = await cpuMs(node.proc!.pid!);
      }),
    );
    const readyMs = performance.now() - started;
    return { upMs, readyMs, cpu, phases };
  } finally {
    await cluster.close(profDir !== undefined);
    await rm(copy, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (values.prepare !== undefined) {
    await prepare(path.resolve(values.prepare), Number(values.instances), values.shape);
    return;
  }
  if (values.data === undefined) throw new Error('--prepare DIR or --data DIR');
  const data = path.resolve(values.data);
  const roots = (values.builds ?? path.resolve(here, '../..')).split(',').map((r) => path.resolve(r));
  const profDir = values['cpu-prof'] === undefined ? undefined : path.resolve(values['cpu-prof']);
  for (let round = 0; round < Number(values.rounds); round++) {
    const order = round % 2 === 0 ? roots : [...roots].reverse();
    for (const root of order) {
      const load = (await readFile('/proc/loadavg', 'utf8')).split(' ')[0];
      const r = await startOnce(data, root, profDir);
      console.log(
        JSON.stringify({
          round,
          build: root,
          load,
          upMs: Math.round(r.upMs),
          readyMs: Math.round(r.readyMs),
          cpuMs: r.cpu.map(Math.round),
        }),
      );
      for (const line of r.phases) progress(line);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
