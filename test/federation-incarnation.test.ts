/**
 * A node's incarnation is durable before anything carrying it leaves (issue 18): every raise,
 * not only the refutation of a suspicion. Here the raise is a claim about us at a higher
 * incarnation with no accusation in it (what a node hears about its previous run), which
 * used to be gossiped and never stored, so a restart could use that incarnation again.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { SeededRandom } from '../raft/rand.js';
import { EnvelopeSealer } from '../src/federation/envelope.js';
import { FederationHost, INCARNATION_FILE } from '../src/federation/host.js';
import { FederationEngine, type GossipTuning, makeDescriptor } from '../src/federation/index.js';
import { encodeMessage } from '../src/federation/messages.js';
import { createLogger } from '../src/log/index.js';

const SECRET = 'fed-secret-1';
const WALL = Date.UTC(2026, 0, 1);
const TUNING: Partial<GossipTuning> = { probeIntervalMs: 100, probeTimeoutMs: 50, syncIntervalMs: 100 };
const ME = 'http://dc-a-n1:7300';
const STRANGER = 'http://dc-z-n9:7300';

/**
 * A sync-push from dc-z/n9 (another datacenter) that describes dc-a with n1 — the receiver —
 * alive at `incarnation`: no accusation, just a higher number than the receiver's.
 */
function claimAboutN1(incarnation: number, wall: number, seq: number): Uint8Array {
  const alive = { status: 'alive' as const, suspectors: [] };
  const message = encodeMessage({
    kind: 'sync-push',
    entries: [
      {
        name: 'dc-a',
        descriptor: makeDescriptor({ term: 1, index: 1 }, 'n1', [{ id: 'n1', address: ME, role: 'voter' }]),
        revision: 1,
        liveness: new Map([['n1', { incarnation, ...alive }]]),
      },
      {
        name: 'dc-z',
        descriptor: makeDescriptor({ term: 1, index: 1 }, 'n9', [{ id: 'n9', address: STRANGER, role: 'voter' }]),
        revision: 1,
        liveness: new Map([['n9', { incarnation: 1, ...alive }]]),
      },
    ],
  });
  return new EnvelopeSealer(SECRET).seal(
    {
      datacenter: 'dc-z',
      id: 'n9',
      address: STRANGER,
      boot: 1,
      seq,
      ts: wall,
      incarnation: 1,
      to: { datacenter: 'dc-a', id: 'n1' },
    },
    message,
  );
}

/** The incarnation a message's envelope carries. */
function carried(bytes: Uint8Array): number {
  const opened = new EnvelopeSealer(SECRET).open(bytes, Number.MAX_SAFE_INTEGER);
  if (opened.kind !== 'ok') throw new Error(`not an envelope: ${opened.reason}`);
  return opened.header.incarnation;
}

describe('FederationEngine with storeIncarnation: nothing leaves above the stored incarnation', () => {
  it('a raise without an accusation is stored before any message carries it; a failed store holds them back', async () => {
    let t = 0;
    const clock = { now: () => t, wallNow: () => WALL + t };
    const sent: Uint8Array[] = [];
    const stores: { incarnation: number; resolve: (stored: boolean) => void }[] = [];
    const engine = new FederationEngine({
      datacenter: 'dc-a',
      nodeId: 'n1',
      address: ME,
      secret: SECRET,
      clock,
      random: new SeededRandom(7),
      send: (_to, bytes) => sent.push(bytes),
      view: { members: [{ id: 'n1', address: ME, role: 'voter' }], leader: 'n1', revision: 1, term: 1 },
      tuning: TUNING,
      storeIncarnation: (incarnation) => new Promise((resolve) => stores.push({ incarnation, resolve })),
    });
    const boot = engine.incarnation;
    // The boot incarnation itself is stored first.
    expect(stores.map((s) => s.incarnation)).toEqual([boot]);
    stores.shift()!.resolve(true);
    await Promise.resolve();

    expect(engine.receive(STRANGER, claimAboutN1(boot + 50, WALL, 1)).kind).toBe('accepted');
    expect(engine.incarnation).toBe(boot + 51);
    expect(engine.drainEvents().filter((e) => e.kind === 'refuted')).toEqual([]); // not a refutation
    expect(stores.map((s) => s.incarnation)).toEqual([boot + 51]);

    // Probes and syncs to dc-z/n9 fall due, and wait.
    for (; t < 500; t += 10) engine.tick(t);
    expect(sent).toEqual([]);

    // The store fails: still nothing, and the next attempt waits a sync interval.
    stores.shift()!.resolve(false);
    await Promise.resolve();
    await Promise.resolve();
    expect(sent).toEqual([]);
    expect(stores).toEqual([]);
    for (; t < 700; t += 10) engine.tick(t);
    expect(stores.map((s) => s.incarnation)).toEqual([boot + 51]);
    expect(sent).toEqual([]);

    // Stored: what waited leaves, at the new incarnation, in order.
    stores.shift()!.resolve(true);
    await Promise.resolve();
    await Promise.resolve();
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.map(carried).every((i) => i === boot + 51)).toBe(true);
  });
});

describe('FederationHost: the incarnation file follows every raise', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a claim about this node at a higher incarnation is stored, and a restart starts above it', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fed-inc-'));
    const wall = Date.UTC(2026, 5, 1);
    const clock = { now: () => performance.now(), wallNow: () => wall };
    const start = () =>
      FederationHost.start({
        datacenter: 'dc-a',
        nodeId: 'n1',
        address: ME,
        secret: SECRET,
        join: [],
        dataDir: dir,
        logger: createLogger({ level: 'silent', name: 'n1' }),
        status: () => ({ id: 'n1', leader: 'n1', term: 1, revision: 0, members: [] }),
        clock,
      });
    const file = path.join(dir, INCARNATION_FILE);
    const first = await start();
    const boot = first.snapshot()!.incarnation;
    try {
      expect(Number(await readFile(file, 'utf8'))).toBe(boot);
      expect(first.receive('192.0.2.9', claimAboutN1(boot + 50, wall, 1))?.kind).toBe('accepted');
      expect(first.snapshot()!.incarnation).toBe(boot + 51);
      const deadline = performance.now() + 5_000;
      while (Number(await readFile(file, 'utf8')) !== boot + 51 && performance.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 10));
      expect(Number(await readFile(file, 'utf8'))).toBe(boot + 51);
    } finally {
      await first.close();
    }
    // The wall clock has not moved: without the file the restart would be at `boot` again.
    const second = await start();
    try {
      expect(second.snapshot()!.incarnation).toBe(boot + 52);
    } finally {
      await second.close();
    }
  });
});
