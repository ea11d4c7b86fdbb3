/**
 * `npm run bench:listing -- --listings N`: issue 21's listing figure on its own. One cluster
 * (`--nodes`, default 1), `--instances` instances in services of 10,000 each (svc-0 ...),
 * then `--listings` full listings of svc-0 on the leader, `--clients` at a time
 * (linearizable), timing each and reading the leader's CPU from /proc before and after:
 * CPU per listing is the figure to judge a change by on a loaded machine (wall-clock
 * percentiles move with whatever else runs). With `--list-all`, every service is then listed
 * once and the leader's RSS read 3 s later (issue 21's memory goal at 100,000 instances).
 * With `--change-between`, one instance of svc-0 (i-0) is registered again before each listing
 * (its CPU counted too), so no listing finds the service as the last one left it.
 */
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LocalCluster } from '../local-cluster.js';
import { bulkRegister, DEFAULT_LOAD, request } from './listing-load.js';

export interface ServiceListingOptions {
  readonly instances: number;
  readonly listings: number;
  readonly clients: number;
  readonly nodes: number;
  readonly listAll: boolean;
  /** Re-register svc-0's i-0 before each listing: every listing then finds the service changed. */
  readonly changeBetween: boolean;
  /** V8 CPU profiles of every node into this directory (cpu-prof-preload.ts: Node refuses --cpu-prof in NODE_OPTIONS). */
  readonly cpuProf?: string | undefined;
}

export interface ServiceListingResult {
  readonly instances: number;
  readonly services: number;
  readonly listings: number;
  readonly clients: number;
  readonly changeBetween: boolean;
  readonly bytes: number;
  readonly cpuMsPerListing: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly rssMbAfterListingAll: number | null;
}

/** utime + stime of a process, in ms (Linux /proc). */
function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export async function serviceListing(o: ServiceListingOptions): Promise<ServiceListingResult> {
  const services = Math.max(1, Math.ceil(o.instances / 10_000));
  const load = { ...DEFAULT_LOAD, instances: o.instances, services, writers: 64 };
  const cluster = await LocalCluster.start({
    size: o.nodes,
    logLevel: 'warn',
    env:
      o.cpuProf === undefined
        ? {}
        : {
            NODE_OPTIONS: `--import ${pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'cpu-prof-preload.js')).href}`,
            ROLLCALL_CPU_PROF_DIR: path.resolve(o.cpuProf),
          },
  });
  try {
    const leader = await findLeader(cluster);
    const pid = leader.proc!.pid!;
    process.stderr.write(`registering ${o.instances} instances in ${services} services\n`);
    await bulkRegister(leader.url, load);
    const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients });
    const url = `${leader.url}/v1/namespaces/${load.namespace}/services/svc-0/instances`;
    // Warm-up (the first listing encodes every instance).
    const first = await request(agent, url, 'GET');
    if (first.status !== 200) throw new Error(`listing: ${first.status} ${first.text.slice(0, 200)}`);
    const times: number[] = [];
    let next = 0;
    const cpuBefore = cpuMs(pid);
    await Promise.all(
      Array.from({ length: o.clients }, async () => {
        while (next++ < o.listings) {
          if (o.changeBetween) {
            const body = JSON.stringify({ address: '10.9.9.9', port: 9000 + next, metadata: { zone: 'zone-0' } });
            const put = await request(agent, `${url}/i-0`, 'PUT', body);
            if (put.status !== 200) throw new Error(`register: ${put.status} ${put.text.slice(0, 200)}`);
          }
          const started = performance.now();
          const r = await request(agent, url, 'GET');
          times.push(performance.now() - started);
          if (r.status !== 200) throw new Error(`listing: ${r.status} ${r.text.slice(0, 200)}`);
        }
      }),
    );
    const cpu = (cpuMs(pid) - cpuBefore) / o.listings;
    times.sort((a, b) => a - b);
    let rss: number | null = null;
    if (o.listAll) {
      for (let s = 0; s < services; s++)
        await request(agent, `${leader.url}/v1/namespaces/${load.namespace}/services/svc-${s}/instances`, 'GET');
      await new Promise((r) => setTimeout(r, 3000));
      rss = rssMb(pid);
    }
    agent.destroy();
    return {
      instances: o.instances,
      services,
      listings: o.listings,
      clients: o.clients,
      changeBetween: o.changeBetween,
      bytes: Buffer.byteLength(first.text),
      cpuMsPerListing: cpu,
      p50Ms: percentile(times, 50),
      p99Ms: percentile(times, 99),
      rssMbAfterListingAll: rss,
    };
  } finally {
    // Graceful with a profiler: the profile is written when the process exits.
    await cluster.close(o.cpuProf !== undefined);
  }
}

async function findLeader(cluster: LocalCluster): Promise<LocalCluster['nodes'][number]> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    for (const n of cluster.nodes) {
      const r = await fetch(`${n.url}/v1/cluster`, { signal: AbortSignal.timeout(2000) })
        .then((res) => res.json() as Promise<{ leader: string | null }>)
        .catch(() => null);
      if (r?.leader) return cluster.node(r.leader);
    }
    if (Date.now() > deadline) throw new Error('no leader within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}
