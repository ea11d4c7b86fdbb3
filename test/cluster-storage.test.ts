/**
 * Storage across process lifetimes: a follower that was down while the log was
 * compacted catches up by snapshot and says it is ready only once it has; a damaged log entry stops a node at startup with
 * an error naming the entry.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { locateWalEntry } from '../src/storage/index.js';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

describe('storage in a real cluster', () => {
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('catches up a follower by snapshot after the log it missed was compacted', async () => {
    const logs: string[] = [];
    cluster = await LocalCluster.start({ size: 3, extraArgs: ['--compact-every', '40'], onLog: (id, line) => logs.push(`${id} ${line}`) });
    const urls = cluster.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    const lagger = cluster.nodes.find((n) => n.id !== leader)!;
    await cluster.kill(lagger.id);
    const live = cluster.running().map((n) => n.url);
    for (let i = 0; i < 150; i++) {
      const r = await register(live[i % live.length]!, 'prod', 'snap', `s${i}`, { address: '10.7.0.1', port: 1 + i, metadata: { i: String(i) } });
      expect(r.status).toBe(200);
    }
    const expected = (await list(live[0]!, 'prod', 'snap')).body.instances;
    await cluster.restart(lagger.id);
    // What a load balancer relies on: once /readyz says ready, the node serves every write
    // acknowledged before, even from its local state (its own commit index alone said "no
    // lag" before the snapshot arrived).
    await waitFor('the restarted follower to say it is ready', async () => (await http('GET', `${lagger.url}/readyz`)).status === 200, 30_000);
    const atReady = await list(lagger.url, 'prod', 'snap', '?consistency=serializable');
    expect(atReady.body.instances).toEqual(expected);
    await waitFor('the restarted follower to hold every instance', async () => {
      const r = await list(lagger.url, 'prod', 'snap', '?consistency=serializable');
      return JSON.stringify(r.body.instances) === JSON.stringify(expected);
    }, 30_000).catch((err: unknown) => {
      // Rare under heavy load and not yet explained: keep what the nodes said.
      throw new Error(`${String(err)}\nlast log lines:\n${logs.slice(-40).join('\n')}`);
    });
    // Log lines reach us through a pipe, possibly after the data is served: wait for it.
    await waitFor('the follower to log that it installed a snapshot', () =>
      logs.some((l) => l.startsWith(`${lagger.id} `) && l.includes('installed a snapshot from the leader')),
    10_000);
    // And it keeps up with new writes afterwards.
    const r = await register(urls[0]!, 'prod', 'snap', 'after', { address: '10.7.0.2', port: 1 });
    await waitFor('the follower to apply a write after the snapshot', async () => {
      const got = await list(lagger.url, 'prod', 'snap', '?consistency=serializable');
      return got.body.revision >= r.body.revision;
    });
  }, 120_000);

  it('refuses to start on a damaged log entry, naming its index', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const urls = cluster.nodes.map((n) => n.url);
    await waitForLeader(urls);
    for (let i = 0; i < 5; i++) await register(urls[0]!, 'prod', 'dmg', `d${i}`, { address: '10.6.0.1', port: 1 + i });
    const victim = cluster.nodes[2]!;
    expect(await cluster.stop(victim.id)).toBe(0);
    // Flip one byte inside the stored value of log entry 5, in its WAL segment. Later frames
    // follow it (entries 6+, commit updates), so this is damage, not a torn last write.
    const at = await locateWalEntry(victim.dataDir, 5);
    expect(at).toBeDefined();
    expect(at!.inLastFrame).toBe(false);
    const segment = await readFile(at!.path);
    segment[at!.offset + at!.length - 1]! ^= 0xff;
    await writeFile(at!.path, segment);
    await expect(cluster.restart(victim.id)).rejects.toThrow(/entry 5|index 5/);
  }, 120_000);
});
