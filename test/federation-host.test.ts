/**
 * The federation flags (src/server/config.ts) and the host's durable knowledge
 * (src/federation/host.ts): what a node stores in <data>/federation.json and reads back.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ClusterView,
  FederationHost,
  INCARNATION_FILE,
  KNOWLEDGE_FILE,
  loadKnowledge,
} from '../src/federation/host.js';
import { createLogger } from '../src/log/index.js';
import { ConfigError, resolveConfig } from '../src/server/config.js';

const BASE = {
  id: 'n1',
  data: '/tmp/x',
  listen: '127.0.0.1:8101',
  peers: 'n1=127.0.0.1:7101',
  'cluster-secret': 'local-secret',
};

describe('federation flags', () => {
  it('off without a secret; on with one, join URLs and the round', () => {
    expect(resolveConfig(BASE, {}).federation).toBeNull();
    expect(
      resolveConfig(
        {
          ...BASE,
          datacenter: 'dc-b',
          'federation-secret': 'fed-secret-1',
          'federation-join': 'http://10.0.0.1:8101/, https://h:1',
          'federation-interval-ms': '200',
        },
        {},
      ),
    ).toMatchObject({
      consul: { datacenter: 'dc-b' },
      federation: { secret: 'fed-secret-1', join: ['http://10.0.0.1:8101', 'https://h:1'], intervalMs: 200 },
    });
    expect(resolveConfig(BASE, { ROLLCALL_FEDERATION_SECRET: 'from-the-env' }).federation?.intervalMs).toBe(1000);
  });

  it.each([
    [{ datacenter: 'dc_1' }, '--datacenter'],
    [{ datacenter: 'x'.repeat(64) }, '--datacenter'],
    [{ 'federation-secret': 'short' }, '--federation-secret'],
    [{ 'federation-join': 'http://10.0.0.1:8101' }, '--federation-join'],
    [{ 'federation-secret': 'fed-secret-1', 'federation-join': '10.0.0.1:8101' }, '--federation-join'],
    [{ 'federation-secret': 'fed-secret-1', 'federation-interval-ms': '5' }, '--federation-interval-ms'],
  ])('refuses %j naming %s', (flags, setting) => {
    let caught: unknown;
    try {
      resolveConfig({ ...BASE, ...flags }, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).setting).toBe(setting);
  });
});

describe('durable knowledge', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const status = () => ({
    id: 'n1',
    leader: 'n1',
    term: 1,
    appliedIndex: 1,
    revision: 0,
    members: [{ id: 'n1', isLearner: false, reported: null }],
  });

  it('none at first; leave stores an empty list atomically, and it is read back', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-'));
    const file = path.join(dir, KNOWLEDGE_FILE);
    expect(await loadKnowledge(file)).toEqual({ datacenters: [] });
    await writeFile(
      file,
      JSON.stringify({
        datacenters: [
          { name: 'dc-b', seeds: ['http://127.0.0.1:9'] },
          { name: 'bad name', seeds: [] },
        ],
      }),
    );
    expect(await loadKnowledge(file)).toEqual({ datacenters: [{ name: 'dc-b', seeds: ['http://127.0.0.1:9'] }] });

    const host = await FederationHost.start({
      datacenter: 'dc-a',
      nodeId: 'n1',
      address: 'http://127.0.0.1:1',
      secret: 'fed-secret-1',
      join: [],
      dataDir: dir,
      logger: createLogger({ level: 'silent', name: 'n1' }),
      status,
    });
    try {
      // What was stored is known again at start (and tried every round until it answers).
      expect(host.snapshot()!.datacenters.map((d) => d.name)).toEqual(['dc-a', 'dc-b']);
      await host.leave();
      expect(host.active).toBe(false);
      expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({ datacenters: [] });
      expect((await readdir(dir)).sort()).toEqual([INCARNATION_FILE, KNOWLEDGE_FILE]); // no temp file left behind
      // A hop signed here verifies; altered, it does not.
      const hop = host.hopHeader('GET', '/v1/x?dc=dc-b');
      expect(host.verifyHop(hop, 'GET', '/v1/x?dc=dc-b')).toBe('dc-a');
      expect(host.verifyHop(hop, 'PUT', '/v1/x?dc=dc-b')).toBeNull();
    } finally {
      await host.close();
    }
  });
});

describe("the local datacenter's version (issue 18 regression)", () => {
  let dir = '';
  afterEach(async () => {
    vi.useRealTimers();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const WALL = Date.UTC(2026, 0, 1);
  /** Fake timers drive the host's refresh timer; the clock reads the faked Date. */
  const clock = { now: () => Date.now() - WALL, wallNow: () => Date.now() };
  const url = (id: string) => `http://127.0.0.1:1/${id}`;
  /** n1's cluster as it looks while the peers' status reports arrive: nothing is written, the term stands still. */
  const cluster = (reported: readonly string[], leader: string | null = 'n1'): ClusterView => ({
    id: 'n1',
    leader,
    term: 2,
    revision: 3,
    members: ['n1', 'n2', 'n3'].map((id) => ({
      id,
      isLearner: false,
      reported: reported.includes(id) ? { http: url(id) } : null,
    })),
  });
  const start = (status: () => ClusterView) =>
    FederationHost.start({
      datacenter: 'dc-b',
      nodeId: 'n1',
      address: url('n1'),
      secret: 'fed-secret-1',
      join: [],
      dataDir: dir,
      logger: createLogger({ level: 'silent', name: 'n1' }),
      status,
      clock,
    });
  const own = (host: FederationHost) => host.snapshot()!.datacenters.find((d) => d.local)!;
  const newer = (a: { term: number; index: number }, b: { term: number; index: number }) =>
    a.term > b.term || (a.term === b.term && a.index > b.index);

  it('rises whenever the member list, an address or the leader changes, though the applied index does not', async () => {
    vi.useFakeTimers({ now: WALL });
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-'));
    let view = cluster([]);
    const host = await start(() => view);
    try {
      const seen = [{ members: own(host).members.length, version: own(host).version }];
      for (const next of [
        cluster(['n2']),
        cluster(['n2', 'n3']),
        cluster(['n2', 'n3'], null),
        cluster(['n2', 'n3'], 'n2'),
      ]) {
        view = next;
        await vi.advanceTimersByTimeAsync(1_000);
        seen.push({ members: own(host).members.length, version: own(host).version });
      }
      expect(seen.map((s) => s.members)).toEqual([1, 2, 3, 3, 3]);
      // Each view must beat the one before it everywhere: otherwise a node that heard the
      // one-member view first keeps it (the 6-of-9 nodes stuck with dc-b at 1 member).
      for (let i = 1; i < seen.length; i++)
        expect(newer(seen[i]!.version, seen[i - 1]!.version), JSON.stringify(seen)).toBe(true);
      // Nothing changed: the version stays (a new version every refresh would be churn).
      await vi.advanceTimersByTimeAsync(2_000);
      expect(own(host).version).toEqual(seen.at(-1)!.version);
    } finally {
      await host.close();
    }
  });

  it('rises across a restart, even with the same term', async () => {
    vi.useFakeTimers({ now: WALL });
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-'));
    const before = await start(() => cluster(['n2', 'n3']));
    const old = own(before).version;
    await before.close();
    await vi.advanceTimersByTimeAsync(1_000);
    const restarted = await start(() => cluster(['n2']));
    try {
      expect(own(restarted).members).toHaveLength(2);
      expect(newer(own(restarted).version, old), JSON.stringify([old, own(restarted).version])).toBe(true);
    } finally {
      await restarted.close();
    }
  });
});

describe('the incarnation across restarts', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is stored before the first message and never reused, even when the wall clock stepped back', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-'));
    let wall = Date.UTC(2026, 5, 1);
    const clock = { now: () => performance.now(), wallNow: () => wall };
    const start = () =>
      FederationHost.start({
        datacenter: 'dc-a',
        nodeId: 'n1',
        address: 'http://127.0.0.1:1',
        secret: 'fed-secret-1',
        join: [],
        dataDir: dir,
        logger: createLogger({ level: 'silent', name: 'n1' }),
        status: () => ({ id: 'n1', leader: 'n1', term: 1, revision: 0, members: [] }),
        clock,
      });
    const first = await start();
    const used = first.snapshot()!.incarnation;
    expect(used).toBe(wall);
    expect(Number(await readFile(path.join(dir, INCARNATION_FILE), 'utf8'))).toBe(used);
    await first.close();
    // The clock went back an hour while the node was down: the wall clock alone would reuse an older incarnation.
    wall -= 3_600_000;
    const second = await start();
    try {
      expect(second.snapshot()!.incarnation).toBe(used + 1);
      // Leaving (announced at a new incarnation) forgets the other datacenters, not the
      // incarnation; a new join starts above it.
      await second.leave();
      expect(Number(await readFile(path.join(dir, INCARNATION_FILE), 'utf8'))).toBe(used + 2);
      second.join('http://127.0.0.1:9');
      expect(second.snapshot()!.incarnation).toBe(used + 3);
    } finally {
      await second.close();
    }
    expect(Number(await readFile(path.join(dir, INCARNATION_FILE), 'utf8'))).toBe(used + 3);
  });
});
