/**
 * The on-disk format across builds, with real processes (issue 20, "Rolling upgrades": the
 * on-disk format carries its version; docs/storage.md, "Format version"):
 *
 * - test/fixtures/data-v1.tar.gz is the data directory of a one-node cluster written by the
 *   last build of storage format 1 (the Raft log inside LevelDB), made by
 *   test/fixtures/make-data-v1.sh. This build starts on it, migrates it to format 2 (and
 *   logs that it did), serves every instance and session it held, takes writes, and starts
 *   on it again.
 * - The same directory marked with the next format version (as a newer build would leave
 *   it) is refused: the node exits 1 with a message naming the directory, both versions and
 *   what to do, and the directory is left as it was.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { encode } from '../src/codec/index.js';
import { FORMAT_VERSION, openNodeDatabase, readFormatVersion, walDir } from '../src/storage/index.js';
import { list, register, waitFor, waitForLeader } from './helpers/http.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'data-v1.tar.gz');

/** What make-data-v1.sh registered: prod/orders o00..o23 but o05, and eph-1 on a 24 h session. */
const ORDERS = [
  ...Array.from({ length: 24 }, (_, i) => `o${String(i).padStart(2, '0')}`).filter((id) => id !== 'o05'),
  'eph-1',
].sort();
const BILLING = ['b0', 'b1', 'b2', 'b3'];

interface Instance {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly cluster: string;
  readonly tags: readonly string[];
  readonly metadata: Record<string, string>;
  readonly sessionId: string | null;
}

async function instances(url: string, ns: string, svc: string): Promise<Instance[]> {
  const r = await list(url, ns, svc);
  expect(r.status).toBe(200);
  return (r.body.instances as Instance[]).slice().sort((a, b) => a.id.localeCompare(b.id));
}

describe('a data directory written by the previous storage format', () => {
  let root: string;
  let dataDir: string;
  let cluster: LocalCluster | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rollcall-format-'));
    await promisify(execFile)('tar', ['-xzf', FIXTURE, '-C', root]);
    dataDir = join(root, 'n1');
  });
  afterAll(async () => {
    await cluster?.close();
    await rm(root, { recursive: true, force: true });
  });

  it('is migrated at start: every instance and session is served, writes go on, and it starts again', async () => {
    // Format 1 as written: no WAL yet (the log is under `!log!` in LevelDB).
    expect(await readdir(dataDir)).not.toContain('wal');

    const logs: string[] = [];
    cluster = await LocalCluster.start({
      size: 1,
      dataRoot: root,
      logLevel: 'warn',
      onLog: (_, line) => logs.push(line),
    });
    const url = cluster.node('n1').url;
    await waitForLeader([url]);
    // Log lines come through a pipe, maybe after the node said it is ready.
    await waitFor('the node to log the migration', () =>
      logs.some((l) => l.includes(`migrated ${dataDir} from storage format 1 to ${FORMAT_VERSION}`)),
    );

    const orders = await instances(url, 'prod', 'orders');
    expect(orders.map((i) => i.id)).toEqual(ORDERS);
    expect(orders.find((i) => i.id === 'o17')).toMatchObject({
      address: '10.1.0.1',
      port: 9017,
      metadata: { i: '17' },
    });
    // The session was granted a full TTL (24 h) by this leader: its instance is still there.
    expect(orders.find((i) => i.id === 'eph-1')).toMatchObject({
      port: 9999,
      sessionId: expect.stringMatching(/^s-/),
    });
    const billing = await instances(url, 'test', 'billing');
    expect(billing.map((i) => i.id)).toEqual(BILLING);
    for (const b of billing) expect(b).toMatchObject({ cluster: 'vip', tags: ['canary'] });

    const w = await register(url, 'prod', 'orders', 'after-upgrade', { address: '10.1.0.2', port: 9100 });
    expect(w.status).toBe(200);

    expect(await cluster.stop('n1')).toBe(0);
    // On disk it is format 2 now: the log is in the WAL, and LevelDB holds no format 1 key.
    expect(await readFormatVersion(dataDir)).toBe(FORMAT_VERSION);
    expect((await readdir(walDir(dataDir))).some((name) => name.endsWith('.wal'))).toBe(true);
    const db = await openNodeDatabase(dataDir);
    try {
      expect(await db.raft.keys().all()).toEqual(['format']);
      const oldLog = await db.db
        .keys({ gte: new TextEncoder().encode('!log!'), lt: new TextEncoder().encode('!log"'), limit: 1 })
        .all();
      expect(oldLog).toEqual([]);
    } finally {
      await db.db.close();
    }

    await cluster.restart('n1');
    await waitForLeader([url]);
    expect((await instances(url, 'prod', 'orders')).map((i) => i.id)).toEqual([...ORDERS, 'after-upgrade'].sort());
    expect(await cluster.stop('n1')).toBe(0);
  }, 120_000);

  it('marked with a newer format, is refused naming the directory, both versions and what to do', async () => {
    await cluster!.stop('n1'); // if the test before stopped short
    const newer = FORMAT_VERSION + 1;
    // As a newer build would leave it: written straight into LevelDB, since this build's
    // open refuses to write a version it does not know.
    const raw = new Level<string, Uint8Array>(dataDir, { valueEncoding: 'view' });
    await raw.sublevel<string, Uint8Array>('raft', { valueEncoding: 'view' }).put('format', encode(newer));
    await raw.close();

    const refusal = await cluster!.restart('n1').then(
      () => null,
      (err: unknown) => String(err),
    );
    expect(refusal).not.toBeNull();
    expect(refusal).toMatch(/exited before it was ready \(code 1,/);
    expect(refusal).toContain(`${dataDir} is in storage format ${newer}, written by a newer Rollcall build`);
    expect(refusal).toContain(`this build reads storage formats up to ${FORMAT_VERSION}`);
    expect(refusal).toMatch(/Start this member with a build that reads format \d+.*never converted back/s);
    // An answer for the operator, not a crash: the code, no stack trace.
    expect(refusal).toContain('(FORMAT_TOO_NEW)');
    expect(refusal).not.toMatch(/\n\s+at /);
    // Refused before anything was written: the directory is still the newer build's.
    expect(await readFormatVersion(dataDir)).toBe(newer);
  }, 60_000);
});
