/**
 * `npm run bench:listing`: the listing-stall scenario of issue 22 at full size. A 3-node
 * cluster, 200,000 instances, then listings in a loop from several clients for 30 s against
 * the leader (the monitoring page's request, its paginated replacement, the SDK's paginated
 * namespace listing and one service's list). Prints the elections (terms before and after),
 * the leader's event-loop delay (rollcall_event_loop_delay_seconds) and what each listing got.
 *
 *   npm run bench:listing -- [--instances 200000] [--seconds 30] [--clients 6] [--writers 128]
 *
 * test/cluster-listing-stall.test.ts runs the same at 30,000 instances for 20 s.
 *
 * `--listings N` measures one service's full listing instead (scripts/bench/service-listing.ts):
 *
 *   npm run bench:listing -- --listings 50 [--instances 20000] [--clients 1] [--nodes 1] [--list-all] [--change-between] [--cpu-prof DIR]
 */
import { parseArgs } from 'node:util';
import { bulkRegister, countByPages, DEFAULT_LOAD, listingLoop, loopDelay, terms } from './bench/listing-load.js';
import { serviceListing } from './bench/service-listing.js';
import { LocalCluster } from './local-cluster.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '200000' },
      seconds: { type: 'string', default: '30' },
      clients: { type: 'string', default: '6' },
      writers: { type: 'string', default: '128' },
      listings: { type: 'string' },
      nodes: { type: 'string', default: '1' },
      'list-all': { type: 'boolean', default: false },
      'change-between': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
    },
  });
  if (values.listings !== undefined) {
    const result = await serviceListing({
      instances: Number(values.instances),
      listings: Number(values.listings),
      clients: process.argv.includes('--clients') ? Number(values.clients) : 1,
      nodes: Number(values.nodes),
      listAll: values['list-all'],
      changeBetween: values['change-between'],
      cpuProf: values['cpu-prof'],
    });
    console.log(JSON.stringify(result));
    return 0;
  }
  const load = { ...DEFAULT_LOAD, instances: Number(values.instances), writers: Number(values.writers) };
  const seconds = Number(values.seconds);
  const clients = Number(values.clients);
  const cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
  try {
    const urls = cluster.nodes.map((n) => n.url);
    const leaderId = await waitForLeader(urls);
    const leader = cluster.node(leaderId).url;
    console.log(
      `cluster up, leader ${leaderId}; registering ${load.instances} instances (${load.writers} writers, ${load.labels + 2} metadata entries each)`,
    );
    const rate = await bulkRegister(leader, load, (done) => process.stdout.write(`  ${done}\r`));
    console.log(`registered ${load.instances} instances at ${Math.round(rate)}/s`);
    const idle = await loopDelay(leader);
    const before = await terms(urls);
    console.log(`terms ${JSON.stringify(before)}; leader's loop delay before listing: ${fmt(idle)}`);

    const samples: { p50: number; p99: number; max: number }[] = [];
    let listing = true;
    const scraper = (async () => {
      while (listing) {
        await new Promise((r) => setTimeout(r, 2000));
        const d = await loopDelay(leader).catch(() => null);
        if (d !== null) samples.push(d);
      }
    })();
    console.log(`listing for ${seconds} s from ${clients} clients`);
    const stats = await listingLoop(leader, load.namespace, clients, seconds * 1000);
    listing = false;
    await scraper;
    const end = await loopDelay(leader);
    const after = await terms(urls);
    const elections = after.map((t, i) => (t === null || before[i] === null ? null : t - before[i]!));
    const worst = samples.reduce((w, s) => ({ p99: Math.max(w.p99, s.p99), max: Math.max(w.max, s.max) }), {
      p99: 0,
      max: 0,
    });
    const check = await countByPages(leader, load.namespace, 10_000).catch((err: Error) => ({
      error: err.message.slice(0, 200),
    }));
    console.log('');
    console.log(`terms after: ${JSON.stringify(after)} (elections per node: ${JSON.stringify(elections)})`);
    console.log(`leader's event-loop delay at the end (last 10-20 s): ${fmt(end)}`);
    console.log(`worst scrape during the run: p99 ${ms(worst.p99)}, max ${ms(worst.max)}`);
    console.log(
      `slowest answer: ${Math.round(stats.slowestMs)} ms; failures: ${stats.failures}${stats.firstFailure ? ` (${stats.firstFailure})` : ''}`,
    );
    for (const [name, byStatus] of Object.entries(stats.answers))
      console.log(`  ${name.padEnd(20)} ${JSON.stringify(byStatus)}`);
    console.log(
      'error' in check
        ? `a paginated walk of the namespace after: ${check.error}`
        : `a paginated walk of the namespace after: ${check.instances} instances in ${check.pages} pages at ${check.revisions} revision(s)`,
    );
    console.log(
      JSON.stringify({
        instances: load.instances,
        seconds,
        clients,
        writesPerSecond: Math.round(rate),
        before,
        after,
        elections,
        end,
        worst,
        stats,
        check,
      }),
    );
    return elections.every((e) => e === 0) ? 0 : 1;
  } finally {
    await cluster.close();
  }
}

async function waitForLeader(urls: readonly string[]): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const views = await Promise.all(
      urls.map(async (u) => {
        try {
          return (
            (await (await fetch(`${u}/v1/cluster`, { signal: AbortSignal.timeout(2000) })).json()) as {
              leader: string | null;
            }
          ).leader;
        } catch {
          return null;
        }
      }),
    );
    if (views[0] && views.every((v) => v === views[0])) return views[0];
    if (Date.now() > deadline) throw new Error('no leader within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ms(s: number): string {
  return `${(s * 1000).toFixed(1)} ms`;
}

function fmt(d: { p50: number; p99: number; max: number; cpuP99: number; cpuMax: number } | null): string {
  return d === null
    ? 'not exported (a build before rollcall_event_loop_delay_seconds)'
    : `p50 ${ms(d.p50)}, p99 ${ms(d.p99)}, max ${ms(d.max)}; CPU per turn p99 ${ms(d.cpuP99)}, max ${ms(d.cpuMax)}`;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
