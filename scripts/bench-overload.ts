/**
 * Overload: a 3-node cluster on loopback takes far more concurrent requests than it can
 * serve, and a probe asks /healthz all the while, as an orchestrator would. Reports the
 * probe's latency, how many requests were shed (503 OVERLOADED), how the rest fared, and
 * whether anyone campaigned (the term on every node before and after).
 *
 *   npm run build && node dist/scripts/bench-overload.js [--connections 2000] [--seconds 20]
 *     [--instances 2000]
 *
 * The load is a mix sent round-robin to every node: linearizable listings of a
 * `--instances`-instance service (mostly), writes, and serializable reads. Bounded in count
 * and time; every process started is stopped at the end.
 */
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { buildRequest } from './bench/http1.js';
import { runLoad, targetOf } from './bench/loadgen.js';
import { summarize } from './bench/stats.js';
import { LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '20' },
    instances: { type: 'string', default: '2000' },
  },
});
const connections = Number(values.connections);
const seconds = Number(values.seconds);
const instances = Number(values.instances);
for (const [name, v] of [['--connections', connections], ['--seconds', seconds], ['--instances', instances]] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: a positive integer`);
}

const t0 = performance.now();
const progress = (line: string) => process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

async function json(url: string, init?: RequestInit): Promise<any> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return r.json();
}

/** Asks every node's /healthz every 50 ms until SIGTERM, then prints the latencies (ms) as JSON. */
const PROBE = `
const urls = process.argv.slice(1);
const out = [];
let on = true;
process.on('SIGTERM', () => { on = false; });
await Promise.all(urls.map(async (u) => {
  while (on) {
    const at = performance.now();
    try { await fetch(u + '/healthz', { signal: AbortSignal.timeout(10000) }); out.push(performance.now() - at); } catch { out.push(10000); }
    await new Promise((r) => setTimeout(r, 50));
  }
}));
process.stdout.write(JSON.stringify(out));
`;

progress('starting a 3-node cluster');
const cluster = await LocalCluster.start({ size: 3, logLevel: 'warn', shedOnLag: true });
try {
  const urls = cluster.nodes.map((n) => n.url);
  let leader: string | null = null;
  for (let i = 0; i < 200 && !leader; i++) {
    leader = (await json(`${urls[0]}/v1/cluster`)).leader as string | null;
    if (!leader) await new Promise((r) => setTimeout(r, 100));
  }
  progress(`registering ${instances} instances`);
  const loaded = await runLoad({
    targets: [targetOf(urls[0]!)],
    connections: 32,
    durationMs: 120_000,
    maxRequests: instances,
    request: (seq) =>
      buildRequest({ method: 'PUT', path: `/v1/namespaces/load/services/big/instances/i${seq}`, host: '127.0.0.1', body: JSON.stringify({ address: '10.9.0.1', port: 1 + (seq % 60000) }) }),
  });
  if (loaded.ok < instances) throw new Error(`only ${loaded.ok} of ${instances} registrations succeeded`);
  const termsBefore = await Promise.all(urls.map(async (u) => (await json(`${u}/v1/cluster`)).term as number));

  progress(`${connections} connections for ${seconds} s, /healthz probed every 50 ms on every node`);
  // The probe runs in a process of its own, as an orchestrator's would: the load
  // generator's own event loop must not count against the node's answer time.
  const prober = spawn(process.execPath, ['--input-type=module', '-e', PROBE, ...urls], { stdio: ['ignore', 'pipe', 'inherit'] });
  let probeOut = '';
  prober.stdout.on('data', (b: Buffer) => (probeOut += b.toString()));
  const proberDone = new Promise<void>((resolve) => prober.on('exit', () => resolve()));
  const load = await runLoad({
    targets: urls.map((u) => targetOf(u)),
    connections,
    durationMs: seconds * 1000,
    timeoutMs: 20_000,
    // Clients that honour Retry-After (1 s), as the SDK does: a shed request comes back later.
    errorBackoffMs: 1000,
    isOk: (s) => s === 200,
    request: (seq, conn) => {
      const kind = seq % 10;
      if (kind < 6) return buildRequest({ method: 'GET', path: '/v1/namespaces/load/services/big/instances', host: '127.0.0.1' });
      if (kind < 8) return buildRequest({ method: 'GET', path: '/v1/namespaces/load/services/big/instances?consistency=serializable', host: '127.0.0.1' });
      return buildRequest({ method: 'PUT', path: `/v1/namespaces/load/services/w/instances/c${conn}`, host: '127.0.0.1', body: JSON.stringify({ address: '10.9.0.2', port: 1 + (seq % 60000) }) });
    },
    onTick: (p) => {
      if (Math.floor(p.elapsedMs / 1000) % 5 === 0) progress(`  ${p.ok} ok, ${p.errors} errors`);
    },
  });
  prober.kill('SIGTERM');
  await proberDone;
  const probe = JSON.parse(probeOut) as number[];
  const termsAfter = await Promise.all(urls.map(async (u) => (await json(`${u}/v1/cluster`)).term as number));
  const healthz = summarize(probe);
  const report = {
    connections,
    seconds,
    instances,
    healthzMs: { p50: +healthz.p50.toFixed(1), p99: +healthz.p99.toFixed(1), max: +healthz.max.toFixed(1), probes: healthz.count },
    requests: { sent: load.sent, ok: load.ok, statuses: load.statuses, timeouts: load.timeouts, okLatencyMs: { p50: +load.latency.p50.toFixed(1), p99: +load.latency.p99.toFixed(1), max: +load.latency.max.toFixed(1) } },
    elections: Math.max(...termsAfter.map((t, i) => t - termsBefore[i]!)),
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  await cluster.close();
}
