/**
 * The cluster id `rollcall server` gives a cluster it founds (foundingClusterId in
 * src/storage/cluster-id.ts; docs/operations.md, "Cluster ids"): derived, as etcd's, from
 * the founding member ids and --initial-cluster-token, so every founding member has the
 * same one without a message exchanged. Against a real LevelDB (openNodeData): a founding
 * member stores it before anything else, a member wiped and founded again with the same
 * flags gets the same one, a node that already has data keeps what it has (none, for a
 * cluster founded by an earlier build), and --join stores none until a cluster adds it.
 * Before founding ids, a cluster `rollcall server` founded had no id at all.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { openNodeData } from '../src/node/open-data.js';
import type { NodeOptions } from '../src/node/options.js';
import { restoreClusterId } from '../src/ops/restore.js';
import { ConfigError, resolveConfig } from '../src/server/config.js';
import { foundingClusterId, isClusterToken, readClusterId } from '../src/storage/index.js';
import { RAFT_KEYS } from '../src/storage/keys.js';
import { isClusterId, type PeerAddress } from '../src/transport/index.js';

const peersOf = (...ids: string[]): Map<string, PeerAddress> =>
  new Map(ids.map((id, i) => [id, { host: '127.0.0.1', port: 7101 + i }]));

describe('foundingClusterId', () => {
  it('is the same for the same members and token, whatever their order', () => {
    const id = foundingClusterId(['n1', 'n2', 'n3'], 'prod-2026');
    expect(id).toMatch(/^[0-9a-f]{16}$/);
    expect(isClusterId(id)).toBe(true);
    expect(foundingClusterId(['n3', 'n1', 'n2'], 'prod-2026')).toBe(id);
    expect(foundingClusterId(new Set(['n2', 'n3', 'n1']), 'prod-2026')).toBe(id);
  });

  it('changes with the token and with the members', () => {
    const id = foundingClusterId(['n1', 'n2', 'n3'], 'prod-2026');
    expect(foundingClusterId(['n1', 'n2', 'n3'], 'prod-2027')).not.toBe(id);
    expect(foundingClusterId(['n1', 'n2', 'n3'], '')).not.toBe(id);
    expect(foundingClusterId(['n1', 'n2', 'n4'], 'prod-2026')).not.toBe(id);
    expect(foundingClusterId(['n1', 'n2'], 'prod-2026')).not.toBe(id);
    // The member list and the token are kept apart: moving a character across does not collide.
    expect(foundingClusterId(['n1', 'n2', 'n3x'], '')).not.toBe(foundingClusterId(['n1', 'n2', 'n3'], 'x'));
  });

  it("differs from a restore's id for the same members and token", () => {
    const peers = peersOf('n1', 'n2', 'n3');
    for (const token of ['', 'prod-2026'])
      for (const sha of ['', '0'.repeat(64), 'ab'.repeat(32)])
        expect(restoreClusterId(sha, peers, token)).not.toBe(foundingClusterId(peers.keys(), token));
  });

  it("takes restore's token rules", () => {
    expect(isClusterToken('prod-restore-2026-05-01')).toBe(true);
    expect(isClusterToken('a'.repeat(256))).toBe(true);
    for (const bad of ['', 'two words', 'tab\there', 'é', 'a'.repeat(257)]) expect(isClusterToken(bad)).toBe(false);
  });
});

describe('--initial-cluster-token', () => {
  const BASE = {
    id: 'n1',
    data: '/tmp/x',
    listen: '127.0.0.1:1',
    peers: 'n1=127.0.0.1:2',
    'cluster-secret': 'secret-secret',
  };

  it('comes from the flag, the environment or the config file; none by default', async () => {
    expect(resolveConfig(BASE, {}).initialClusterToken).toBeNull();
    expect(resolveConfig({ ...BASE, 'initial-cluster-token': 'dc1-2026' }, {}).initialClusterToken).toBe('dc1-2026');
    expect(resolveConfig(BASE, { ROLLCALL_INITIAL_CLUSTER_TOKEN: 'from-env' }).initialClusterToken).toBe('from-env');
    const dir = await mkdtemp(join(tmpdir(), 'rollcall-token-config-'));
    try {
      const file = join(dir, 'config.json');
      await writeFile(file, JSON.stringify({ 'initial-cluster-token': 'from-file' }));
      expect(resolveConfig({ ...BASE, config: file }, {}).initialClusterToken).toBe('from-file');
      expect(
        resolveConfig({ ...BASE, config: file }, { ROLLCALL_INITIAL_CLUSTER_TOKEN: 'from-env' }).initialClusterToken,
      ).toBe('from-env');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is refused when it breaks the token rules, naming the flag', () => {
    expect(() => resolveConfig({ ...BASE, 'initial-cluster-token': 'two words' }, {})).toThrow(ConfigError);
    expect(() => resolveConfig({ ...BASE, 'initial-cluster-token': 'two words' }, {})).toThrow(
      /^--initial-cluster-token: must be 1-256 printable characters without spaces/,
    );
  });
});

describe('a founding member stores its cluster id (openNodeData)', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rollcall-founding-id-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const options = (extra: Partial<NodeOptions> = {}): NodeOptions => ({
    id: 'n1',
    dataDir: dir,
    peers: peersOf('n1', 'n2', 'n3'),
    peerListen: { host: '127.0.0.1', port: 7101 },
    secret: 'local-cluster-secret',
    logger: silentLogger(),
    // Fixed ports: a local cluster of the same ids and secret (npm start) must not answer
    // the founding guard's probe here (test/founding-guard.test.ts tests the guard).
    foundingProbeMs: 0,
    ...extra,
  });

  /** Opens the data directory as RollcallNode.start does, runs `use`, closes it. */
  async function open<T>(o: NodeOptions, use: (data: Awaited<ReturnType<typeof openNodeData>>) => Promise<T> | T) {
    const failures: unknown[] = [];
    const data = await openNodeData(o, (err) => failures.push(err));
    try {
      return await use(data);
    } finally {
      await data.storage.close();
      expect(failures).toEqual([]);
    }
  }

  it('derives it from the members and token, and a wiped member founded again gets the same one', async () => {
    const expected = foundingClusterId(['n1', 'n2', 'n3'], 'dc1-2026');
    const o = options({ initialClusterToken: 'dc1-2026' });
    await open(o, async ({ db, cluster, storage }) => {
      expect(await readClusterId(db)).toBe(expected);
      expect(cluster.current).toBe(expected);
      expect(cluster.wire).toEqual({ cid: expected });
      expect(storage.lastIndex()).toBeGreaterThan(0);
    });
    // Restarted: it has data, so nothing is derived again; the stored id holds.
    await open(options({ initialClusterToken: 'another-token' }), ({ cluster }) =>
      expect(cluster.current).toBe(expected),
    );
    await rm(dir, { recursive: true, force: true });
    await open(o, ({ cluster }) => expect(cluster.current).toBe(expected));
  });

  it('without a token, from the members alone', async () => {
    await open(options(), ({ cluster }) => expect(cluster.current).toBe(foundingClusterId(['n1', 'n2', 'n3'], '')));
  });

  it('a cluster founded by an earlier build (no id) keeps none', async () => {
    await open(options(), async ({ db }) => {
      // What a build before founding ids left: a founded log, no id record.
      await db.raft.del(RAFT_KEYS.clusterId);
    });
    await open(options({ initialClusterToken: 'dc1-2026' }), async ({ db, cluster }) => {
      expect(cluster.current).toBeNull();
      expect(cluster.wire).toEqual({});
      expect(await readClusterId(db)).toBeNull();
    });
  });

  it('a node started empty with --join stores none and waits for the cluster that adds it', async () => {
    await open(options({ join: true, initialClusterToken: 'dc1-2026' }), async ({ db, cluster, storage }) => {
      expect(cluster.assigned).toBe(false);
      expect(cluster.wire).toEqual({ joining: true });
      expect(await readClusterId(db)).toBeNull();
      expect(storage.lastIndex()).toBe(0);
    });
  });
});
