/**
 * `npm run bench:dns`: DNS queries per second on one Rollcall node against a floor, a
 * trivial dns-packet UDP server on the same machine (scripts/bench/dns-floor.ts) that
 * answers the same records without looking anything up. Both are separate processes on
 * 127.0.0.1, asked the same A question (`web.service.consul`, `--instances` records in the
 * answer) by the same closed-loop client (scripts/bench/dns-load.ts), in alternating rounds;
 * the figure is the median of the node's rounds over the median of the floor's. Goal:
 * ≥ 0.7× the floor (issue 17; docs/benchmarks.md, "DNS"). Beside it, the CPU time each
 * server process spent per answered query (from /proc): on a machine shared with other
 * work, queries per second move with the neighbours, CPU per query much less.
 *
 *   npm run bench:dns -- [--instances 3] [--rounds 3] [--seconds 5] [--queries 300000] [--window 64]
 *
 * Bounded: each round stops at `--queries` answers or `--seconds`, whichever is first, and
 * the whole run gives up after a few minutes. Every process it starts is stopped at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decode, encode, RECURSION_DESIRED } from 'dns-packet';
import { type DnsLoadResult, runDnsLoad } from './bench/dns-load.js';
import { cpuSeconds } from './bench/procs.js';
import { freePort, LocalCluster } from './local-cluster.js';

const GOAL = 0.7;
const WATCHDOG_MS = 5 * 60_000;
/** Stops what main started; the watchdog calls it too. */
let cleanup: () => Promise<void> = async () => {};

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '5' },
      queries: { type: 'string', default: '300000' },
      window: { type: 'string', default: '64' },
    },
  });
  const instances = Number(values.instances);
  const rounds = Number(values.rounds);
  const load = { window: Number(values.window), maxQueries: Number(values.queries), ms: Number(values.seconds) * 1000 };
  const query = encode({
    id: 0,
    type: 'query',
    flags: RECURSION_DESIRED,
    questions: [{ type: 'A', name: 'web.service.consul', class: 'IN' }],
  });

  const dnsPort = await freePort();
  const cluster = await LocalCluster.start({
    size: 1,
    logLevel: 'warn',
    nodeEnv: () => ({ ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPort}` }),
  });
  let floor: ChildProcess | null = null;
  cleanup = async () => {
    if (floor !== null && floor.exitCode === null) {
      const exited = new Promise((r) => floor!.once('exit', r));
      floor.kill('SIGTERM');
      await exited;
    }
    await cluster.close();
  };
  try {
    const url = cluster.nodes[0]!.url;
    await until(
      'a leader',
      async () => ((await (await fetch(`${url}/v1/cluster`)).json()) as { leader: string | null }).leader !== null,
    );
    for (let k = 1; k <= instances; k++) {
      const res = await fetch(`${url}/v1/namespaces/default/services/web/instances/w${k}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ address: `10.0.0.${k}`, port: 8080 }),
      });
      if (!res.ok) throw new Error(`register w${k}: ${res.status} ${await res.text()}`);
    }
    await until('DNS answering every instance', async () => (await answerCount(dnsPort, query)) === instances);
    const started = await startFloor(instances);
    floor = started.proc;
    if ((await answerCount(started.port, query)) !== instances)
      throw new Error('the floor does not answer as the node does');

    console.log(
      `one node, DNS on 127.0.0.1:${dnsPort}; floor on 127.0.0.1:${started.port}; ${instances} A records per answer, window ${load.window}`,
    );
    // Warm both up (JIT, socket buffers) before anything counts.
    await runDnsLoad({ port: dnsPort, query, ...load, ms: 2000 });
    await runDnsLoad({ port: started.port, query, ...load, ms: 2000 });
    const nodePid = cluster.nodes[0]!.proc?.pid;
    const node: Round[] = [];
    const base: Round[] = [];
    for (let r = 1; r <= rounds; r++) {
      base.push(await measured(started.proc.pid, () => runDnsLoad({ port: started.port, query, ...load })));
      node.push(await measured(nodePid, () => runDnsLoad({ port: dnsPort, query, ...load })));
      console.log(`round ${r}: floor ${fmt(base.at(-1)!)}, node ${fmt(node.at(-1)!)}`);
    }
    const nodeQps = median(node.map((x) => x.perSecond));
    const floorQps = median(base.map((x) => x.perSecond));
    const ratio = nodeQps / floorQps;
    const nodeCpuUs = median(node.map((x) => x.cpuUsPerQuery));
    const floorCpuUs = median(base.map((x) => x.cpuUsPerQuery));
    console.log('');
    console.log(
      `DNS queries/s on one node: ${Math.round(nodeQps)}   floor (dns-packet UDP server): ${Math.round(floorQps)}   ratio ${ratio.toFixed(2)}x (goal >= ${GOAL}x: ${ratio >= GOAL ? 'met' : 'NOT met'})`,
    );
    console.log(
      `server CPU per query: node ${nodeCpuUs.toFixed(1)} us, floor ${floorCpuUs.toFixed(1)} us   (floor/node ${(floorCpuUs / nodeCpuUs).toFixed(2)}x)`,
    );
    console.log(
      JSON.stringify({
        bench: 'dns',
        instances,
        window: load.window,
        nodeQps: Math.round(nodeQps),
        floorQps: Math.round(floorQps),
        ratio: Number(ratio.toFixed(3)),
        goal: GOAL,
        nodeCpuUsPerQuery: Number(nodeCpuUs.toFixed(2)),
        floorCpuUsPerQuery: Number(floorCpuUs.toFixed(2)),
        rounds: { node, floor: base },
      }),
    );
    return 0;
  } finally {
    await cleanup();
  }
}

interface Round extends DnsLoadResult {
  /** CPU time (user + system) the server process spent per answered query, in µs. */
  readonly cpuUsPerQuery: number;
}

async function measured(pid: number | undefined, round: () => Promise<DnsLoadResult>): Promise<Round> {
  const before = cpuSeconds(pid);
  const r = await round();
  return { ...r, cpuUsPerQuery: ((cpuSeconds(pid) - before) * 1e6) / Math.max(1, r.answered) };
}

function fmt(r: Round): string {
  return `${Math.round(r.perSecond)} q/s, ${r.cpuUsPerQuery.toFixed(1)} us CPU/query (${r.answered} in ${r.seconds.toFixed(1)} s${r.lost > 0 ? `, ${r.lost} lost` : ''})`;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Answers one query and counts the answer records (0 when no answer). */
async function answerCount(port: number, query: Buffer): Promise<number> {
  const reply = await new Promise<Buffer | null>((resolve) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => socket.close(() => resolve(null)), 1000);
    socket.on('message', (r) => {
      clearTimeout(timer);
      socket.close(() => resolve(r));
    });
    socket.send(query, port, '127.0.0.1');
  });
  return reply === null ? 0 : (decode(reply).answers?.length ?? 0);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function startFloor(records: number): Promise<{ proc: ChildProcess; port: number }> {
  const script = fileURLToPath(new URL('./bench/dns-floor.js', import.meta.url));
  const proc = spawn(process.execPath, [script, '--records', String(records)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const line = buf.split('\n').find((l) => l.startsWith('{"ready":true'));
      if (line !== undefined) resolve((JSON.parse(line) as { port: number }).port);
    });
    proc.once('exit', (code) => reject(new Error(`the floor server exited (code ${code})`)));
  });
  return { proc, port };
}

const watchdog = setTimeout(() => {
  console.error(`bench:dns: gave up after ${WATCHDOG_MS / 1000} s`);
  void cleanup().finally(() => process.exit(2));
}, WATCHDOG_MS);
watchdog.unref();
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
