/**
 * A member whose data directory was wiped, started again as a founding member (`rollcall
 * server` with its --peers, without --join), with real processes (docs/operations.md,
 * "Replacing a member whose data was lost"). Before the founding guard it bootstrapped a
 * fresh log and took part in the running cluster, with its vote and the entries it had
 * acknowledged lost: it could vote twice in a term and help elect a leader that lacks
 * committed entries. Now its peers tell it their cluster is past its founding, and it
 * exits with code 12 (MEMBER_ALREADY_BOOTSTRAPPED) before writing anything, while the
 * cluster goes on. Started with --join without being removed, the leader logs that it lost
 * entries it acknowledged. Removed and added back with --join, as the error says, it
 * catches up and serves reads.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

let cluster: LocalCluster;
const lines: { id: string; line: string }[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'info',
    extraArgs: ['--initial-cluster-token', 'wiped-member-test'],
    onLog: (id, line) => lines.push({ id, line }),
  });
  await waitForLeader(cluster.nodes.map((n) => n.url));
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

const ids = (body: { instances?: { id: string }[] }) => (body.instances ?? []).map((i) => i.id).sort();

describe('a member whose data was wiped', () => {
  it('refuses to found again while its peers run, and rejoins with --join after remove and add', async () => {
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

    // Started empty with --join but not removed first (a step of the runbook skipped): the
    // guard does not ask (a joiner has no founding to refuse), but the leader sees its
    // rejections hint below the Match it recorded, and says so once.
    const skipped = lines.length;
    await cluster.spawnNode(victim, ['--join']);
    await waitFor('the leader reports the member lost acknowledged entries', () =>
      lines
        .slice(skipped)
        .some(
          (l) =>
            l.id === now &&
            l.line.includes(`${victim.id} lost acknowledged entries: its data was wiped?`) &&
            l.line.includes('"level":50'),
        ),
    );
    await cluster.kill(victim.id);
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
      return r.status === 200 && ids(r.body).join() === 'o1,o2,o3,o4';
    });
    expect((await register(victim.url, 'prod', 'orders', 'o5', { address: '10.0.0.1', port: 5 })).status).toBe(200);
  }, 120_000);
});
