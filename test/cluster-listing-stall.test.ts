/**
 * Issue 22, item 1: one listing stalled the leader into an election. GET
 * /v1/services?instances=true (what the monitoring page asked for) built and encoded the
 * whole registry in one event-loop turn: 1.3-1.8 s at 200,000 instances, and the followers
 * elected a new leader. Here: a real 3-node cluster with 30,000 instances (each with a
 * dozen metadata labels), listings in a loop from six clients for 12 s, against the leader.
 * Before the fix this size held the leader 250-700 ms per listing (several back to back)
 * and the followers elected another leader within seconds; now there is no election and
 * the CPU the leader spends per event-loop turn stays under 50 ms at p99
 * (`rollcall_event_loop_turn_cpu_seconds`). The wall-clock delay p99 is printed beside it
 * but not asserted: on a loaded machine it also counts the time the OS gave other
 * processes (157 ms was read with a whole test suite running beside this test).
 *
 * The full size (200,000 instances, 30 s) is `npm run bench:listing`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  bulkRegister,
  countByPages,
  DEFAULT_LOAD,
  listingLoop,
  loopDelay,
  terms,
} from '../scripts/bench/listing-load.js';
import { LocalCluster } from '../scripts/local-cluster.js';
import { waitForLeader } from './helpers/http.js';

// Before the fix the followers elected another leader within a few seconds of listing; 12 s
// leaves that several times over.
const LISTING_MS = 12_000;
const CLIENTS = 6;

describe('listings under load', () => {
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it("a 30,000-instance registry listed in a loop by six clients causes no election, and the leader's event loop stays responsive", async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const urls = cluster.nodes.map((n) => n.url);
    const leaderId = await waitForLeader(urls);
    const leader = cluster.node(leaderId).url;
    await bulkRegister(leader, DEFAULT_LOAD);
    const before = await terms(urls);
    expect(
      before.every((t) => t !== null && t === before[0]),
      `terms ${before}`,
    ).toBe(true);

    // Scrape the leader's loop delay while the clients list. The node's window is 10-20 s, so
    // the scrape at the end covers the listing and may reach back into the registrations
    // before it: their turns are held to the same bound.
    const samples: { p50: number; p99: number; max: number; cpuP99: number; cpuMax: number }[] = [];
    let listing = true;
    const scraper = (async () => {
      while (listing) {
        await new Promise((r) => setTimeout(r, 2000));
        const d = await loopDelay(leader).catch(() => null);
        if (d !== null) samples.push(d);
      }
    })();
    const stats = await listingLoop(leader, DEFAULT_LOAD.namespace, CLIENTS, LISTING_MS);
    listing = false;
    await scraper;
    const end = await loopDelay(leader);
    const after = await terms(urls);
    const report = JSON.stringify({ before, after, end, samples, stats });
    console.log(
      `listing stall: terms ${JSON.stringify(before)} -> ${JSON.stringify(after)}; leader loop delay p50 ${ms(end?.p50)}, p99 ${ms(end?.p99)}, max ${ms(end?.max)}; CPU per turn p99 ${ms(end?.cpuP99)}, max ${ms(end?.cpuMax)}; slowest answer ${Math.round(stats.slowestMs)} ms`,
    );

    // 0 elections: every node is still in the term it had before the listings.
    expect(after, report).toEqual(before);
    expect(stats.failures, report).toBe(0);
    // Every kind of listing was answered: the unpaginated whole registry is refused (over the cap), the rest served.
    expect(stats.answers['page-unpaginated']?.[400], report).toBeGreaterThan(0);
    for (const name of ['page-paginated', 'namespace-paginated', 'service'])
      expect(stats.answers[name]?.[200], `${name}: ${report}`).toBeGreaterThan(0);
    expect(end, report).not.toBeNull();
    expect(end!.cpuP99, report).toBeLessThan(0.05);
    // And the pages add up: every instance, all at one revision.
    expect(await countByPages(leader, DEFAULT_LOAD.namespace, 10_000)).toMatchObject({
      instances: DEFAULT_LOAD.instances,
      revisions: 1,
    });
  }, 150_000);
});

function ms(s: number | undefined): string {
  return s === undefined ? '?' : `${(s * 1000).toFixed(1)} ms`;
}
