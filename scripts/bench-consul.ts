/**
 * `npm run bench:consul`: issue 17's blocking-query figures. A 3-node cluster on 127.0.0.1;
 * `--queries` Consul blocking queries (`/v1/health/service/<name>?index=&wait=10m`, the
 * request consul.watch and Prometheus make) parked on one follower, spread over
 * `--services` services. Then:
 *
 *   1. memory per parked query: the follower's resident memory and V8 heap before and after
 *      parking them (from /proc and its /metrics), divided by the count;
 *   2. changes elsewhere: `--noise` writes to services nobody watches; every answer that
 *      comes back, and every wake-up the follower counts (`Stats.rollcall.wakeups`: a query
 *      woken and parked again answers nothing), is one caused by another service (must be 0);
 *   3. wake-up latency: `--rounds` writes, each to one watched service through the leader;
 *      for every query parked on that service, the time from the write's acknowledgement
 *      (committed and applied on the leader) to its answer (the follower applies it, wakes
 *      the query, answers), and from issuing the write; each woken query parks again at the
 *      new index, as a client does (in the next event-loop turn, so that an answer's time is
 *      when it came, not that plus this process's work re-parking the answers before it: at
 *      100 answers a change that added up to ~30 ms to the last ones). Answers for the other
 *      watched services in a round are counted as wake-ups from elsewhere too.
 *
 *   npm run bench:consul -- [--queries 10000] [--services 100] [--rounds 20] [--noise 200] [--seconds 300]
 *
 * Bounded: the counts are fixed and the whole run stops (exit 1) after `--seconds`.
 * Exit 1 also when any query was woken by a change to another service.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { request } from './bench/listing-load.js';
import { freePort, LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    queries: { type: 'string', default: '10000' },
    services: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '20' },
    noise: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '300' },
  },
});
const QUERIES = Number(values.queries);
const SERVICES = Number(values.services);
const ROUNDS = Number(values.rounds);
const NOISE = Number(values.noise);
const SECONDS = Number(values.seconds);
const WAIT = '10m';

interface Parked {
  readonly service: number;
  index: number;
}

/** The parked queries and what came back: one keep-alive socket each. */
class Watchers {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
  readonly queries: Parked[] = [];
  /** Answers by service since the last reset, with when they arrived. */
  answers = new Map<number, number[]>();
  errors = 0;
  firstError: string | null = null;
  stopped = false;

  constructor(private readonly base: string) {}

  park(q: Parked): void {
    if (this.stopped) return;
    const req = http.get(
      `${this.base}/v1/health/service/watched-${q.service}?index=${q.index}&wait=${WAIT}`,
      { agent: this.agent },
      (res) => {
        res.resume();
        res.on('end', () => {
          const at = performance.now();
          if (this.stopped) return;
          if (res.statusCode !== 200) return this.failed(q, `HTTP ${res.statusCode}`);
          let list = this.answers.get(q.service);
          if (list === undefined) this.answers.set(q.service, (list = []));
          list.push(at);
          q.index = Number(res.headers['x-consul-index']);
          // Parked again in the next turn: answers read in this one keep the time they came,
          // not that plus this process's work re-issuing the queries answered before them.
          setImmediate(() => this.park(q));
        });
      },
    );
    req.on('error', (err) => this.failed(q, err.message));
  }

  answered(service: number): number {
    return this.answers.get(service)?.length ?? 0;
  }

  total(): number {
    let n = 0;
    for (const l of this.answers.values()) n += l.length;
    return n;
  }

  stop(): void {
    this.stopped = true;
    this.agent.destroy();
  }

  private failed(q: Parked, why: string): void {
    if (this.stopped) return;
    this.errors++;
    this.firstError ??= why;
    setTimeout(() => this.park(q), 200);
  }
}

async function json<T>(url: string, init: RequestInit = {}): Promise<{ body: T; headers: Headers }> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
  return { body: (await res.json()) as T, headers: res.headers };
}

async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function leaderOf(urls: readonly string[]): Promise<string> {
  let leader = '';
  await waitUntil(
    'a leader',
    async () => {
      const views = await Promise.all(
        urls.map((u) =>
          json<{ leader: string | null }>(`${u}/v1/cluster`).then(
            (r) => r.body.leader,
            () => null,
          ),
        ),
      );
      leader = views[0] ?? '';
      return leader !== '' && views.every((v) => v === leader);
    },
    30_000,
  );
  return leader;
}

/** The follower's memory: resident (from /proc) and V8 heap in use (from its /metrics). */
async function memoryOf(pid: number, url: string): Promise<{ rss: number; heap: number }> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const heap = Number(/^nodejs_heap_used_bytes (\S+)$/m.exec(metrics)?.[1] ?? NaN);
  return { rss, heap };
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat. */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command), in clock ticks (100 Hz on Linux).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function main(): Promise<number> {
  const consulPorts = [await freePort(), await freePort(), await freePort()];
  const cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'warn',
    nodeEnv: (id) => ({ ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}` }),
  });
  let watchers: Watchers | null = null;
  const timer = setTimeout(() => {
    console.error(`bench:consul: stopped after ${SECONDS} s (--seconds)`);
    watchers?.stop();
    void cluster.close().finally(() => process.exit(1));
  }, SECONDS * 1000);
  try {
    const urls = cluster.nodes.map((n) => n.url);
    const leaderId = await leaderOf(urls);
    const leader = cluster.node(leaderId).url;
    const follower = cluster.nodes.find((n) => n.id !== leaderId)!;
    const consul = `http://127.0.0.1:${consulPorts[Number(follower.id.slice(1)) - 1]}`;
    const pid = follower.proc?.pid;
    if (pid === undefined) throw new Error(`${follower.id} has no process`);
    const writes = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const put = async (service: string, id: string, port: number): Promise<void> => {
      const r = await request(
        writes,
        `${leader}/v1/namespaces/default/services/${service}/instances/${id}`,
        'PUT',
        JSON.stringify({ address: '10.0.0.1', port }),
      );
      if (r.status !== 200) throw new Error(`PUT ${service}/${id}: ${r.status} ${r.text.slice(0, 200)}`);
    };
    console.error(
      `cluster up, leader ${leaderId}; ${QUERIES} blocking queries will park on ${follower.id} (${consul}) over ${SERVICES} services`,
    );
    for (let s = 0; s < SERVICES; s++) await put(`watched-${s}`, 'w0', 80);
    await put('other-0', 'o0', 80);

    const indexes: number[] = [];
    for (let s = 0; s < SERVICES; s++)
      indexes.push(Number((await json(`${consul}/v1/health/service/watched-${s}`)).headers.get('x-consul-index')));
    const rollcallStats = async () =>
      (
        await json<{ Stats: { rollcall: { blocking_queries: string; wakeups: string; shared_answers?: string } } }>(
          `${consul}/v1/agent/self`,
        )
      ).body.Stats.rollcall;
    // Answers the follower served already encoded for another query on the same service and revision.
    const shared = async () => Number((await rollcallStats()).shared_answers ?? 0);
    const parked = async () => Number((await rollcallStats()).blocking_queries);
    // Queries the follower's feed has woken: one woken by another service and parked again
    // (its index unmoved) never answers, so counting answers alone cannot see it.
    const wakeups = async () => Number((await rollcallStats()).wakeups);
    await new Promise((r) => setTimeout(r, 1000));
    const before = await memoryOf(pid, follower.url);

    // Park them, in batches so the listener's accept queue keeps up.
    watchers = new Watchers(consul);
    const w = watchers;
    for (let q = 0; q < QUERIES; q++) {
      const query: Parked = { service: q % SERVICES, index: indexes[q % SERVICES]! };
      w.queries.push(query);
      w.park(query);
      if (q % 200 === 199) await new Promise((r) => setTimeout(r, 50));
    }
    await waitUntil(`${QUERIES} parked queries`, async () => (await parked()) >= QUERIES, 60_000);
    // Connections refused in the parking burst (accept queue full) are retried; not counted below.
    const parkingErrors = w.errors;
    w.errors = 0;
    await new Promise((r) => setTimeout(r, 1000));
    const after = await memoryOf(pid, follower.url);
    const perQuery = { rss: (after.rss - before.rss) / QUERIES, heap: (after.heap - before.heap) / QUERIES };
    console.error(`parked ${QUERIES}: resident +${mb(after.rss - before.rss)}, heap +${mb(after.heap - before.heap)}`);

    // Changes to services nobody watches wake nobody.
    const quietWakeups = await wakeups();
    for (let k = 0; k < NOISE; k++) await put(`other-${k % 10}`, `o${k}`, 80 + (k % 100));
    await new Promise((r) => setTimeout(r, 1000));
    let foreign = Math.max(w.total(), (await wakeups()) - quietWakeups);

    // One watched service changes per round: its queries wake, the others' do not.
    const perService = QUERIES / SERVICES;
    const cpuBefore = cpuOf(pid);
    const sharedBefore = await shared();
    const latencies: number[] = [];
    const sinceAck: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const service = r % SERVICES;
      w.answers = new Map();
      const roundWakeups = await wakeups();
      const start = performance.now();
      await put(`watched-${service}`, `round-${r}`, 80);
      const acked = performance.now();
      await waitUntil(
        `round ${r}: ${perService} answers for watched-${service}`,
        () => w.answered(service) >= Math.floor(perService),
        30_000,
      );
      for (const at of w.answers.get(service)!) {
        latencies.push(at - start);
        sinceAck.push(Math.max(0, at - acked));
      }
      await waitUntil('the woken queries to park again', async () => (await parked()) >= QUERIES, 30_000);
      // Woken this round beyond the watched service's own queries (answers from elsewhere included).
      foreign += Math.max(w.total() - w.answered(service), (await wakeups()) - roundWakeups - w.answered(service));
    }
    const cpuPerWake = (cpuOf(pid) - cpuBefore) / latencies.length;
    const sharedAnswers = (await shared()) - sharedBefore;
    latencies.sort((a, b) => a - b);
    sinceAck.sort((a, b) => a - b);
    const wake = {
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies[latencies.length - 1] ?? NaN,
    };
    const wakeSinceAck = {
      p50: percentile(sinceAck, 50),
      p99: percentile(sinceAck, 99),
      max: sinceAck[sinceAck.length - 1] ?? NaN,
    };
    writes.destroy();

    console.log('');
    console.log(
      `Consul blocking queries, ${QUERIES} parked on one follower over ${SERVICES} services (${cluster.nodes.length}-node cluster, 127.0.0.1)`,
    );
    console.log(`  memory per parked query        ${kb(perQuery.rss)} resident, ${kb(perQuery.heap)} V8 heap`);
    console.log(
      `  wake-up after a change         p50 ${ms(wakeSinceAck.p50)}, p99 ${ms(wakeSinceAck.p99)} (goal <= 100 ms), max ${ms(wakeSinceAck.max)}  [${latencies.length} wake-ups in ${ROUNDS} changes of ${perService}: write acknowledged -> answer received]`,
    );
    console.log(
      `  write issued -> answer         p50 ${ms(wake.p50)}, p99 ${ms(wake.p99)}, max ${ms(wake.max)}  [the same, with the write's own commit]`,
    );
    console.log(
      `  follower CPU per wake-up       ${ms(cpuPerWake)}  [its CPU time over the rounds, re-parking included, / wake-ups: what load on this machine cannot inflate]`,
    );
    console.log(
      `  answers shared                 ${sharedAnswers} of ${latencies.length}  [written once per service revision, served to the other queries it woke]`,
    );
    console.log(
      `  wake-ups from other services   ${foreign}  (must be 0; ${NOISE} changes to unwatched services, ${ROUNDS * (SERVICES - 1) * perService} query-rounds on unchanged services)`,
    );
    console.log(
      `  errors                         ${w.errors} (and ${parkingErrors} connections retried while parking${w.firstError ? `; first: ${w.firstError}` : ''})`,
    );
    console.log(
      JSON.stringify({
        queries: QUERIES,
        services: SERVICES,
        rounds: ROUNDS,
        noise: NOISE,
        before,
        after,
        perQuery,
        wake: wakeSinceAck,
        writeToAnswer: wake,
        cpuPerWakeMs: cpuPerWake,
        sharedAnswers,
        foreign,
        parkingErrors,
        errors: w.errors,
      }),
    );
    return foreign === 0 && w.errors === 0 ? 0 : 1;
  } finally {
    clearTimeout(timer);
    watchers?.stop();
    await cluster.close();
  }
}

function ms(x: number): string {
  return `${x.toFixed(1)} ms`;
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
