/**
 * A member whose data directory was wiped, with real processes (docs/operations.md,
 * "Replacing a member whose data was lost"). Started again as a founding member (`rollcall
 * server` with its --peers, without --join), it once bootstrapped a fresh log and took part
 * in the running cluster, with its vote and the entries it had acknowledged lost: it could
 * vote twice in a term and help elect a leader that lacks committed entries. Now its peers
 * tell it their cluster is past its founding and records it as started, and it exits with
 * code 12 (MEMBER_ALREADY_BOOTSTRAPPED) before writing anything, while the cluster goes on.
 * Started with --join without being removed, it once kept its voter slot with an empty term
 * and vote; now a peer that records it as a started member refuses it the same way (exit
 * 12). Removed and added back with --join, as the error says, it catches up, serves reads
 * and publishes itself again (the started-member record, cluster version 6); the record
 * outlives a peer's restart and a snapshot install, and a second wipe is refused again.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { foundingClusterId } from '../src/storage/index.js';
import { ClusterIdentity, type FoundingState, probeFounding } from '../src/transport/index.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

let cluster: LocalCluster;
const lines: { id: string; line: string }[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'info',
    // A small log: a member that falls behind gets a snapshot (the record travels in it).
    extraArgs: ['--initial-cluster-token', 'wiped-member-test', '--compact-every', '40'],
    onLog: (id, line) => lines.push({ id, line }),
  });
  await waitForLeader(cluster.nodes.map((n) => n.url));
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

const ids = (body: { instances?: { id: string }[] }) => (body.instances ?? []).map((i) => i.id).sort();

/** What `peer` answers a founding probe from `asker` (as the guard asks it): its record of the asker. */
async function answerOf(peer: string, asker: string): Promise<FoundingState | null> {
  const result = await probeFounding({
    selfId: asker,
    peerId: peer,
    address: { host: '127.0.0.1', port: cluster.node(peer).peerPort },
    secret: 'local-cluster-secret',
    cluster: ClusterIdentity.of(foundingClusterId(['n1', 'n2', 'n3'], 'wiped-member-test')),
    secureContext: null,
    timeoutMs: 2_000,
  });
  return result.kind === 'answered' ? result.state : null;
}

const clusterVersion = async (url: string) => (await http('GET', `${url}/v1/cluster`)).body.clusterVersion as number;

describe('a member whose data was wiped', () => {
  it('refuses to found or join again while recorded as started; rejoins after remove and add', async () => {
    const urls = cluster.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    for (const i of [1, 2, 3])
      expect(
        (await register(cluster.node(leader).url, 'prod', 'orders', `o${i}`, { address: '10.0.0.1', port: i })).status,
      ).toBe(200);
    const victim = cluster.nodes.find((n) => n.id !== leader)!;
    const others = cluster.nodes.filter((n) => n !== victim);
    // It acknowledged the writes: its log holds them.
    await waitFor('the victim has applied the writes', async () => {
      const r = await list(victim.url, 'prod', 'orders', '?consistency=serializable');
      return ids(r.body).length === 3;
    });
    // Every member reported this build: the cluster runs at version 6, which records them all as started.
    await waitFor('the cluster runs at version 6', async () => (await clusterVersion(cluster.node(leader).url)) === 6);

    // (1) Wiped: an empty data directory, started with its --peers and no --join.
    await cluster.kill(victim.id);
    await rm(victim.dataDir, { recursive: true, force: true });
    await mkdir(victim.dataDir);
    const from = lines.length;
    const refused = await cluster.spawnNode(victim).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(refused, 'the wiped member must not start').not.toBeNull();
    expect(refused!.message).toMatch(/exited before it was ready \(code 12, signal null\)/);
    expect(refused!.message).toMatch(/member \S+ has already been bootstrapped/);
    expect(refused!.message).toMatch(
      new RegExp(`peer (${others.map((o) => o.id).join('|')}) belongs to a running cluster`),
    );
    expect(refused!.message).toMatch(/--join/);
    expect(refused!.message).toMatch(/MEMBER_ALREADY_BOOTSTRAPPED/);
    // Nothing written: the directory is as empty as it was.
    expect(await readdir(victim.dataDir)).toEqual([]);
    // Its peers saw a probe, not a member: no refusal, no "lost entries", no connection.
    expect(
      lines
        .slice(from)
        .filter((l) => l.id !== victim.id && /CLUSTER_MISMATCH|AUTH_FAILED|lost acknowledged/.test(l.line)),
    ).toEqual([]);

    // The cluster keeps taking writes.
    const now = await waitForLeader(others.map((n) => n.url));
    expect(
      (await register(cluster.node(now).url, 'prod', 'orders', 'o4', { address: '10.0.0.1', port: 4 })).status,
    ).toBe(200);

    // Started empty with --join but not removed first (a step of the runbook skipped): its
    // peers record it as a current member that has started (the raise to version 6 recorded
    // every member), so it is refused too, before writing anything, and the cluster goes on.
    expect(await clusterVersion(cluster.node(now).url)).toBe(6);
    expect(await answerOf(now, victim.id)).toMatchObject({ pastFounding: true, started: true, clusterVersion: 6 });
    const skipped = lines.length;
    const joinRefused = await cluster.spawnNode(victim, ['--join']).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(joinRefused, 'the wiped member must not join in its old slot').not.toBeNull();
    expect(joinRefused!.message).toMatch(/exited before it was ready \(code 12, signal null\)/);
    expect(joinRefused!.message).toMatch(/records it as a current member that has started/);
    expect(joinRefused!.message).toMatch(/Remove the member first/);
    expect(await readdir(victim.dataDir)).toEqual([]);
    expect(lines.slice(skipped).filter((l) => l.id !== victim.id && /lost acknowledged/.test(l.line))).toEqual([]);
    expect(
      (await register(cluster.node(now).url, 'prod', 'orders', 'o4b', { address: '10.0.0.1', port: 4 })).status,
    ).toBe(200);
    await rm(victim.dataDir, { recursive: true, force: true });

    // (2) The runbook: remove the member, add it back, start it empty with --join.
    const removed = await http('DELETE', `${cluster.node(now).url}/v1/cluster/members/${victim.id}`);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    await waitFor('the member is out of the membership', async () => {
      const st = await http('GET', `${cluster.node(now).url}/v1/cluster`);
      return !(st.body.members as { id: string }[]).some((m) => m.id === victim.id);
    });
    const added = await http('POST', `${cluster.node(now).url}/v1/cluster/members`, {
      id: victim.id,
      peerAddress: `127.0.0.1:${victim.peerPort}`,
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    await cluster.spawnNode(victim, ['--join']);
    await waitFor(
      'the member is a voter again',
      async () => {
        const st = await http('GET', `${cluster.node(now).url}/v1/cluster`);
        return (st.body.members as { id: string; voter: boolean }[]).find((m) => m.id === victim.id)?.voter === true;
      },
      30_000,
    );
    // It caught up, and serves a linearizable read of everything written, before and after.
    await waitFor('the member serves every write', async () => {
      const r = await list(victim.url, 'prod', 'orders');
      return r.status === 200 && ids(r.body).join() === 'o1,o2,o3,o4,o4b';
    });
    expect((await register(victim.url, 'prod', 'orders', 'o5', { address: '10.0.0.1', port: 5 })).status).toBe(200);

    // The removal deleted its record; back in, it published itself again (recordMemberStarted).
    await waitFor('the rejoined member is recorded as started', async () => {
      const answers = await Promise.all(others.map((o) => answerOf(o.id, victim.id)));
      return answers.every((a) => a?.started === true);
    });
    // Its own log line follows its proposal's answer, which may come after its peers applied it.
    await waitFor('the rejoined member logs that it published itself', async () =>
      lines.some((l) => l.id === victim.id && l.line.includes('published this member: recorded as started')),
    );

    // The record outlives a restart of a peer, and reaches one that catches up by a snapshot.
    const lagger = others.find((o) => o.id !== now)!;
    await cluster.kill(lagger.id);
    for (let i = 0; i < 60; i++)
      expect(
        (await register(cluster.node(now).url, 'prod', 'lag', `l${i}`, { address: '10.0.0.2', port: 1 + i })).status,
      ).toBe(200);
    const snapshotFrom = lines.length;
    await cluster.restart(lagger.id);
    await waitFor(
      'the restarted peer installs a snapshot',
      () =>
        lines
          .slice(snapshotFrom)
          .some((l) => l.id === lagger.id && l.line.includes('installed a snapshot from the leader')),
      30_000,
    );
    expect(await answerOf(lagger.id, victim.id)).toMatchObject({ started: true, clusterVersion: 6 });
    await cluster.kill(now);
    await cluster.restart(now);
    expect(await answerOf(now, victim.id)).toMatchObject({ started: true, clusterVersion: 6 });

    // Wiped a second time and started with --join again: refused by its own record.
    await waitForLeader(cluster.nodes.map((n) => n.url));
    await cluster.kill(victim.id);
    await rm(victim.dataDir, { recursive: true, force: true });
    const again = await cluster.spawnNode(victim, ['--join']).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(again?.message).toMatch(/\(code 12, signal null\)/);
    const last = await waitForLeader(others.map((n) => n.url));
    expect(
      (await register(cluster.node(last).url, 'prod', 'orders', 'o6', { address: '10.0.0.1', port: 6 })).status,
    ).toBe(200);
  }, 180_000);
});
