/**
 * The federation flags (src/server/config.ts) and the host's durable knowledge
 * (src/federation/host.ts): what a node stores in <data>/federation.json and reads back.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FederationHost, KNOWLEDGE_FILE, loadKnowledge } from '../src/federation/host.js';
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
      expect(await readdir(dir)).toEqual([KNOWLEDGE_FILE]); // no temp file left behind
      // A hop signed here verifies; altered, it does not.
      const hop = host.hopHeader('GET', '/v1/x?dc=dc-b');
      expect(host.verifyHop(hop, 'GET', '/v1/x?dc=dc-b')).toBe('dc-a');
      expect(host.verifyHop(hop, 'PUT', '/v1/x?dc=dc-b')).toBeNull();
    } finally {
      await host.close();
    }
  });
});
