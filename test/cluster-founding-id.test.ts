/**
 * The cluster id of a cluster founded by `rollcall server`, with real processes
 * (docs/operations.md, "Cluster ids"). Three members founded with one
 * --initial-cluster-token derive one id, each on its own, and GET /v1/cluster shows it on
 * every member. A member wiped and founded again on the same member ids and addresses with
 * another token is a member of a second cluster: the handshake refuses it both ways and
 * the first cluster goes on, never hearing of it; wiped and founded again with the first
 * cluster's token, it would get the same id (as etcd's members do) and the handshake would
 * take it, but its peers tell it their cluster is past its founding and it refuses to start
 * (exit 12, src/node/founding-guard.ts; test/cluster-wiped-member.test.ts has the whole story).
 *
 * Before founding ids, a cluster `rollcall server` founded had no id, and a node founded
 * on the same addresses talked to it whatever it was meant to be part of.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { foundingClusterId } from '../src/storage/index.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const TOKEN = 'founding-test-a';
const MEMBERS = ['n1', 'n2', 'n3'];

interface ClusterView {
  leader: string | null;
  term: number;
  revision: number;
  clusterId: string | null;
  members: { id: string; connected?: boolean }[];
}
const view = async (url: string) => (await http<ClusterView>('GET', `${url}/v1/cluster`, undefined, {}, 2000)).body;

let cluster: LocalCluster;
const lines: { id: string; line: string }[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'info',
    extraArgs: ['--initial-cluster-token', TOKEN],
    onLog: (id, line) => lines.push({ id, line }),
  });
  await waitForLeader(cluster.nodes.map((n) => n.url));
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

describe('a cluster founded by rollcall server', () => {
  it('has one cluster id, derived alike by every member, shown by GET /v1/cluster', async () => {
    const expected = foundingClusterId(MEMBERS, TOKEN);
    const views = await Promise.all(cluster.nodes.map((n) => view(n.url)));
    expect(views.map((v) => v.clusterId)).toEqual([expected, expected, expected]);
    // Each derived it alone, before talking to any peer.
    for (const id of MEMBERS)
      expect(
        lines.some(
          (l) =>
            l.id === id &&
            l.line.includes('bootstrapped a new cluster') &&
            l.line.includes(`"clusterId":"${expected}"`),
        ),
        `${id} logs the id it founded with`,
      ).toBe(true);
  });

  it('refuses a member of a second cluster founded on the same ids and addresses with another token, and goes on', async () => {
    const urls = cluster.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    const victim = cluster.nodes.find((n) => n.id !== leader)!;
    const others = cluster.nodes.filter((n) => n !== victim);
    expect(
      (await register(cluster.node(leader).url, 'prod', 'orders', 'o1', { address: '10.0.0.1', port: 1 })).status,
    ).toBe(200);
    // From cluster version 6 the members record who has started (the raise records them
    // all): what refuses the wiped victim at the end.
    await waitFor(
      'the cluster runs at version 6',
      async () => (await http('GET', `${cluster.node(leader).url}/v1/cluster`)).body.clusterVersion === 6,
    );

    // The second cluster: the victim's data wiped, founded again with its own token.
    await cluster.kill(victim.id);
    await rm(victim.dataDir, { recursive: true, force: true });
    const from = lines.length;
    await cluster.spawnNode(victim, ['--initial-cluster-token', 'founding-test-b']);
    const foreign = foundingClusterId(MEMBERS, 'founding-test-b');
    expect((await view(victim.url)).clusterId).toBe(foreign);
    const since = () => lines.slice(from);
    await waitFor('the second cluster reports both members of the first as another cluster', () =>
      others.every((o) =>
        since().some(
          (l) => l.id === victim.id && l.line.includes('CLUSTER_MISMATCH') && l.line.includes(`"peer":"${o.id}"`),
        ),
      ),
    );
    await waitFor('the first cluster refuses it too', () =>
      since().some((l) => l.id !== victim.id && l.line.includes('CLUSTER_MISMATCH')),
    );
    // It never hears of the first cluster's leader nor gets its data.
    const stray = await view(victim.url);
    expect(stray.leader).toBeNull();
    expect(stray.revision).toBe(0);
    expect(stray.members.filter((m) => m.id !== victim.id).every((m) => m.connected !== true)).toBe(true);
    // The first goes on: a leader, writes, and the stray never connected.
    const now = await waitForLeader(others.map((n) => n.url));
    expect(
      (await register(cluster.node(now).url, 'prod', 'orders', 'o2', { address: '10.0.0.2', port: 2 })).status,
    ).toBe(200);
    for (const o of others) {
      const v = await view(o.url);
      expect(v.clusterId).toBe(foundingClusterId(MEMBERS, TOKEN));
      expect(v.members.find((m) => m.id === victim.id)?.connected).not.toBe(true);
    }

    // Wiped again and founded with the first cluster's token (the default extraArgs): the
    // same id, as etcd derives it, so the handshake would take it for a member of the first
    // cluster; but a wiped voter lost its vote and log. Its peers say their cluster is past
    // its founding, and it refuses to start (as etcd: "member has already been
    // bootstrapped"), to be removed and added back with --join (docs/operations.md,
    // "Replacing a member whose data was lost").
    await cluster.kill(victim.id);
    await rm(victim.dataDir, { recursive: true, force: true });
    const again = lines.length;
    const refused = await cluster.restart(victim.id).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(refused, 'the member founded again with the same token must be refused').not.toBeNull();
    expect(refused!.message).toMatch(/\(code 12, signal null\)/);
    expect(refused!.message).toMatch(new RegExp(`member ${victim.id} has already been bootstrapped`));
    expect(lines.slice(again).filter((l) => l.line.includes('CLUSTER_MISMATCH'))).toEqual([]);
    const last = await waitForLeader(others.map((n) => n.url));
    expect(
      (await register(cluster.node(last).url, 'prod', 'orders', 'o3', { address: '10.0.0.3', port: 3 })).status,
    ).toBe(200);
  }, 90_000);
});
