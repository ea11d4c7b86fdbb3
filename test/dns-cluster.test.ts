/**
 * The DNS interface on a real 3-node cluster (separate processes, real LevelDB), asked by
 * the real `dig` (Debian dnsutils) over UDP and TCP, and by a dns-packet client for what dig
 * cannot send. Each node answers DNS on its own port (--dns-listen through
 * ROLLCALL_DNS_LISTEN) from its own state: instances are written through the leader (the
 * native API, or the Consul API for a TTL check) and looked up on a follower. dig comes from
 * `bash .ci/install-debian-tools.sh` (as .ci/run does); without it the suite is skipped.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { TRUNCATED_RESPONSE } from 'dns-packet';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { dataOf, queryTcp, queryUdp, tcpExchange, udpExchange } from './helpers/dns.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const DIG = '/usr/bin/dig';
const run = promisify(execFile);

interface DigRecord {
  readonly name: string;
  readonly ttl: number;
  readonly type: string;
  readonly data: string;
}

interface DigAnswer {
  readonly status: string;
  readonly flags: readonly string[];
  readonly answer: DigRecord[];
  readonly authority: DigRecord[];
  readonly additional: DigRecord[];
}

/** Runs dig against 127.0.0.1:`port` and reads its sections. */
async function dig(port: number, ...args: string[]): Promise<DigAnswer> {
  const { stdout } = await run(DIG, ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', ...args], {
    timeout: 15_000,
  });
  const status = /status: (\w+)/.exec(stdout)?.[1];
  const flags = /;; flags: ([^;]*);/.exec(stdout)?.[1]?.trim().split(/\s+/);
  if (status === undefined || flags === undefined) throw new Error(`dig said:\n${stdout}`);
  const sections: Record<string, DigRecord[]> = { ANSWER: [], AUTHORITY: [], ADDITIONAL: [] };
  let current: DigRecord[] | null = null;
  for (const line of stdout.split('\n')) {
    const header = /^;; (ANSWER|AUTHORITY|ADDITIONAL) SECTION:/.exec(line);
    if (header !== null) current = sections[header[1]!]!;
    else if (line.trim() === '' || line.startsWith(';')) current = line.trim() === '' ? null : current;
    else if (current !== null) {
      const [name, ttl, , type, ...data] = line.split(/\s+/);
      current.push({ name: name!, ttl: Number(ttl), type: type!, data: data.join(' ') });
    }
  }
  return {
    status,
    flags,
    answer: sections['ANSWER']!,
    authority: sections['AUTHORITY']!,
    additional: sections['ADDITIONAL']!,
  };
}

describe.skipIf(!existsSync(DIG))('DNS on a 3-node cluster, asked with dig', () => {
  let cluster: LocalCluster;
  let dnsPorts: number[];
  let consulPorts: number[];
  let leader: string;
  let followers: string[];
  const dnsPort = (id: string) => dnsPorts[Number(id.slice(1)) - 1]!;
  const url = (id: string) => cluster.node(id).url;

  beforeAll(async () => {
    dnsPorts = [await freePort(), await freePort(), await freePort()];
    consulPorts = [await freePort(), await freePort(), await freePort()];
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      nodeEnv: (id) => {
        const k = Number(id.slice(1)) - 1;
        return {
          ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPorts[k]}`,
          ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPorts[k]}`,
        };
      },
    });
    leader = await waitForLeader(cluster.nodes.map((n) => n.url));
  });
  beforeEach(async () => {
    leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    followers = cluster.nodes.map((n) => n.id).filter((id) => id !== leader);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  /** Registers through the leader (native API) and waits until follower `on` answers the name over DNS. */
  async function registerAll(
    service: string,
    instances: { id: string; address: string; port: number; tags?: string[] }[],
    on: string,
  ): Promise<void> {
    for (const i of instances) {
      const r = await register(url(leader), 'default', service, i.id, {
        address: i.address,
        port: i.port,
        tags: i.tags ?? [],
      });
      expect(r.status).toBe(200);
    }
    await waitFor(
      `${service} on ${on} over DNS`,
      async () =>
        (await queryTcp(dnsPort(on), `${service}.service.consul`, 'SRV')).answers?.length === instances.length ||
        undefined,
      10_000,
    );
  }

  it('an instance registered through the native API on the leader is found by A and SRV on a follower', async () => {
    const f = followers[0]!;
    const r = await register(url(leader), 'default', 'orders', 'o1', { address: '10.1.0.1', port: 9000, tags: ['v2'] });
    expect(r.status).toBe(200);
    const a = await waitFor('orders on a follower', async () => {
      const d = await dig(dnsPort(f), 'orders.service.consul', 'A');
      return d.answer.length > 0 ? d : undefined;
    });
    expect(a.status).toBe('NOERROR');
    expect(a.flags).toContain('aa');
    expect(a.answer).toEqual([{ name: 'orders.service.consul.', ttl: 0, type: 'A', data: '10.1.0.1' }]);

    const srv = await dig(dnsPort(f), 'orders.service.consul', 'SRV');
    expect(srv.answer).toEqual([
      { name: 'orders.service.consul.', ttl: 0, type: 'SRV', data: '1 100 9000 0a010001.addr.dc1.consul.' },
    ]);
    expect(srv.additional).toEqual([{ name: '0a010001.addr.dc1.consul.', ttl: 0, type: 'A', data: '10.1.0.1' }]);
    // The same over TCP, and the target name resolves on its own.
    expect((await dig(dnsPort(f), '+tcp', 'orders.service.dc1.dc.consul', 'SRV')).answer.map((x) => x.data)).toEqual([
      '1 100 9000 0a010001.addr.dc1.consul.',
    ]);
    expect((await dig(dnsPort(f), '0a010001.addr.dc1.consul', 'A')).answer.map((x) => x.data)).toEqual(['10.1.0.1']);
  });

  it('a tag filters; the RFC 2782 form with _tcp and with a tag', async () => {
    const f = followers[1]!;
    await registerAll(
      'api',
      [
        { id: 'a1', address: '10.2.0.1', port: 8001, tags: ['blue'] },
        { id: 'a2', address: '10.2.0.2', port: 8002, tags: ['green'] },
      ],
      f,
    );
    expect((await dig(dnsPort(f), 'blue.api.service.consul', 'A')).answer.map((x) => x.data)).toEqual(['10.2.0.1']);
    expect((await dig(dnsPort(f), '+tcp', 'green.api.service.consul', 'SRV')).answer.map((x) => x.data)).toEqual([
      '1 100 8002 0a020002.addr.dc1.consul.',
    ]);
    const all = await dig(dnsPort(f), '_api._tcp.service.consul', 'SRV');
    expect(all.answer.map((x) => x.data).sort()).toEqual([
      '1 100 8001 0a020001.addr.dc1.consul.',
      '1 100 8002 0a020002.addr.dc1.consul.',
    ]);
    expect(all.additional.map((x) => `${x.name} ${x.data}`).sort()).toEqual([
      '0a020001.addr.dc1.consul. 10.2.0.1',
      '0a020002.addr.dc1.consul. 10.2.0.2',
    ]);
    expect((await dig(dnsPort(f), '_api._green.service.consul', 'SRV')).answer.map((x) => x.data)).toEqual([
      '1 100 8002 0a020002.addr.dc1.consul.',
    ]);
  });

  it('an unknown name: NXDOMAIN with the SOA in the authority section; another datacenter: NXDOMAIN', async () => {
    for (const name of ['nothing-here.service.consul', 'orders.service.dc9.dc.consul']) {
      const d = await dig(dnsPort(followers[0]!), name, 'SRV');
      expect(d.status).toBe('NXDOMAIN');
      expect(d.answer).toEqual([]);
      expect(d.authority).toHaveLength(1);
      expect(d.authority[0]).toMatchObject({ name: 'consul.', type: 'SOA' });
      expect(d.authority[0]!.data).toMatch(/^ns\.consul\. hostmaster\.consul\. \d+ 3600 600 86400 0$/);
    }
    expect((await dig(dnsPort(followers[0]!), 'example.org', 'A')).status).toBe('REFUSED');
  });

  it('a critical instance is left out (a Consul TTL check failed through the leader), on every node', async () => {
    const consul = (id: string) => `http://127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}`;
    for (const [id, address] of [
      ['pay-1', '10.3.0.1'],
      ['pay-2', '10.3.0.2'],
    ] as const) {
      const r = await http('PUT', `${consul(leader)}/v1/agent/service/register`, {
        Name: 'pay',
        ID: id,
        Address: address,
        Port: 7000,
        Check: { TTL: '5m', Status: 'passing' },
      });
      expect(r.status).toBe(200);
    }
    const f = followers[0]!;
    await waitFor('both pay instances on a follower', async () =>
      (await dig(dnsPort(f), 'pay.service.consul', 'A')).answer.length === 2 ? true : undefined,
    );
    expect((await http('PUT', `${consul(leader)}/v1/agent/check/fail/service:pay-2?note=disk%20full`)).status).toBe(
      200,
    );
    for (const id of cluster.nodes.map((n) => n.id)) {
      const d = await waitFor(`pay-2 left out on ${id}`, async () => {
        const x = await dig(dnsPort(id), 'pay.service.consul', 'SRV');
        return x.answer.length === 1 ? x : undefined;
      });
      expect(d.answer[0]!.data).toBe('1 100 7000 0a030001.addr.dc1.consul.');
    }
  });

  it('many instances: TC over UDP, the full answer over TCP', async () => {
    const f = followers[1]!;
    const n = 60;
    await registerAll(
      'big',
      Array.from({ length: n }, (_, k) => ({ id: `b${k}`, address: `10.4.${k >> 8}.${k & 255}`, port: 9000 + k })),
      f,
    );
    // dig without EDNS (512 bytes), and told not to retry over TCP on its own.
    const udp = await dig(dnsPort(f), '+noedns', '+ignore', 'big.service.consul', 'SRV');
    expect(udp.flags).toContain('tc');
    expect(udp.answer.length).toBeGreaterThan(0);
    expect(udp.answer.length).toBeLessThan(n);
    // With EDNS (dig offers 1232 bytes): more, still truncated.
    const edns = await dig(dnsPort(f), '+ignore', 'big.service.consul', 'SRV');
    expect(edns.flags).toContain('tc');
    expect(edns.answer.length).toBeGreaterThan(udp.answer.length);
    // dig's default: on TC it asks again over TCP and gets every record.
    const retried = await dig(dnsPort(f), 'big.service.consul', 'SRV');
    expect(retried.flags).not.toContain('tc');
    expect(retried.answer).toHaveLength(n);
    const tcp = await dig(dnsPort(f), '+tcp', 'big.service.consul', 'SRV');
    expect(tcp.answer).toHaveLength(n);
    expect(tcp.additional).toHaveLength(n);
    expect(new Set(tcp.answer.map((x) => x.data.split(' ')[2])).size).toBe(n);

    // The dns-packet client sees the same bounds: 512 bytes without EDNS, and TC.
    const small = await queryUdp(dnsPort(f), 'big.service.consul', 'A');
    expect(((small.flags ?? 0) & TRUNCATED_RESPONSE) !== 0).toBe(true);
    expect(dataOf(small.answers, 'A').length).toBeLessThan(n);
    expect(dataOf((await queryTcp(dnsPort(f), 'big.service.consul', 'A')).answers, 'A')).toHaveLength(n);
  });

  it('bad packets do not stop a node answering', async () => {
    const f = followers[0]!;
    const port = dnsPort(f);
    await registerAll('ping', [{ id: 'p1', address: '10.5.0.1', port: 7 }], f);
    const garbage = [
      Buffer.from([0]),
      Buffer.from('not a dns message at all'),
      Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x05, 0, 0, 0, 0, 0, 0, 0x3f, 0x61]),
    ];
    for (const g of garbage) await udpExchange(port, g, 300);
    await tcpExchange(port, garbage, 500);
    const formerr = await udpExchange(port, garbage[2]!);
    expect(formerr).not.toBeNull();
    expect(cluster.node(f).proc).not.toBeNull();
    expect(dataOf((await queryUdp(port, 'ping.service.consul', 'A')).answers, 'A')).toEqual(['10.5.0.1']);
    expect((await dig(port, 'ping.service.consul', 'A')).status).toBe('NOERROR');
  });

  // Last: it leaves the cluster without a quorum.
  it('with no quorum (two nodes killed), the survivor still answers DNS from its own state', async () => {
    const survivor = followers[0]!;
    await registerAll('solo', [{ id: 's1', address: '10.6.0.1', port: 6000 }], survivor);
    for (const id of cluster.nodes.map((n) => n.id).filter((id) => id !== survivor)) await cluster.kill(id);
    // A linearizable read on the survivor cannot be served any more (no leader to confirm with) ...
    const read = await http(
      'GET',
      `${url(survivor)}/v1/namespaces/default/services/solo/instances`,
      undefined,
      {},
      15_000,
    );
    expect(read.status).toBeGreaterThanOrEqual(500);
    // ... but DNS answers, over UDP and TCP.
    expect((await dig(dnsPort(survivor), 'solo.service.consul', 'A')).answer.map((x) => x.data)).toEqual(['10.6.0.1']);
    expect((await dig(dnsPort(survivor), '+tcp', 'solo.service.consul', 'SRV')).answer.map((x) => x.data)).toEqual([
      '1 100 6000 0a060001.addr.dc1.consul.',
    ]);
  });
});
