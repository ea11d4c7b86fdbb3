/**
 * Storage across process lifetimes: a follower that was down while the log was
 * compacted catches up by snapshot and says it is ready only once it has; a damaged log entry stops a node at startup with
 * an error naming the entry; damage LevelDB would skip quietly stops it too, for good, and so
 * does a damaged table file.
 */

import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { locateWalEntry } from '../src/storage/index.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

describe('storage in a real cluster', () => {
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('catches up a follower by snapshot after the log it missed was compacted', async () => {
    const logs: string[] = [];
    cluster = await LocalCluster.start({
      size: 3,
      extraArgs: ['--compact-every', '40'],
      onLog: (id, line) => logs.push(`${id} ${line}`),
    });
    const urls = cluster.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    const lagger = cluster.nodes.find((n) => n.id !== leader)!;
    await cluster.kill(lagger.id);
    const live = cluster.running().map((n) => n.url);
    for (let i = 0; i < 150; i++) {
      const r = await register(live[i % live.length]!, 'prod', 'snap', `s${i}`, {
        address: '10.7.0.1',
        port: 1 + i,
        metadata: { i: String(i) },
      });
      expect(r.status).toBe(200);
    }
    const expected = (await list(live[0]!, 'prod', 'snap')).body.instances;
    await cluster.restart(lagger.id);
    // What a load balancer relies on: once /readyz says ready, the node serves every write
    // acknowledged before, even from its local state (its own commit index alone said "no
    // lag" before the snapshot arrived).
    await waitFor(
      'the restarted follower to say it is ready',
      async () => (await http('GET', `${lagger.url}/readyz`)).status === 200,
      30_000,
    );
    const atReady = await list(lagger.url, 'prod', 'snap', '?consistency=serializable');
    expect(atReady.body.instances).toEqual(expected);
    await waitFor(
      'the restarted follower to hold every instance',
      async () => {
        const r = await list(lagger.url, 'prod', 'snap', '?consistency=serializable');
        return JSON.stringify(r.body.instances) === JSON.stringify(expected);
      },
      30_000,
    ).catch((err: unknown) => {
      // Rare under heavy load and not yet explained: keep what the nodes said.
      throw new Error(`${String(err)}\nlast log lines:\n${logs.slice(-40).join('\n')}`);
    });
    // Log lines reach us through a pipe, possibly after the data is served: wait for it.
    await waitFor(
      'the follower to log that it installed a snapshot',
      () => logs.some((l) => l.startsWith(`${lagger.id} `) && l.includes('installed a snapshot from the leader')),
      10_000,
    );
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

  it('refuses to start when LevelDB skipped damaged records of its state machine, on every later start too', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const urls = cluster.nodes.map((n) => n.url);
    await waitForLeader(urls);
    const writes = Array.from({ length: 300 }, (_, i) => i);
    for (let i = 0; i < writes.length; i += 20) {
      await Promise.all(
        writes
          .slice(i, i + 20)
          .map((k) => register(urls[k % 3]!, 'prod', 'ldb', `l${k}`, { address: '10.6.0.2', port: 1 + k })),
      );
    }
    const victim = cluster.nodes[2]!;
    expect(await cluster.stop(victim.id)).toBe(0);
    // Flip bytes in the middle of LevelDB's own log: at the next open LevelDB drops the
    // damaged block (and the records in it) and carries on, unless we stop it.
    const logs = (await readdir(victim.dataDir)).filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThan(0);
    const file = path.join(victim.dataDir, logs.sort().at(-1)!);
    const bytes = await readFile(file);
    // In the first of its 32-KiB blocks, with intact blocks after it: damage, not a torn tail.
    expect(bytes.length).toBeGreaterThan(40_000);
    for (let i = 1000; i < 1016; i++) bytes[i]! ^= 0xff;
    await writeFile(file, bytes);
    await expect(cluster.restart(victim.id)).rejects.toThrow(
      new RegExp(`${logs.sort().at(-1)!.replace('.', '\\.')}.*damaged at offset.*new id`),
    );
    // LevelDB has since rewritten the rest and deleted the damaged file: the node still refuses.
    await expect(cluster.restart(victim.id)).rejects.toThrow(/found damaged by an earlier start.*new id/);
    // The other two carry on.
    expect((await register(urls[0]!, 'prod', 'ldb', 'after', { address: '10.6.0.2', port: 1 })).status).toBe(200);
  }, 120_000);

  it('refuses to start on a damaged LevelDB table, naming the file (LevelDB reads tables without their checksums)', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const urls = cluster.nodes.map((n) => n.url);
    await waitForLeader(urls);
    const writes = Array.from({ length: 300 }, (_, i) => i);
    for (let i = 0; i < writes.length; i += 20) {
      await Promise.all(
        writes.slice(i, i + 20).map((k) =>
          register(urls[k % 3]!, 'prod', 'ldb', `t${k}`, {
            address: '10.6.0.3',
            port: 1 + k,
            metadata: { pad: 'x'.repeat(200) },
          }),
        ),
      );
    }
    const victim = cluster.nodes[2]!;
    // A stop and a start: LevelDB writes what its log holds into a table at open.
    expect(await cluster.stop(victim.id)).toBe(0);
    await cluster.restart(victim.id);
    expect(await cluster.stop(victim.id)).toBe(0);
    const tables = (await readdir(victim.dataDir)).filter((f) => /^\d+\.(ldb|sst)$/.test(f));
    expect(tables.length).toBeGreaterThan(0);
    const name = tables.sort().at(-1)!;
    const file = path.join(victim.dataDir, name);
    const bytes = await readFile(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(file, bytes);
    await expect(cluster.restart(victim.id)).rejects.toThrow(
      new RegExp(`${name.replace('.', '\\.')}: LevelDB's table file is damaged.*new id`),
    );
    await expect(cluster.restart(victim.id)).rejects.toThrow(/found damaged by an earlier start.*new id/);
    expect((await register(urls[0]!, 'prod', 'ldb', 'after-table', { address: '10.6.0.3', port: 1 })).status).toBe(200);
  }, 120_000);
});
