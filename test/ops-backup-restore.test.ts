/**
 * Backup and restore end to end, with real processes (issue 20, "Backup and restore"):
 * a 3-node cluster with persistent instances and sessions; `rollcall snapshot save`
 * through a follower while writes go on; `status` counts; `restore` into three new data
 * directories started as a new cluster holding exactly the saved revision, sessions
 * granted a full TTL by its first leader; a restored member pointed at the old cluster is
 * refused; truncated and flipped files and non-empty data directories are refused.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { FORMAT_VERSION, foundingClusterId, readFormatVersion } from '../src/storage/index.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

// Short, so the restore case waits little for its age and the lapse case for the expiry;
// keepalives every 500 ms still reach a session several times a TTL.
const TTL_MS = 3000;
const children = new Set<ChildProcess>();
const clusters: LocalCluster[] = [];
let root: string;
let old: LocalCluster;
let leaderUrl: string;
let followerUrl: string;
/** Every instance the old cluster acknowledged: id -> [service, revision of its write]. */
const acked = new Map<string, { service: string; revision: number }>();
const sessions: { keep: string; lapse: string } = { keep: '', lapse: '' };
const timers: NodeJS.Timeout[] = [];

function cli(args: readonly string[]): Promise<Run> {
  const proc = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) =>
    proc.once('exit', (code) => {
      children.delete(proc);
      resolve({ code, stdout, stderr });
    }),
  );
}

async function put(url: string, service: string, id: string, body: Record<string, unknown>): Promise<void> {
  const r = await register(url, 'prod', service, id, { address: '10.0.0.1', port: 9000, ...body });
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  acked.set(id, { service, revision: Number(r.headers.get('x-rollcall-revision')) });
}

async function ids(url: string, service: string): Promise<string[]> {
  const r = await list(url, 'prod', service, '?consistency=serializable');
  expect(r.status).toBe(200);
  return (r.body.instances as { id: string }[]).map((i) => i.id).sort();
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'rollcall-backup-e2e-'));
  old = await LocalCluster.start({ size: 3, logLevel: 'warn', dataRoot: join(root, 'old') });
  clusters.push(old);
  const urls = old.nodes.map((n) => n.url);
  const leader = await waitForLeader(urls);
  leaderUrl = old.node(leader).url;
  followerUrl = old.nodes.find((n) => n.id !== leader)!.url;
  for (let i = 0; i < 200; i += 20) {
    await Promise.all(
      Array.from({ length: 20 }, (_, j) =>
        put(leaderUrl, i + j < 150 ? 'orders' : 'payments', `p-${i + j}`, { metadata: { pad: 'x'.repeat(200) } }),
      ),
    );
  }
  for (const which of ['keep', 'lapse'] as const) {
    const s = await http('POST', `${leaderUrl}/v1/sessions`, { ttlMs: TTL_MS });
    expect(s.status).toBe(201);
    sessions[which] = s.body.id as string;
    await put(leaderUrl, 'eph', `e-${which}`, { sessionId: s.body.id });
  }
});

afterAll(async () => {
  for (const t of timers) clearInterval(t);
  for (const p of children) p.kill('SIGKILL');
  await Promise.all(clusters.map((c) => c.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('rollcall snapshot: save, status, restore', () => {
  let file: string;
  let saved: {
    revision: number;
    applied: { index: number; term: number };
    counts: Record<string, number>;
    clusterId: string | null;
    node: string;
  };
  let savedAt = 0;

  it('saves through a follower while writes go on', async () => {
    file = join(root, 'backups', 'registry.snap');
    await mkdir(join(root, 'backups'));
    let writing = true;
    let written = 0;
    const keepalives = setInterval(() => {
      for (const id of Object.values(sessions))
        void http('PUT', `${followerUrl}/v1/sessions/${id}/keepalive`).catch(() => undefined);
    }, 500);
    const writer = (async () => {
      while (writing) await put(leaderUrl, 'stream', `w-${written++}`, {});
    })();
    try {
      await waitFor('writes under way', () => written > 20);
      const before = written;
      const r = await cli(['snapshot', 'save', file, '--endpoints', followerUrl, '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe(''); // progress goes to a terminal only
      saved = JSON.parse(r.stdout);
      // Writes went on while the snapshot streamed: the leader was not held up.
      await waitFor('more writes after the save', () => written > before + 20);
    } finally {
      writing = false;
      await writer;
      clearInterval(keepalives);
      savedAt = Date.now();
    }
    expect(saved.node).toBe(old.nodes.find((n) => n.url === followerUrl)!.id);
    // Founded by `rollcall server` without a token: the id of its member ids alone.
    expect(saved.clusterId).toBe(foundingClusterId(['n1', 'n2', 'n3'], ''));
    // The file holds exactly the acknowledged writes up to its revision (linearizable: all
    // acknowledged before the save began, at least).
    expect(saved.revision).toBeGreaterThanOrEqual(acked.get('w-20')!.revision);
    expect([...acked.values()].some((w) => w.revision > saved.revision)).toBe(true);
    const names = await readdir(join(root, 'backups'));
    expect(names).toEqual(['registry.snap']); // the temporary file was renamed, not left behind
  });

  const expectedAt = (revision: number) => [...acked].filter(([, w]) => w.revision <= revision);

  it('status shows the revision, the counts and a good checksum', async () => {
    const r = await cli(['snapshot', 'status', file, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout);
    const expected = expectedAt(saved.revision);
    expect(st).toMatchObject({
      file,
      format: 1,
      revision: saved.revision,
      applied: saved.applied,
      checksumOk: true,
      members: { voters: ['n1', 'n2', 'n3'], learners: [] },
      counts: { services: new Set(expected.map(([, w]) => w.service)).size, instances: expected.length, sessions: 2 },
    });
    expect(st.sha256).toMatch(/^[0-9a-f]{64}$/);
    const human = await cli(['snapshot', 'status', file]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`revision\\s+${saved.revision}\\n`));
    expect(human.stdout).toMatch(/checksum\s+ok/);
  });

  it('refuses a truncated file and a flipped byte, naming the file and the problem', async () => {
    const size = (await stat(file)).size;
    const cut = join(root, 'backups-bad', 'cut.snap');
    const flipped = join(root, 'backups-bad', 'flipped.snap');
    await mkdir(join(root, 'backups-bad'));
    await copyFile(file, cut);
    await truncate(cut, Math.floor(size * 0.6));
    const bytes = await readFile(file);
    bytes[Math.floor(size / 2)] = bytes[Math.floor(size / 2)]! ^ 0x04;
    await writeFile(flipped, bytes);

    const a = await cli(['snapshot', 'status', cut]);
    expect(a.code).toBe(9);
    expect(a.stderr).toContain(`rollcall: ${cut}: snapshot file is truncated:`);
    const b = await cli(['snapshot', 'status', flipped, '--json']);
    expect(b.code).toBe(9);
    expect(JSON.parse(b.stderr).error).toMatchObject({ code: 'CORRUPT', file: flipped });
    expect(JSON.parse(b.stderr).error.message).toMatch(
      /snapshot file is corrupt: record \d+ at byte \d+ fails its CRC-32/,
    );

    const data = join(root, 'bad-restore', 'n1');
    const c = await cli([
      'snapshot',
      'restore',
      flipped,
      '--data',
      data,
      '--id',
      'n1',
      '--peers',
      'n1=127.0.0.1:1',
      '--initial-cluster-token',
      'bad',
    ]);
    expect(c.code).toBe(9);
    expect(c.stderr).toContain(flipped);
    await expect(stat(data)).rejects.toThrow(/ENOENT/); // nothing written, not even the directory
    expect(await readdir(join(root, 'bad-restore')).catch(() => [])).toEqual([]); // no staging left behind
  });

  it('never restores into a data directory that is not empty', async () => {
    const data = join(root, 'busy', 'n1');
    await mkdir(data, { recursive: true });
    await writeFile(join(data, 'CURRENT'), "somebody else's");
    const r = await cli([
      'snapshot',
      'restore',
      file,
      '--data',
      data,
      '--id',
      'n1',
      '--peers',
      'n1=127.0.0.1:1',
      '--initial-cluster-token',
      'busy',
    ]);
    expect(r.code).toBe(10);
    expect(r.stderr).toMatch(/is not empty .* restore never overwrites a data directory/);
    expect(await readdir(data)).toEqual(['CURRENT']);
    expect(await readFile(join(data, 'CURRENT'), 'utf8')).toBe("somebody else's");
  });

  let restored: LocalCluster;
  let newClusterId: string;

  it('restores three members that start as a new cluster holding the saved revision', async () => {
    const httpPorts = [await freePort(), await freePort(), await freePort()];
    const peerPorts = [await freePort(), await freePort(), await freePort()];
    const peers = peerPorts.map((p, i) => `n${i + 1}=127.0.0.1:${p}`).join(',');
    const results = [];
    for (const id of ['n1', 'n2', 'n3']) {
      const r = await cli([
        'snapshot',
        'restore',
        file,
        '--data',
        join(root, 'new', id),
        '--id',
        id,
        '--peers',
        peers,
        '--initial-cluster-token',
        'restore-test',
        '--json',
      ]);
      expect(r.code, r.stderr).toBe(0);
      results.push(JSON.parse(r.stdout));
    }
    // Another restore of the same file with the same --peers (a test cluster beside the real
    // one) gets another id under another token, so the two never talk; none at all is refused.
    const twin = async (extra: readonly string[]) =>
      cli([
        'snapshot',
        'restore',
        file,
        '--data',
        join(root, 'twin', extra.join('-') || 'none'),
        '--id',
        'n1',
        '--peers',
        peers,
        '--json',
        ...extra,
      ]);
    const other = await twin(['--initial-cluster-token', 'restore-test-2']);
    expect(other.code, other.stderr).toBe(0);
    expect(JSON.parse(other.stdout).clusterId).toMatch(/^[0-9a-f]{16}$/);
    expect(JSON.parse(other.stdout).clusterId).not.toBe(results[0].clusterId);
    const untokened = await twin([]);
    expect(untokened.code).toBe(2);
    expect(JSON.parse(untokened.stderr).error).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(JSON.parse(untokened.stderr).error.message).toContain('--initial-cluster-token');
    // Each restored directory carries this build's storage format, as one `rollcall server` made would.
    for (const id of ['n1', 'n2', 'n3']) expect(await readFormatVersion(join(root, 'new', id))).toBe(FORMAT_VERSION);
    newClusterId = results[0].clusterId;
    expect(newClusterId).toMatch(/^[0-9a-f]{16}$/);
    expect(results.map((r) => r.clusterId)).toEqual([newClusterId, newClusterId, newClusterId]);
    expect(results[0]).toMatchObject({
      fromClusterId: saved.clusterId,
      revision: saved.revision,
      members: ['n1', 'n2', 'n3'],
    });

    // Older than the TTL before the new cluster starts: a deadline carried over from the
    // old cluster would expire every session at once.
    const age = Date.now() - savedAt;
    if (age < TTL_MS + 500) await new Promise((r) => setTimeout(r, TTL_MS + 500 - age));

    restored = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      dataRoot: join(root, 'new'),
      httpPorts,
      peerPorts,
    });
    clusters.push(restored);
    const leader = await waitForLeader(restored.nodes.map((n) => n.url));
    const leaderAt = Date.now();
    const url = restored.node(leader).url;
    // The client of `keep` goes on with the new cluster; the one of `lapse` is gone.
    timers.push(
      setInterval(() => void http('PUT', `${url}/v1/sessions/${sessions.keep}/keepalive`).catch(() => undefined), 500),
    );
    // Sessions are there, and still are half a TTL after the new leader took over: it
    // granted each a full TTL rather than expiring what the backup's age says lapsed.
    expect(await ids(url, 'eph')).toEqual(['e-keep', 'e-lapse']);
    await waitFor('half a TTL since the leader took over', () => Date.now() - leaderAt > TTL_MS * 0.5);
    expect(await ids(url, 'eph')).toEqual(['e-keep', 'e-lapse']);

    const expected = expectedAt(saved.revision);
    for (const service of ['orders', 'payments', 'stream']) {
      const want = expected
        .filter(([, w]) => w.service === service)
        .map(([id]) => id)
        .sort();
      for (const n of restored.nodes) expect(await ids(n.url, service), `${service} on ${n.id}`).toEqual(want);
    }
    const cluster = await http('GET', `${url}/v1/cluster`);
    expect(cluster.body.revision).toBeGreaterThanOrEqual(saved.revision);

    // The restored cluster takes writes, and a new backup of it carries its new id.
    const w = await register(url, 'prod', 'stream', 'after-restore', { address: '10.0.0.9', port: 1 });
    expect(w.status).toBeLessThan(300);
    expect(Number(w.headers.get('x-rollcall-revision'))).toBeGreaterThan(saved.revision);
    const again = join(root, 'backups', 'restored.snap');
    const s = await cli(['snapshot', 'save', again, '--endpoints', url, '--json']);
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).clusterId).toBe(newClusterId);
  });

  it('expires the restored sessions that are not kept alive, and keeps the ones that are', async () => {
    const url = restored.nodes[0]!.url;
    await waitFor('the lapsed session expires', async () => !(await ids(url, 'eph')).includes('e-lapse'), 20_000);
    expect(await ids(url, 'eph')).toEqual(['e-keep']);
  });

  it('refuses a restored member pointed at the old cluster, which goes on unharmed', async () => {
    const peerPort = await freePort();
    const oldPeer = (id: string) => `127.0.0.1:${old.node(id).peerPort}`;
    const peers = `n1=127.0.0.1:${peerPort},n2=${oldPeer('n2')},n3=${oldPeer('n3')}`;
    const r = await cli([
      'snapshot',
      'restore',
      file,
      '--data',
      join(root, 'stray', 'n1'),
      '--id',
      'n1',
      '--peers',
      peers,
      '--initial-cluster-token',
      'stray',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`(the backup came from cluster id ${saved.clusterId})`);
    expect(r.stdout).toMatch(/new cluster id [0-9a-f]{16} /);
    const lines: string[] = [];
    const stray = await LocalCluster.start({
      size: 1,
      logLevel: 'warn',
      dataRoot: join(root, 'stray'),
      peerPorts: [peerPort],
      httpPorts: [await freePort()],
      peers: () => peers,
      onLog: (_, l) => lines.push(l),
    });
    clusters.push(stray);
    await waitFor('the stray reports both old peers as another cluster', () =>
      ['n2', 'n3'].every((p) => lines.some((l) => l.includes('CLUSTER_MISMATCH') && l.includes(`"peer":"${p}"`))),
    );
    const view = await http('GET', `${stray.nodes[0]!.url}/v1/cluster`);
    expect(view.body.leader).toBeNull();
    expect(
      view.body.members
        .filter((m: { id: string; connected?: boolean }) => m.id !== 'n1')
        .every((m: { connected?: boolean }) => m.connected !== true),
    ).toBe(true);
    // The old cluster still takes writes under its leader of before.
    const before = await waitForLeader(old.nodes.map((n) => n.url));
    const w = await register(old.node(before).url, 'prod', 'stream', 'after-stray', { address: '10.0.0.9', port: 1 });
    expect(w.status).toBeLessThan(300);
  });
});
