/**
 * A node's peer addresses are its own: `--peers` says how this node reaches the others,
 * and nodes may reach one peer by different addresses (NAT, a sidecar proxy, a hostname on
 * one and an IP on another). Found while routing peer links through proxies for netsplit
 * faults (docs/linearizability.md, "Partitions through proxies"): a follower that installed
 * a snapshot took the leader's address book instead. The snapshot was the whole state
 * machine sublevel, the `\x00meta/peers` key included, `onSnapshotInstalled` loaded it into
 * the transport, and `RollcallNode.start` then preferred the stored book to `--peers` on
 * every restart. Now only the addresses members were added with are replicated, and the
 * flags win (src/node/peer-book.ts); a member added at runtime is still reached by every
 * node, through an install and a restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { TcpProxy } from '../scripts/net-proxy.js';
import { dialerId } from '../scripts/peer-net.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Member {
  id: string;
  connected: boolean;
  commitIndex: number | null;
  appliedIndex: number | null;
}

async function member(url: string, id: string): Promise<Member | undefined> {
  const r = await http('GET', `${url}/v1/cluster`, undefined, {}, 2000);
  return (r.body.members as Member[]).find((m) => m.id === id);
}

describe('peer addresses', () => {
  let cluster: LocalCluster | undefined;
  let proxy: TcpProxy | undefined;
  afterEach(async () => {
    await cluster?.close();
    await proxy?.close();
    cluster = proxy = undefined;
  });

  it('a follower keeps its own address for a peer after installing a snapshot', async () => {
    const peerPorts = [await freePort(), await freePort(), await freePort()];
    const httpPorts = [await freePort(), await freePort(), await freePort()];
    // n3 reaches n1 through a proxy; n1 and n2 know n1 by its own port.
    proxy = await TcpProxy.start({ upstream: { host: '127.0.0.1', port: peerPorts[0]! }, identify: dialerId });
    const p = proxy;
    const n1Direct = `n1=127.0.0.1:${peerPorts[0]}`;
    cluster = await LocalCluster.start({
      size: 3,
      httpPorts,
      peerPorts,
      logLevel: 'warn',
      env: { ROLLCALL_COMPACT_EVERY: '50' },
      peers: (id, flag) => (id === 'n3' ? flag.replace(n1Direct, `n1=127.0.0.1:${p.address.port}`) : flag),
    });
    const c = cluster;
    const url = (id: string) => c.node(id).url;
    await waitFor('n3 dials n1 through its proxy', () => (p.stats().sources['n3']?.connections ?? 0) > 0);
    await waitForLeader(['n1', 'n2', 'n3'].map(url));

    // n3 misses enough entries that the leader compacts past them: it catches up by snapshot.
    await c.kill('n3');
    const leader = await waitForLeader(['n1', 'n2'].map(url));
    for (let i = 0; i < 120; i++) {
      const r = await register(url(leader), 'book', 'svc', `i${i}`, { address: '10.1.0.1', port: 1000 + i });
      expect(r.status).toBe(200);
    }
    await c.restart('n3');
    await waitFor('n3 caught up', async () => {
      const l = await member(url(leader), leader);
      const me = await member(url('n3'), 'n3');
      return l?.commitIndex != null && me?.appliedIndex != null && me.appliedIndex >= l.commitIndex;
    });

    // With its own address, n3 reaches n1 only through the proxy: cutting it cuts n3 off n1
    // for good. (An absence takes a while to see: the install switches the address a moment
    // after the apply, and a stream that comes back direct does so within the backoff.)
    await sleep(1500);
    await waitFor('n3 connected to n1', async () => (await member(url('n3'), 'n1'))?.connected === true);
    p.cut('reset');
    await sleep(2500);
    expect((await member(url('n3'), 'n1'))?.connected, 'n3 still reaches n1 with its own route to n1 cut').toBe(false);
  }, 90_000);

  it('a member added at runtime is reached by nodes whose --peers do not name it, after a snapshot install and a restart', async () => {
    const installs: string[] = [];
    // n1 (there when n4 is added) and n3 (down then: it catches up by snapshot) are never
    // told n4's address: they can have it only from the replicated record of added members.
    const withoutN4 = (flag: string) =>
      flag
        .split(',')
        .filter((e) => !e.startsWith('n4='))
        .join(',');
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'info',
      env: { ROLLCALL_COMPACT_EVERY: '50' },
      peers: (id, flag) => (id === 'n1' || id === 'n3' ? withoutN4(flag) : flag),
      onLog: (id, line) => {
        if (line.includes('installed a snapshot from the leader')) installs.push(id);
      },
    });
    const c = cluster;
    const url = (id: string) => c.node(id).url;
    await waitForLeader(['n1', 'n2', 'n3'].map(url));
    await c.kill('n3');
    await waitForLeader(['n1', 'n2'].map(url));
    await c.addNode();
    const add = await http('POST', `${url('n2')}/v1/cluster/members`, { id: 'n4', peerAddress: c.peerAddress('n4') });
    expect(add.status, JSON.stringify(add.body)).toBe(201);
    await waitFor(
      'n4 to be promoted to voter',
      async () => {
        const m = (await http('GET', `${url('n2')}/v1/cluster`)).body.members as { id: string; voter: boolean }[];
        return m.find((x) => x.id === 'n4')?.voter === true;
      },
      30_000,
    );
    // Past the conf change that carried n4's address: n3 gets it from a snapshot.
    for (let i = 0; i < 120; i++) {
      const r = await register(url('n2'), 'book', 'svc', `i${i}`, { address: '10.1.0.1', port: 1000 + i });
      expect(r.status).toBe(200);
    }
    const connected = (from: string, to: string) =>
      waitFor(`${from} connected to ${to}`, async () => (await member(url(from), to))?.connected === true, 20_000);

    await c.restart('n3');
    await waitFor('n3 installed a snapshot', () => installs.includes('n3'), 30_000);
    await connected('n3', 'n4');
    await connected('n4', 'n3');

    // A restart reads the record back from the state machine, on the follower that had it
    // from the snapshot and on a node that applied the conf change itself.
    await c.kill('n3');
    await c.restart('n3');
    await connected('n3', 'n4');
    await c.kill('n1');
    await c.restart('n1');
    await connected('n1', 'n4');
    await connected('n4', 'n1');
  }, 120_000);
});
