/**
 * Overload: a 3-node cluster on loopback takes far more concurrent requests than it can
 * serve, and a probe asks /healthz all the while, as an orchestrator would, on each node's
 * main port and on its probe listener (--probe-listen, a port and thread of its own).
 * Reports the probe's latency on both, how many requests were shed (503 OVERLOADED), how
 * the rest fared, and whether anyone campaigned (the term on every node before and after).
 *
 *   npm run build && node dist/scripts/bench-overload.js [--connections 2000] [--seconds 20]
 *     [--instances 2000]
 *
 * The load is a mix sent round-robin to every node: linearizable listings of a
 * `--instances`-instance service (mostly), writes, and serializable reads. Bounded in count
 * and time; every process started is stopped at the end.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { buildRequest } from './bench/http1.js';
import { runLoad, targetOf } from './bench/loadgen.js';
import { summarize } from './bench/stats.js';
import { freePort, LocalCluster } from './local-cluster.js';

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
for (const [name, v] of [
  ['--connections', connections],
  ['--seconds', seconds],
  ['--instances', instances],
] as const) {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name}: a positive integer`);
}

const t0 = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);

async function json(url: string, init?: RequestInit): Promise<any> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return r.json();
}

/**
 * Asks /healthz every 50 ms on every node's main port and probe port until SIGTERM, then
 * prints the latencies (ms) per kind of port as JSON, and how many probes failed (an error,
 * a timeout, counted as 10,000 ms, or an answer other than 200: an orchestrator's failure).
 */
const PROBE = `
const targets = JSON.parse(process.argv[1]);
const out = { main: { ms: [], failed: 0 }, probe: { ms: [], failed: 0 } };
let on = true;
process.on('SIGTERM', () => { on = false; });
await Promise.all(targets.map(async ({ kind, url }) => {
  while (on) {
    const at = performance.now();
    try {
      const r = await fetch(url + '/healthz', { signal: AbortSignal.timeout(10000) });
      await r.arrayBuffer();
      out[kind].ms.push(performance.now() - at);
      if (r.status !== 200) out[kind].failed++;
    } catch { out[kind].ms.push(10000); out[kind].failed++; }
    await new Promise((r) => setTimeout(r, 50));
  }
}));
process.stdout.write(JSON.stringify(out));
`;

progress('starting a 3-node cluster');
const probePorts = [await freePort(), await freePort(), await freePort()];
const cluster = await LocalCluster.start({
  size: 3,
  logLevel: 'warn',
  shedOnLag: true,
  nodeEnv: (id) => ({ ROLLCALL_PROBE_LISTEN: `127.0.0.1:${probePorts[Number(id.slice(1)) - 1]}` }),
});
try {
  const urls = cluster.nodes.map((n) => n.url);
  const probeUrls = probePorts.map((p) => `http://127.0.0.1:${p}`);
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
      buildRequest({
        method: 'PUT',
        path: `/v1/namespaces/load/services/big/instances/i${seq}`,
        host: '127.0.0.1',
        body: JSON.stringify({ address: '10.9.0.1', port: 1 + (seq % 60000) }),
      }),
  });
  if (loaded.ok < instances) throw new Error(`only ${loaded.ok} of ${instances} registrations succeeded`);
  // The machine may be shared: what else ran is part of the result.
  const loadBefore = loadavg().map((l) => +l.toFixed(2));
  const termsBefore = await Promise.all(urls.map(async (u) => (await json(`${u}/v1/cluster`)).term as number));

  progress(
    `${connections} connections for ${seconds} s, /healthz probed every 50 ms on every node's main port and probe port`,
  );
  // The probe runs in a process of its own, as an orchestrator's would: the load
  // generator's own event loop must not count against the node's answer time.
  const targets = [...urls.map((url) => ({ kind: 'main', url })), ...probeUrls.map((url) => ({ kind: 'probe', url }))];
  const prober = spawn(process.execPath, ['--input-type=module', '-e', PROBE, JSON.stringify(targets)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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
      if (kind < 6)
        return buildRequest({ method: 'GET', path: '/v1/namespaces/load/services/big/instances', host: '127.0.0.1' });
      if (kind < 8)
        return buildRequest({
          method: 'GET',
          path: '/v1/namespaces/load/services/big/instances?consistency=serializable',
          host: '127.0.0.1',
        });
      return buildRequest({
        method: 'PUT',
        path: `/v1/namespaces/load/services/w/instances/c${conn}`,
        host: '127.0.0.1',
        body: JSON.stringify({ address: '10.9.0.2', port: 1 + (seq % 60000) }),
      });
    },
    onTick: (p) => {
      if (Math.floor(p.elapsedMs / 1000) % 5 === 0) progress(`  ${p.ok} ok, ${p.errors} errors`);
    },
  });
  prober.kill('SIGTERM');
  await proberDone;
  type Probed = { ms: number[]; failed: number };
  const probe = JSON.parse(probeOut) as { main: Probed; probe: Probed };
  const termsAfter = await Promise.all(urls.map(async (u) => (await json(`${u}/v1/cluster`)).term as number));
  const latency = ({ ms, failed }: Probed) => {
    const s = summarize(ms);
    return { p50: +s.p50.toFixed(1), p99: +s.p99.toFixed(1), max: +s.max.toFixed(1), probes: s.count, failed };
  };
  const report = {
    connections,
    seconds,
    instances,
    // The main port (--listen) and the probe listener (--probe-listen).
    healthzMs: { mainPort: latency(probe.main), probePort: latency(probe.probe) },
    requests: {
      sent: load.sent,
      ok: load.ok,
      statuses: load.statuses,
      timeouts: load.timeouts,
      okLatencyMs: {
        p50: +load.latency.p50.toFixed(1),
        p99: +load.latency.p99.toFixed(1),
        max: +load.latency.max.toFixed(1),
      },
    },
    elections: Math.max(...termsAfter.map((t, i) => t - termsBefore[i]!)),
    loadAverage: { before: loadBefore, after: loadavg().map((l) => +l.toFixed(2)) },
  };
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
} finally {
  await cluster.close();
}
