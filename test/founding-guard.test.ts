/**
 * The founding guard (src/node/founding-guard.ts) and the founding probe it asks with
 * (src/transport/founding-probe.ts): the answer a node gives from its log (past its
 * founding or not), that answer over a real peer transport (and none from a transport
 * that does not give one, as a build before the probe), and the decision with fake peers.
 * The whole story with real processes is test/cluster-wiped-member.test.ts.
 */
import { readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createClusterTls } from '../scripts/tls-certs.js';
import {
  describeFounding,
  foundingDecision,
  guardFounding,
  joinDecision,
  MemberBootstrappedError,
  type PeerFoundingAnswer,
} from '../src/node/founding-guard.js';
import {
  ClusterIdentity,
  type FoundingProbeResult,
  foundingStateOf,
  type PeerAddress,
  probeFounding,
} from '../src/transport/index.js';
import { Harness, SECRET } from './transport-harness.js';

const harness = new Harness();
const servers: Server[] = [];
afterEach(async () => {
  await harness.closeAll();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

const silent = pino({ level: 'silent' });
const CLUSTER = 'c0ffee';

describe('the founding answer', () => {
  it('is "past founding" once a term beyond the founding term or a snapshot exists', () => {
    // A member that founded and has only the founding entries (3 members, term 1).
    expect(foundingStateOf(1, 3, 0).pastFounding).toBe(false);
    // A fresh joiner: nothing at all.
    expect(foundingStateOf(0, 0, 0).pastFounding).toBe(false);
    // An election happened.
    expect(foundingStateOf(2, 3, 0).pastFounding).toBe(true);
    expect(foundingStateOf(7, 120, 0).pastFounding).toBe(true);
    // A restored or compacted log.
    expect(foundingStateOf(1, 50, 40).pastFounding).toBe(true);
  });
});

describe('the founding probe over the peer transport', () => {
  const probe = (address: PeerAddress, peerId = 'n1', cluster = CLUSTER) =>
    probeFounding({
      selfId: 'n3',
      peerId,
      address,
      secret: SECRET,
      cluster: ClusterIdentity.of(cluster),
      secureContext: null,
      timeoutMs: 2_000,
    });

  it('gets the peer answer, and the probe is not taken for the prober connecting', async () => {
    const peer = await harness.node('n1', {
      cluster: ClusterIdentity.of(CLUSTER),
      peers: new Map([['n3', { host: '127.0.0.1', port: 1 }]]),
      describeFounding: () => foundingStateOf(5, 42, 0),
    });
    const result = await probe(peer.address);
    expect(result).toEqual({
      kind: 'answered',
      state: { pastFounding: true, term: 5, lastIndex: 42, snapshotIndex: 0 },
    });
    expect(peer.events.filter((e) => e.direction === 'inbound')).toEqual([]);
    expect(peer.transport.stats().peers['n3']?.inboundConnected).toBe(false);
    // Nothing refused or warned about on the peer's side.
    expect(peer.log.records.filter((r) => (r['level'] as number) >= 40)).toEqual([]);
  });

  it('says so when the peer has only founded', async () => {
    const peer = await harness.node('n1', {
      cluster: ClusterIdentity.of(CLUSTER),
      peers: new Map([['n3', { host: '127.0.0.1', port: 1 }]]),
      describeFounding: () => foundingStateOf(1, 3, 0),
    });
    expect(await probe(peer.address)).toEqual({
      kind: 'answered',
      state: { pastFounding: false, term: 1, lastIndex: 3, snapshotIndex: 0 },
    });
  });

  it('gets no answer from a peer that does not give one (a build before the probe)', async () => {
    const peer = await harness.node('n1', {
      cluster: ClusterIdentity.of(CLUSTER),
      peers: new Map([['n3', { host: '127.0.0.1', port: 1 }]]),
    });
    expect(await probe(peer.address)).toEqual({ kind: 'unanswered' });
  });

  it('gets no answer from a peer of another cluster, nor from one that is down', async () => {
    const peer = await harness.node('n1', {
      cluster: ClusterIdentity.of('another'),
      peers: new Map([['n3', { host: '127.0.0.1', port: 1 }]]),
      describeFounding: () => foundingStateOf(5, 42, 0),
    });
    const foreign = await probe(peer.address);
    expect(foreign.kind).toBe('failed');
    expect(foreign.kind === 'failed' && foreign.error.code).toBe('CLUSTER_MISMATCH');

    const server = createServer();
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    await new Promise((r) => server.close(r));
    servers.pop();
    expect(await probe({ host: '127.0.0.1', port })).toEqual({ kind: 'down' });
  });

  it('gives up on a peer that never answers within the wait', async () => {
    // Accepts and says nothing: a hung process, or a stranger on the port.
    const server = createServer(() => undefined);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const result = await probeFounding({
      selfId: 'n3',
      peerId: 'n1',
      address: { host: '127.0.0.1', port },
      secret: SECRET,
      cluster: ClusterIdentity.of(CLUSTER),
      secureContext: null,
      timeoutMs: 100,
    });
    expect(result.kind === 'failed' && result.error.code).toBe('HANDSHAKE_TIMEOUT');
  });
});

describe('the founding probe with mutual TLS', () => {
  it('asks and gets the answer over TLS, and a refusal names the peer', async () => {
    const dir = path.join(tmpdir(), `rollcall-founding-tls-${process.pid}`);
    try {
      const pki = await createClusterTls(dir, ['n1', 'n3']);
      const tlsOf = async (id: string) => ({
        cert: await readFile(pki.nodes[id]!.cert),
        key: await readFile(pki.nodes[id]!.key),
        ca: await readFile(pki.ca),
      });
      const peer = await harness.node('n1', {
        cluster: ClusterIdentity.of(CLUSTER),
        peers: new Map([['n3', { host: '127.0.0.1', port: 1 }]]),
        tls: await tlsOf('n1'),
        describeFounding: () => foundingStateOf(2, 7, 0, { started: true, clusterVersion: 6 }),
      });
      const refusal = await guardFounding({
        id: 'n3',
        peers: new Map([['n1', peer.address]]),
        secret: SECRET,
        clusterId: CLUSTER,
        tls: await tlsOf('n3'),
        waitMs: 2_000,
        logger: silent,
      }).catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(MemberBootstrappedError);
      expect((refusal as MemberBootstrappedError).peer).toBe('n1');
      expect((refusal as MemberBootstrappedError).state.term).toBe(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('the founding decision', () => {
  const answered = (peer: string, term: number): PeerFoundingAnswer => ({
    peer,
    result: { kind: 'answered', state: foundingStateOf(term, 3, 0) },
  });

  it('founds when no peer answers, or every answer is "not past founding"', () => {
    expect(foundingDecision([])).toEqual({ kind: 'found' });
    expect(
      foundingDecision([
        { peer: 'n1', result: { kind: 'down' } },
        { peer: 'n2', result: { kind: 'unanswered' } },
      ]),
    ).toEqual({ kind: 'found' });
    expect(foundingDecision([answered('n1', 1), answered('n2', 1)])).toEqual({ kind: 'found' });
  });

  it('refuses when one peer is past its founding and records the member as started, naming it', () => {
    const started = foundingStateOf(4, 3, 0, { started: true, clusterVersion: 6 });
    expect(
      foundingDecision([
        { peer: 'n1', result: { kind: 'down' } },
        { peer: 'n2', result: { kind: 'answered', state: started } },
      ]),
    ).toEqual({ kind: 'refuse', peer: 'n2', state: started });
  });

  const peers = new Map([
    ['n1', { host: '127.0.0.1', port: 1 }],
    ['n2', { host: '127.0.0.1', port: 2 }],
    ['n3', { host: '127.0.0.1', port: 3 }],
  ]);
  const guard = (probe: (peer: string) => Promise<FoundingProbeResult>, asked: string[] = []) =>
    guardFounding({
      id: 'n3',
      peers,
      secret: SECRET,
      clusterId: CLUSTER,
      waitMs: 1_000,
      logger: silent,
      probe: (peer) => {
        asked.push(peer);
        return probe(peer);
      },
    });

  it('with fake peers: no answer from any peer founds; the node does not ask itself', async () => {
    const asked: string[] = [];
    await expect(guard(async () => ({ kind: 'down' }), asked)).resolves.toBeUndefined();
    expect(asked.sort()).toEqual(['n1', 'n2']);
  });

  it('with fake peers: one says bootstrapped, the other never answers: refused at once', async () => {
    const refusal = guard((peer) =>
      peer === 'n1'
        ? Promise.resolve({ kind: 'answered', state: foundingStateOf(3, 9, 0, { started: true, clusterVersion: 6 }) })
        : new Promise<FoundingProbeResult>(() => undefined),
    );
    await expect(refusal).rejects.toBeInstanceOf(MemberBootstrappedError);
    const err = (await refusal.catch((e: unknown) => e)) as MemberBootstrappedError;
    expect(err.code).toBe('MEMBER_ALREADY_BOOTSTRAPPED');
    expect(err.peer).toBe('n1');
    expect(err.message).toMatch(/member n3 has already been bootstrapped/);
    expect(err.message).toMatch(/--join/);
  });

  it('with fake peers below version 6: founds, and warns that they cannot tell', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    await expect(
      guardFounding({
        id: 'n3',
        peers,
        secret: SECRET,
        clusterId: CLUSTER,
        waitMs: 1_000,
        logger,
        probe: async () => ({
          kind: 'answered',
          state: foundingStateOf(2, 9, 0, { started: false, clusterVersion: 1 }),
        }),
      }),
    ).resolves.toBeUndefined();
    expect(lines.join('')).toMatch(/cannot tell a member that never started from one whose data was lost/);
  });

  it('is skipped with a wait of 0', async () => {
    const asked: string[] = [];
    await guardFounding({
      id: 'n3',
      peers,
      secret: SECRET,
      clusterId: CLUSTER,
      waitMs: 0,
      logger: silent,
      probe: async (peer) => {
        asked.push(peer);
        return { kind: 'down' };
      },
    });
    expect(asked).toEqual([]);
  });
});

describe('the started-member answer (cluster version 6)', () => {
  const storage = (term: number) => ({
    initialState: () => ({ hardState: { term } }),
    lastIndex: () => 40,
    firstIndex: () => 1,
  });
  const registry = (clusterVersion: number, started: string[]) => ({
    clusterVersion,
    conf: { voters: ['n1', 'n2', 'n3'], learners: ['n4'] },
    hasStarted: (id: string) => started.includes(id),
  });

  it('says whether the asker is a current member recorded as started, and the cluster version', () => {
    expect(describeFounding(storage(4), registry(6, ['n1', 'n3']), 'n3')).toEqual({
      pastFounding: true,
      term: 4,
      lastIndex: 40,
      snapshotIndex: 0,
      started: true,
      clusterVersion: 6,
    });
    expect(describeFounding(storage(4), registry(6, ['n1']), 'n3').started).toBe(false);
    // Not a member (removed): never "started", whatever a stale record says.
    expect(describeFounding(storage(4), registry(6, ['n9']), 'n9').started).toBe(false);
    expect(describeFounding(storage(4), registry(5, []), 'n4')).toMatchObject({ started: false, clusterVersion: 5 });
  });

  it('goes over the transport: the acceptor is asked about the prober, a joiner may ask', async () => {
    const asked: string[] = [];
    const peer = await harness.node('n1', {
      cluster: ClusterIdentity.of(CLUSTER),
      peers: new Map([['n3', { host: '127.0.0.1', port: 1 }]]),
      describeFounding: (asker) => {
        asked.push(asker);
        return foundingStateOf(5, 42, 0, { started: true, clusterVersion: 6 });
      },
    });
    const joiner = await probeFounding({
      selfId: 'n3',
      peerId: 'n1',
      address: peer.address,
      secret: SECRET,
      cluster: ClusterIdentity.unassigned(() => undefined),
      secureContext: null,
      timeoutMs: 2_000,
    });
    expect(joiner).toEqual({
      kind: 'answered',
      state: { pastFounding: true, term: 5, lastIndex: 42, snapshotIndex: 0, started: true, clusterVersion: 6 },
    });
    expect(asked).toEqual(['n3']);
  });

  const answer = (peer: string, state: ReturnType<typeof foundingStateOf>): PeerFoundingAnswer => ({
    peer,
    result: { kind: 'answered', state },
  });
  const past = (started: boolean, clusterVersion: number) => foundingStateOf(4, 90, 0, { started, clusterVersion });

  it('founding: refused only past founding and recorded as started', () => {
    // The decision table, one peer at a time.
    const cases: [ReturnType<typeof foundingStateOf>, 'found' | 'refuse'][] = [
      // A late founding member that never started, at version 6: let in (as etcd).
      [past(false, 6), 'found'],
      [past(false, 7), 'found'],
      // A wiped member: recorded as started.
      [past(true, 6), 'refuse'],
      // Below version 6 (or a build before the record, which does not say): cannot tell, so
      // no objection (a new cluster stays below 6 until its last member reported: a member
      // booting late would otherwise be refused for good).
      [past(false, 5), 'found'],
      [past(false, 1), 'found'],
      [foundingStateOf(4, 90, 0), 'found'],
      // Not past founding: a whole new cluster starting together.
      [foundingStateOf(1, 3, 0, { started: false, clusterVersion: 1 }), 'found'],
      [foundingStateOf(1, 3, 0), 'found'],
    ];
    for (const [state, kind] of cases)
      expect([state, foundingDecision([answer('n1', state)]).kind]).toEqual([state, kind]);
    // One objection is enough.
    expect(foundingDecision([answer('n1', past(false, 6)), answer('n2', past(true, 6))])).toMatchObject({
      kind: 'refuse',
      peer: 'n2',
    });
  });

  it('--join: refused only when a peer records it as a current member that has started', () => {
    expect(joinDecision([answer('n1', past(true, 6))])).toMatchObject({ kind: 'refuse', peer: 'n1' });
    expect(joinDecision([answer('n1', past(false, 6))]).kind).toBe('found');
    // Older peers (no answer, or none about the record) and peers below 6 are no objection.
    expect(joinDecision([answer('n1', foundingStateOf(4, 90, 0))]).kind).toBe('found');
    expect(joinDecision([answer('n1', past(false, 5))]).kind).toBe('found');
    expect(
      joinDecision([
        { peer: 'n1', result: { kind: 'unanswered' } },
        { peer: 'n2', result: { kind: 'down' } },
      ]).kind,
    ).toBe('found');
  });

  it('--join with fake peers: the refusal says to remove and add the member first', async () => {
    const refusal = await guardFounding({
      id: 'n3',
      peers: new Map([
        ['n1', { host: '127.0.0.1', port: 1 }],
        ['n3', { host: '127.0.0.1', port: 3 }],
      ]),
      secret: SECRET,
      clusterId: null,
      mode: 'join',
      waitMs: 1_000,
      logger: silent,
      probe: async () => ({ kind: 'answered', state: past(true, 6) }),
    }).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(MemberBootstrappedError);
    const err = refusal as MemberBootstrappedError;
    expect(err.mode).toBe('join');
    expect(err.message).toMatch(/member n3 has already been bootstrapped/);
    expect(err.message).toMatch(/records it as a current member that has started/);
    expect(err.message).toMatch(/Remove the member first/);
  });
});
