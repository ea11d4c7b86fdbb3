/**
 * A rolling upgrade with real processes (docs/operations.md, "Upgrades"). One node runs with
 * ROLLCALL_TEST_STATE_MACHINE_VERSION=1 (test only: it reports and accepts only v1, as a
 * build of v1 would): the cluster stays at version 1, a Consul TTL check's verdict moves only
 * the check's record (no setCheckHealth), and setCheckHealth is not proposed. Restarted
 * without the flag, the leader raises the cluster to 2 and the verdict sets the health. A
 * node started again with the flag then refuses to start, naming both versions. Replicas are
 * identical afterwards (the member-address record included).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { STATE_MACHINE_VERSION as NEW } from '../src/registry/index.js';
import { http, waitFor, waitForLeader } from './helpers/http.js';

type ClusterView = {
  clusterVersion: number;
  supportedVersion: number;
  members: { id: string; stateMachineVersion: number | null }[];
};

describe('rolling upgrade: the cluster version follows the oldest build', () => {
  let cluster: LocalCluster;
  let consulPorts: number[];
  const oldBuild = new Set<string>(['n3']);
  const curl = (id: string) => `http://127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}`;
  const view = async (id: string) => (await http('GET', `${cluster.node(id).url}/v1/cluster`)).body as ClusterView;
  const health = async (id: string) =>
    (await http('GET', `${cluster.node(id).url}/v1/namespaces/default/services/ledger/instances/ledger-1`)).body
      .instance?.health as string;
  const checkStatus = async (id: string) => {
    const r = await http('GET', `${curl(id)}/v1/health/checks/ledger`);
    return (r.body as { Status: string }[])[0]?.Status;
  };

  /** `rollcall cluster versions --json` as a real process against one node. */
  const versions = async (id: string) => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      CLI_PATH,
      'cluster',
      'versions',
      '--json',
      '--endpoints',
      cluster.node(id).url,
    ]);
    return JSON.parse(stdout) as {
      node: string;
      clusterVersion: number;
      supportedVersion: number;
      upgradePending: boolean;
      members: { id: string; stateMachineVersion: number | null }[];
    };
  };

  beforeAll(async () => {
    consulPorts = [await freePort(), await freePort(), await freePort()];
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      nodeEnv: (id) => ({
        ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}`,
        ...(oldBuild.has(id) ? { ROLLCALL_TEST_STATE_MACHINE_VERSION: '1' } : {}),
      }),
    });
    await waitForLeader(cluster.nodes.map((n) => n.url));
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('stays at 1 with a v1 member, is raised to 2 once it is upgraded, and a v1 build then refuses to start', async () => {
    // Every member reported (n3 as 1); nothing raised.
    await waitFor('every member reports its build', async () => {
      const v = await view('n1');
      return v.members.every((m) => m.stateMachineVersion !== null) ? v : undefined;
    });
    for (const id of ['n1', 'n2', 'n3']) {
      const v = await view(id);
      expect(v.clusterVersion).toBe(1);
      expect(Object.fromEntries(v.members.map((m) => [m.id, m.stateMachineVersion]))).toEqual({
        n1: NEW,
        n2: NEW,
        n3: 1,
      });
    }

    expect(await versions('n2')).toEqual({
      node: 'n2',
      clusterVersion: 1,
      supportedVersion: 1,
      upgradePending: false,
      members: [
        { id: 'n1', stateMachineVersion: NEW },
        { id: 'n2', stateMachineVersion: NEW },
        { id: 'n3', stateMachineVersion: 1 },
      ],
    });

    // A TTL check's verdict at v1: the check's record moves, the health does not (no setCheckHealth).
    const reg = await http('PUT', `${curl('n1')}/v1/agent/service/register`, {
      Name: 'ledger',
      ID: 'ledger-1',
      Address: '10.3.0.1',
      Port: 7000,
      Check: { TTL: '30s', Status: 'passing' },
    });
    expect(reg.status).toBe(200);
    expect((await http('PUT', `${curl('n2')}/v1/agent/check/fail/service:ledger-1`)).status).toBe(200);
    expect(await checkStatus('n3')).toBe('critical');
    expect(await Promise.all(['n1', 'n2', 'n3'].map(health))).toEqual(['healthy', 'healthy', 'healthy']);
    expect((await view('n1')).clusterVersion).toBe(1);

    // Upgrade n3: the leader raises the cluster version on every node.
    expect(await cluster.stop('n3')).toBe(0);
    oldBuild.delete('n3');
    await cluster.restart('n3');
    await waitFor(`cluster version ${NEW} on every node`, async () => {
      const vs = await Promise.all(['n1', 'n2', 'n3'].map(view));
      // n3 has just restarted: it learns the cluster version from the log before it has heard every member's build.
      return vs.every((v) => v.clusterVersion === NEW && v.members.every((m) => m.stateMachineVersion !== null))
        ? vs
        : undefined;
    });

    // n3 restarted: it may not have heard every member's status yet.
    const seen = await waitFor('n3 hears every member', async () => {
      const r = await versions('n3');
      return r.members.every((m) => m.stateMachineVersion !== null) ? r : undefined;
    });
    expect(seen).toMatchObject({
      clusterVersion: NEW,
      supportedVersion: NEW,
      upgradePending: false,
      members: [{ stateMachineVersion: NEW }, { stateMachineVersion: NEW }, { stateMachineVersion: NEW }],
    });

    // Now a verdict sets the health, on every node.
    expect((await http('PUT', `${curl('n3')}/v1/agent/check/warn/service:ledger-1`)).status).toBe(200);
    expect(await Promise.all(['n1', 'n2', 'n3'].map(health))).toEqual(['subhealthy', 'subhealthy', 'subhealthy']);

    // A v1 build refuses the data directory of a v2 cluster, naming both versions.
    expect(await cluster.stop('n2')).toBe(0);
    oldBuild.add('n2');
    await expect(cluster.restart('n2')).rejects.toThrow(
      new RegExp(`implements state-machine version 1, but the cluster version in the data directory is ${NEW}`),
    );
    oldBuild.delete('n2');
    await cluster.restart('n2');
    await waitForLeader(cluster.nodes.map((n) => n.url));
    expect((await view('n2')).clusterVersion).toBe(NEW);
  });
});
