/**
 * The peer book's precedence (src/node/peer-book.ts): a node's --peers win for the ids they
 * name, then the addresses members were added with (replicated), then an older build's
 * stored book, for current members only.
 */
import { describe, expect, it } from 'vitest';
import { decode } from '../src/codec/index.js';
import { PeerBook } from '../src/node/peer-book.js';
import type { PeerAddress } from '../src/transport/index.js';

const at = (host: string, port: number): PeerAddress => ({ host, port });
const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };

describe('PeerBook', () => {
  it('takes --peers over the added-with record over the old stored book', () => {
    const flags = new Map([
      ['n1', at('127.0.0.1', 7101)],
      ['n2', at('proxy', 9102)],
      ['n3', at('127.0.0.1', 7103)],
    ]);
    const announced = new Map([
      ['n2', 'leaders-view:7102'],
      ['n4', '10.0.0.4:7104'],
    ]);
    const legacy = new Map([
      ['n3', at('stale', 1)],
      ['n4', at('stale', 2)],
      ['gone', at('stale', 3)],
    ]);
    const book = new PeerBook('n1', flags, announced, legacy, { voters: [...conf.voters, 'n4'], learners: [] });
    expect(Object.fromEntries(book.current)).toEqual({
      n1: at('127.0.0.1', 7101),
      n2: at('proxy', 9102),
      n3: at('127.0.0.1', 7103),
      n4: at('10.0.0.4', 7104),
    });
    expect(book.addressOf('n2')).toEqual(at('leaders-view', 7102)); // what the admin said, for "already a member"
  });

  it('follows conf changes: an added member unless the flags name it, a removed one gone', () => {
    const book = new PeerBook(
      'n1',
      new Map([
        ['n1', at('a', 1)],
        ['n5', at('mine', 5)],
      ]),
      new Map(),
      new Map(),
      conf,
    );
    expect(book.applied({ type: 'addLearner', node: 'n4', context: '10.0.0.4:7104' })).toBeNull();
    // The flags name n5 elsewhere: they win, and the caller is told (it logs a warning).
    expect(book.applied({ type: 'addLearner', node: 'n5', context: '10.0.0.5:7105' })).toEqual({
      flagsDiffer: { flags: at('mine', 5), added: '10.0.0.5:7105' },
    });
    expect(book.applied({ type: 'addLearner', node: 'n6', context: 'no port' })).toEqual({ unreadable: 'no port' });
    expect(book.current.get('n4')).toEqual(at('10.0.0.4', 7104));
    expect(book.current.get('n5')).toEqual(at('mine', 5));
    expect(book.current.has('n6')).toBe(false);
    expect(decode(book.encodeAnnounced())).toEqual({ n4: '10.0.0.4:7104', n5: '10.0.0.5:7105' });
    book.applied({ type: 'addVoter', node: 'n4' }); // a promotion carries no address
    expect(book.current.get('n4')).toEqual(at('10.0.0.4', 7104));
    book.applied({ type: 'removeNode', node: 'n4' });
    expect(book.current.has('n4')).toBe(false);
    expect(decode(book.encodeAnnounced())).toEqual({ n5: '10.0.0.5:7105' });
  });

  it('dials a member the flags name again after it was removed and re-added (it was left out before)', () => {
    const flags = new Map([
      ['n1', at('127.0.0.1', 7101)],
      ['n2', at('127.0.0.1', 7102)],
      ['n3', at('127.0.0.1', 7103)],
    ]);
    const book = new PeerBook('n1', flags, new Map(), new Map(), conf);
    book.applied({ type: 'removeNode', node: 'n3' });
    expect(book.current.has('n3')).toBe(false);
    expect(book.applied({ type: 'addLearner', node: 'n3', context: '127.0.0.1:7103' })).toBeNull();
    expect(book.current.get('n3')).toEqual(at('127.0.0.1', 7103));
  });

  it('dials a flags-named member again when a snapshot shows it re-added', () => {
    const flags = new Map([
      ['n1', at('a', 1)],
      ['n3', at('mine', 3)],
    ]);
    const book = new PeerBook('n1', flags, new Map(), new Map(), conf);
    book.applied({ type: 'removeNode', node: 'n3' });
    book.reload(new Map([['n3', 'leaders-view:7103']]), conf);
    expect(book.current.get('n3')).toEqual(at('mine', 3));
  });

  it('names the members the record lacks, and a fill adds only those (never over a conf change)', () => {
    const flags = new Map([
      ['n1', at('127.0.0.1', 7101)],
      ['n2', at('127.0.0.1', 7102)],
    ]);
    // n3 was added with an address; n1 and n2 founded the cluster before the record existed.
    const book = new PeerBook('n1', flags, new Map([['n3', '10.0.0.3:7103']]), new Map(), conf);
    expect(Object.fromEntries(book.unrecorded(conf))).toEqual({ n1: '127.0.0.1:7101', n2: '127.0.0.1:7102' });
    // A fill from another leader's view: n3's entry stays, a non-member and an unreadable address are skipped.
    const changed = book.fill({ n1: 'a:1', n2: 'b:2', n3: 'other:9', n9: 'x:9' }, conf);
    expect(changed).toBe(true);
    expect(decode(book.encodeAnnounced())).toEqual({ n1: 'a:1', n2: 'b:2', n3: '10.0.0.3:7103' });
    // This node's own flags still win for where it dials.
    expect(book.current.get('n2')).toEqual(at('127.0.0.1', 7102));
    expect(book.unrecorded(conf).size).toBe(0);
    expect(book.fill({ n1: 'c:3' }, conf)).toBe(false);
    // A node whose flags do not name a member dials it at the filled-in address.
    const joiner = new PeerBook('n4', new Map([['n4', at('127.0.0.1', 7104)]]), new Map(), new Map(), conf);
    joiner.fill({ n1: '127.0.0.1:7101', n2: 'not an address' }, conf);
    expect(joiner.current.get('n1')).toEqual(at('127.0.0.1', 7101));
    expect(joiner.current.has('n2')).toBe(false);
  });

  it('encodes the record the same whatever order the changes came in', () => {
    const one = new PeerBook(
      'n1',
      new Map(),
      new Map([
        ['b', 'b:1'],
        ['a', 'a:1'],
      ]),
      new Map(),
      conf,
    );
    const two = new PeerBook(
      'n2',
      new Map(),
      new Map([
        ['a', 'a:1'],
        ['b', 'b:1'],
      ]),
      new Map(),
      conf,
    );
    expect(Buffer.from(one.encodeAnnounced()).equals(Buffer.from(two.encodeAnnounced()))).toBe(true);
  });

  it("takes a snapshot's record but keeps its own flags, and drops peers that are no longer members", () => {
    const flags = new Map([
      ['n1', at('a', 1)],
      ['n2', at('proxy', 9102)],
    ]);
    const book = new PeerBook('n1', flags, new Map([['n4', 'old:4']]), new Map(), {
      voters: ['n1', 'n2', 'n4'],
      learners: [],
    });
    book.reload(
      new Map([
        ['n2', 'leaders-view:7102'],
        ['n5', '10.0.0.5:7105'],
      ]),
      { voters: ['n1', 'n2', 'n5'], learners: [] },
    );
    expect(Object.fromEntries(book.current)).toEqual({
      n1: at('a', 1),
      n2: at('proxy', 9102),
      n5: at('10.0.0.5', 7105),
    });
  });
});
