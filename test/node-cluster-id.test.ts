/**
 * Which cluster a node belongs to (loadClusterIdentity in src/node/open-data.ts), against a real LevelDB: a
 * fresh node started with --join takes on the id of the cluster that adds it at its first
 * handshake and keeps it across restarts; a node with a stored id, or not joining, starts
 * with what it has.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { loadClusterIdentity } from '../src/node/open-data.js';
import type { NodeDatabase } from '../src/storage/index.js';
import { openNodeDatabase, readClusterId, writeClusterId } from '../src/storage/index.js';

let dir = '';

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rollcall-node-cluster-id-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Opens the data directory, loads the identity, runs `use`, closes it. */
async function withIdentity(
  joining: boolean,
  use: (identity: Awaited<ReturnType<typeof loadClusterIdentity>>, db: NodeDatabase) => Promise<void> | void,
): Promise<unknown[]> {
  const db = await openNodeDatabase(dir);
  const failures: unknown[] = [];
  try {
    await use(
      await loadClusterIdentity({ db, log: silentLogger(), joining, onStoreFailed: (e) => failures.push(e) }),
      db,
    );
  } finally {
    await db.db.close();
  }
  return failures;
}

/** Waits (a bounded number of event-loop turns) until the adopted id, which the handshake does not await, is stored. */
async function stored(db: NodeDatabase, id: string): Promise<void> {
  for (let turn = 0; turn < 10_000 && (await readClusterId(db)) !== id; turn++)
    await new Promise<void>((resolve) => setImmediate(resolve));
  expect(await readClusterId(db)).toBe(id);
}

describe('loadClusterIdentity', () => {
  it('a joiner takes on the id of the cluster that adds it, and still has it after a restart', async () => {
    const failures = await withIdentity(true, async (identity, db) => {
      expect(identity.assigned).toBe(false);
      expect(identity.wire).toEqual({ joining: true });
      identity.adopt({ cid: 'prod-east' });
      expect(identity.current).toBe('prod-east');
      await stored(db, 'prod-east');
    });
    expect(failures).toEqual([]);
    // Restarted: no longer fresh, so not joining; the stored id holds.
    await withIdentity(false, (identity) => {
      expect(identity.current).toBe('prod-east');
      expect(identity.wire).toEqual({ cid: 'prod-east' });
    });
  });

  it('a joiner added by a cluster without an id stores nothing and has none', async () => {
    await withIdentity(true, async (identity, db) => {
      identity.adopt({});
      expect(identity.assigned).toBe(true);
      expect(identity.current).toBeNull();
      expect(await readClusterId(db)).toBeNull();
    });
    await withIdentity(false, (identity) => expect(identity.current).toBeNull());
  });

  it('a stored id wins over joining; a node not joining without one has none', async () => {
    await withIdentity(false, (identity) => {
      expect(identity.current).toBeNull();
      expect(identity.assigned).toBe(true);
    });
    const db = await openNodeDatabase(dir);
    await writeClusterId(db, 'restored-1');
    await db.db.close();
    await withIdentity(true, (identity) => {
      expect(identity.assigned).toBe(true);
      expect(identity.current).toBe('restored-1');
    });
  });
});
