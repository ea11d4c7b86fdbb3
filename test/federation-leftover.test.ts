/**
 * Which descriptions of its own datacenter a member stamps its view over at once (issue 18):
 * a leftover — another cluster's, or stamped by a process that no longer runs — and nothing
 * else, so two live members whose views differ for a while do not outbid each other.
 */
import { describe, expect, it } from 'vitest';

import { SeededRandom } from '../raft/rand.js';
import { EnvelopeSealer } from '../src/federation/envelope.js';
import { type Descriptor, FederationEngine, type MemberInfo, makeDescriptor } from '../src/federation/index.js';
import { compareVersions, type DescriptorOrigin } from '../src/federation/merge.js';
import { encodeMessage } from '../src/federation/messages.js';

const SECRET = 'fed-secret-1';
const WALL = Date.UTC(2026, 0, 1);
const addr = (dc: string, id: string) => `http://${dc}-${id}:7300`;
const member = (id: string): MemberInfo => ({ id, address: addr('dc-b', id), role: 'voter' });
/** Far above anything n1 stamps by itself: a description that would win on version alone. */
const AHEAD = { term: 9, index: WALL + 3_600_000 };

function setup() {
  let seq = 0;
  const sealer = new EnvelopeSealer(SECRET);
  const engine = new FederationEngine({
    datacenter: 'dc-b',
    nodeId: 'n1',
    address: addr('dc-b', 'n1'),
    secret: SECRET,
    clock: { now: () => 0, wallNow: () => WALL },
    random: new SeededRandom(3),
    send: () => undefined,
    view: { members: [member('n1'), member('n2')], leader: 'n1', revision: 1, term: 1, clusterId: 'cid-0002' },
  });
  /** A message to n1 from `from` (boot `boot`) carrying dc-b's entry `d` (a sync-push). */
  const hear = (from: { dc: string; id: string; boot: number }, d: Descriptor) => {
    const body = encodeMessage({
      kind: 'sync-push',
      entries: [{ name: 'dc-b', descriptor: d, revision: 1, liveness: new Map() }],
    });
    const bytes = sealer.seal(
      {
        datacenter: from.dc,
        id: from.id,
        address: addr(from.dc, from.id),
        boot: from.boot,
        seq: ++seq,
        ts: WALL,
        incarnation: from.boot,
        to: { datacenter: 'dc-b', id: 'n1' },
      },
      body,
    );
    expect(engine.receive('192.0.2.1', bytes).kind).toBe('accepted');
  };
  const own = () => engine.snapshot().datacenters.find((d) => d.local)!;
  const other = (origin: DescriptorOrigin) => makeDescriptor(AHEAD, 'n2', [member('n1'), member('n2')], origin);
  const stranger = { dc: 'dc-z', id: 'n9', boot: 1 };
  return { engine, hear, own, other, stranger };
}

describe("a member and its datacenter's descriptions (issue 18)", () => {
  it("another cluster's description is stamped over at once", () => {
    const { engine, hear, own, other, stranger } = setup();
    hear(stranger, other({ cluster: 'cid-0001' }));
    expect(compareVersions(own().version, AHEAD)).toBeGreaterThan(0);
    expect(own()).toMatchObject({ leader: 'n1', clusterId: 'cid-0002' });
    expect(engine.stats().ownRestamps).toBe(1);
    // A cluster without an id is another cluster too (the one a restore replaced, say).
    const ahead = { ...AHEAD, index: own().version.index + 1_000 };
    hear(stranger, makeDescriptor(ahead, 'n2', [member('n2')], { cluster: null }));
    expect(compareVersions(own().version, ahead)).toBeGreaterThan(0);
    expect(engine.stats().ownRestamps).toBe(2);
  });

  it("a description by this node's previous run, or by a member since restarted, is stamped over", () => {
    const { engine, hear, own, other, stranger } = setup();
    hear(stranger, other({ cluster: 'cid-0002', publisher: { id: 'n1', boot: 5 } }));
    expect(engine.stats().ownRestamps).toBe(1);
    // n2 now runs with boot 20: its description from boot 10 is a leftover.
    hear({ dc: 'dc-b', id: 'n2', boot: 20 }, makeDescriptor({ term: 0, index: 0 }, null, [member('n2')]));
    const ahead = { ...AHEAD, index: own().version.index + 1_000 };
    hear(stranger, makeDescriptor(ahead, 'n2', [member('n1'), member('n2')], { publisher: { id: 'n2', boot: 10 } }));
    expect(compareVersions(own().version, ahead)).toBeGreaterThan(0);
    expect(engine.stats().ownRestamps).toBe(2);
  });

  it('a description by a later process under this id is not stamped over: only the newer process restamps', () => {
    // Two processes as n1 (a replacement started while this one was paused): if each took the
    // other's description for a leftover, they would stamp over each other for ever.
    const { engine, hear, own, other, stranger } = setup();
    const before = own().version;
    hear(stranger, other({ cluster: 'cid-0002', publisher: { id: 'n1', boot: WALL + 60_000 } }));
    expect(own().version).toEqual(before);
    expect(engine.stats().ownRestamps).toBe(0);
  });

  it("a live member's different view, or one nobody can place, only raises the floor of the next change", () => {
    const { engine, hear, own, other, stranger } = setup();
    hear({ dc: 'dc-b', id: 'n2', boot: 20 }, makeDescriptor({ term: 0, index: 0 }, null, [member('n2')]));
    const before = own().version;
    hear(stranger, other({ cluster: 'cid-0002', publisher: { id: 'n2', boot: 20 } }));
    hear(stranger, other({})); // relayed by an older build: no origin
    hear(stranger, other({ cluster: 'cid-0002', publisher: { id: 'n3', boot: 1 } })); // a boot we never heard
    expect(own().version).toEqual(before);
    expect(engine.stats().ownRestamps).toBe(0);
  });
});
