/**
 * Frames whose large binary value (a snapshot chunk) is written as its own buffer instead
 * of copied into the encoded message: the bytes on the wire are exactly those of the
 * message encoded whole, so a build without splicing (a rolling upgrade) reads them, and
 * they round-trip byte for byte however the socket splits them.
 */
import { afterEach, describe, expect, it } from 'vitest';

import { createCodec, type Payload } from '../src/transport/codec.js';
import { TransportError } from '../src/transport/errors.js';
import { encodeFrames, FrameDecoder, framePieces, SPLICE_MIN_BYTES } from '../src/transport/framing.js';
import type { DetachedBinary } from '../src/transport/types.js';
import { Harness, peerStats, waitFor } from './transport-harness.js';

type Msg =
  | { readonly kind: 'raft'; readonly msg: { type: 'snapshot'; to: string; offset: number; chunk: Uint8Array } }
  | { readonly kind: 'note'; readonly seq: number; readonly text: string };

/** What the node passes (src/node/snapshot-pacer.ts, detachSnapshotChunk), for this test's message type. */
function detach(message: Msg, placeholder: Uint8Array): DetachedBinary<Msg> | undefined {
  if (message.kind !== 'raft') return undefined;
  return { shell: { kind: 'raft', msg: { ...message.msg, chunk: placeholder } }, binary: message.msg.chunk };
}

/** Deterministic bytes (a simple LCG), so a failure is reproducible. */
function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const chunkMessage = (length: number, seed: number): Msg => ({
  kind: 'raft',
  msg: { type: 'snapshot', to: 'b', offset: seed * 1024, chunk: bytes(length, seed) },
});

// Every msgpack bin header size and its boundaries, and the chunk size nodes send (1 MiB).
const SIZES = [0, 1, 255, 256, 65_535, 65_536, 1024 * 1024, 1024 * 1024 + 3];

describe('spliced payloads', () => {
  it('are byte for byte the encoding of the whole message, for every bin header size', () => {
    const codec = createCodec();
    for (const [i, size] of SIZES.entries()) {
      const message = chunkMessage(size, i + 1);
      const split = detach(message, codec.binaryPlaceholder)!;
      const spliced = codec.encodeSpliced(split.shell, split.binary);
      if (spliced instanceof TransportError) throw spliced;
      const whole = codec.encode(message) as Buffer;
      const joined = Buffer.concat([spliced.head, spliced.binary, spliced.tail]);
      expect(spliced.byteLength, `size ${size}`).toBe(whole.length);
      expect(joined.equals(whole), `size ${size}`).toBe(true);
      // The chunk itself is not copied: the payload holds the very bytes it was given.
      expect(spliced.binary).toBe(split.binary);
    }
  });

  it('refuses a shell without the placeholder rather than sending something else', () => {
    const codec = createCodec();
    const result = codec.encodeSpliced({ kind: 'note', seq: 1, text: 'x' }, bytes(10, 1));
    expect(result).toBeInstanceOf(TransportError);
  });

  it('frame as the old encoder did and decode byte for byte, split across reads, between other messages', () => {
    const codec = createCodec();
    const messages: Msg[] = [];
    for (const [i, size] of SIZES.entries()) {
      messages.push({ kind: 'note', seq: i, text: `before ${size}` });
      messages.push(chunkMessage(size, i + 7));
    }
    messages.push({ kind: 'note', seq: 99, text: 'last' });
    const payloads: Payload[] = messages.map((m) => {
      const split = detach(m, codec.binaryPlaceholder);
      const p = split === undefined ? codec.encode(m) : codec.encodeSpliced(split.shell, split.binary);
      if (p instanceof TransportError) throw p;
      return p;
    });
    const pieces = framePieces(payloads);
    const wire = Buffer.concat(pieces);
    // The frames of a build that encodes every message whole (wire compatibility).
    expect(wire.equals(encodeFrames(messages.map((m) => codec.encode(m) as Buffer)))).toBe(true);
    // Large chunks are pieces of their own, the very buffers given (no copy).
    const large = messages.filter((m) => m.kind === 'raft' && m.msg.chunk.byteLength >= SPLICE_MIN_BYTES);
    for (const m of large) if (m.kind === 'raft') expect(pieces).toContain(m.msg.chunk);

    for (const seed of [1, 2, 3, 4, 5]) {
      const decoder = new FrameDecoder(64 * 1024 * 1024);
      const frames: Buffer[] = [];
      let x = seed;
      for (let at = 0; at < wire.length; ) {
        x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
        // Reads from 1 byte to 256 KiB, as TCP might deliver them; every other one tiny,
        // so headers and bin headers split too.
        const n = Math.min(wire.length - at, 1 + (x % ((x & 1) === 0 ? 7 : 256 * 1024)));
        const result = decoder.push(wire.subarray(at, at + n));
        expect(result.error).toBeNull();
        frames.push(...result.frames);
        at += n;
      }
      const decoded = frames.map((f) => {
        const d = codec.decode(f);
        if (!d.ok) throw d.error;
        return d.value as Msg;
      });
      expect(decoded.length).toBe(messages.length);
      for (const [i, m] of messages.entries()) {
        const got = decoded[i]!;
        if (m.kind === 'note') {
          expect(got).toEqual(m);
          continue;
        }
        expect(got.kind).toBe('raft');
        if (got.kind !== 'raft') continue;
        expect(got.msg.offset).toBe(m.msg.offset);
        expect(Buffer.from(got.msg.chunk).equals(Buffer.from(m.msg.chunk)), `message ${i}, seed ${seed}`).toBe(true);
      }
    }
  });
});

describe('snapshot chunks between a splicing node and one that encodes whole (rolling upgrade)', () => {
  const harness = new Harness();
  afterEach(() => harness.closeAll());

  it('arrive byte for byte both ways, in order with other messages', async () => {
    const a = await harness.node<Msg>('a', { detachBinary: detach });
    const b = await harness.node<Msg>('b'); // as a build before splicing: every message encoded whole
    a.transport.setPeers(new Map([['b', b.address]]));
    b.transport.setPeers(new Map([['a', a.address]]));
    await waitFor('connected both ways', () => a.transport.isConnected('b') && b.transport.isConnected('a'));

    const sent: Msg[] = [];
    for (let i = 0; i < 24; i++) {
      sent.push({ kind: 'note', seq: i, text: 'between chunks' });
      sent.push(chunkMessage(i % 3 === 0 ? 100 : 1024 * 1024, i + 1));
    }
    for (const m of sent) {
      expect(a.transport.send('b', m)).toBe(true);
      expect(b.transport.send('a', m)).toBe(true);
    }
    await waitFor('all delivered', () => a.received.length === sent.length && b.received.length === sent.length);
    for (const node of [a, b]) {
      for (const [i, m] of sent.entries()) {
        const got = node.received[i]!.message;
        if (m.kind === 'note') {
          expect(got).toEqual(m);
          continue;
        }
        if (got.kind !== 'raft') throw new Error(`message ${i} to ${node.id} is not a chunk`);
        expect(Buffer.from(got.msg.chunk).equals(Buffer.from(m.msg.chunk)), `message ${i} to ${node.id}`).toBe(true);
      }
    }
    // The same frames either way: the byte counts agree.
    expect(peerStats(a, 'b').sentBytes).toBe(peerStats(b, 'a').sentBytes);
  });

  it('drops a chunk that does not fit the queue before encoding it', async () => {
    const a = await harness.node<Msg>('a', { detachBinary: detach, maxQueueBytes: 512 * 1024 });
    const b = await harness.node<Msg>('b');
    a.transport.setPeers(new Map([['b', b.address]]));
    b.transport.setPeers(new Map([['a', a.address]]));
    await waitFor('connected', () => a.transport.isConnected('b'));
    expect(a.transport.send('b', chunkMessage(1024 * 1024, 1))).toBe(false);
    expect(peerStats(a, 'b').droppedBy.queueFull).toBe(1);
    expect(a.transport.send('b', chunkMessage(64 * 1024, 2))).toBe(true);
    await waitFor('the small chunk delivered', () => b.received.length === 1);
  });
});
