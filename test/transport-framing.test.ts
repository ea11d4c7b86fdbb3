import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { Backoff } from '../src/transport/backoff.js';
import { createCodec } from '../src/transport/codec.js';
import { TransportError } from '../src/transport/errors.js';
import { encodeFrames, FrameDecoder } from '../src/transport/framing.js';
import {
  acceptorProof,
  dialerProof,
  macMatches,
  newNonce,
  PROTOCOL_VERSION,
  parseChallenge,
  parseHello,
} from '../src/transport/handshake.js';

const SEED = 20_240_611;

/** Splits `bytes` at the given cut points (any order, duplicates allowed). */
function split(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let previous = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(previous, point));
    previous = point;
  }
  return chunks;
}

function decodeAll(decoder: FrameDecoder, chunks: readonly Buffer[]): Buffer[] {
  const frames: Buffer[] = [];
  for (const chunk of chunks) {
    const result = decoder.push(chunk);
    expect(result.error).toBeNull();
    frames.push(...result.frames);
  }
  return frames;
}

/** fc.assert with a fixed seed that is printed on failure, so any failure replays exactly. */
function check<T>(property: fc.IProperty<T>, numRuns = 300): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (error) {
    console.error(`fast-check failed with seed ${SEED}`);
    throw error;
  }
}

describe('FrameDecoder', () => {
  it('decodes coalesced frames from one chunk', () => {
    const payloads = [Buffer.from('a'), Buffer.from(''), Buffer.from('hello world')];
    const frames = decodeAll(new FrameDecoder(1024), [encodeFrames(payloads)]);
    expect(frames.map((frame) => frame.toString())).toEqual(['a', '', 'hello world']);
  });

  it('decodes a frame delivered one byte at a time, header included', () => {
    const bytes = encodeFrames([Buffer.from('partial')]);
    const decoder = new FrameDecoder(1024);
    const frames: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 1) {
      const result = decoder.push(bytes.subarray(i, i + 1));
      frames.push(...result.frames);
      if (i < bytes.length - 1) expect(result.frames).toEqual([]);
    }
    expect(frames.map((frame) => frame.toString())).toEqual(['partial']);
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('fails with FRAME_TOO_LARGE on an oversized header but returns the frames before it', () => {
    const decoder = new FrameDecoder(8);
    const good = encodeFrames([Buffer.from('ok')]);
    const bad = Buffer.alloc(4);
    bad.writeUInt32BE(9, 0);
    const result = decoder.push(Buffer.concat([good, bad]));
    expect(result.frames.map((frame) => frame.toString())).toEqual(['ok']);
    expect(result.error).toBeInstanceOf(TransportError);
    expect(result.error?.code).toBe('FRAME_TOO_LARGE');
    // Poisoned: nothing after a bad frame is trusted.
    expect(decoder.push(good)).toEqual({ frames: [], error: result.error });
  });

  it('accepts a frame exactly at the limit', () => {
    const payload = Buffer.alloc(64, 7);
    expect(decodeAll(new FrameDecoder(64), [encodeFrames([payload])])).toEqual([payload]);
  });

  it('decodes arbitrary frames split at arbitrary chunk boundaries (property)', () => {
    check(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (payloads, cuts) => {
          const chunks = split(encodeFrames(payloads), cuts);
          const frames = decodeAll(new FrameDecoder(1024), chunks);
          expect(frames.map((frame) => Buffer.from(frame).toString('hex'))).toEqual(
            payloads.map((payload) => Buffer.from(payload).toString('hex')),
          );
        },
      ),
    );
  });
});

/** msgpack-representable values whose decoding is structurally identical (no -0, no `__proto__`). */
const message = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true }).filter((x) => !Object.is(x, -0)),
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.uint8Array({ maxLength: 64 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.string().filter((key) => key !== '__proto__'),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
})).value;

/** Decoded binary comes back as Buffer; compare as plain Uint8Array. */
function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Buffer.from(value).toString('hex') };
  if (Array.isArray(value)) return value.map(normalize);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, normalize(inner)]));
  }
  return value;
}

describe('codec', () => {
  it('round-trips arbitrary messages through frames and arbitrary chunking (property)', () => {
    const codec = createCodec();
    check(
      fc.property(fc.array(message, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 30 }), (messages, cuts) => {
        const payloads = messages.map((value) => {
          const encoded = codec.encode(value);
          if (encoded instanceof TransportError) throw encoded;
          return encoded;
        });
        const frames = decodeAll(new FrameDecoder(1 << 20), split(encodeFrames(payloads), cuts));
        const decoded = frames.map((frame) => {
          const result = codec.decode(frame);
          if (!result.ok) throw result.error;
          return result.value;
        });
        expect(normalize(decoded)).toEqual(normalize(messages));
      }),
      200,
    );
  });

  it('returns Uint8Array values as Uint8Array (Buffer) that own their memory', () => {
    const codec = createCodec();
    const encoded = codec.encode({ data: new Uint8Array([1, 2, 3]) });
    if (encoded instanceof TransportError) throw encoded;
    const frame = Buffer.from(encoded);
    const result = codec.decode(frame);
    if (!result.ok) throw result.error;
    const data = (result.value as { data: Uint8Array }).data;
    expect(data).toBeInstanceOf(Uint8Array);
    expect([...data]).toEqual([1, 2, 3]);
    frame.fill(0);
    expect([...data]).toEqual([1, 2, 3]);
    // A frame that is a view of a large read buffer: the value does not keep that buffer alive.
    const chunk = Buffer.alloc(64 * 1024);
    Buffer.from(encoded).copy(chunk, 1000);
    const inChunk = codec.decode(chunk.subarray(1000, 1000 + encoded.length));
    if (!inChunk.ok) throw inChunk.error;
    const aliased = (inChunk.value as { data: Uint8Array }).data;
    expect([...aliased]).toEqual([1, 2, 3]);
    expect(aliased.buffer).not.toBe(chunk.buffer);
    expect(aliased.buffer.byteLength).toBeLessThan(chunk.length);
  });

  it('reports encode and decode failures as values', () => {
    const codec = createCodec();
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const encoded = codec.encode(circular);
    expect(encoded).toBeInstanceOf(TransportError);
    expect((encoded as TransportError).code).toBe('ENCODE_FAILED');
    const decoded = codec.decode(Buffer.from([0x92, 0x01]));
    expect(decoded.ok).toBe(false);
    if (!decoded.ok) expect(decoded.error.code).toBe('DECODE_FAILED');
  });
});

describe('handshake proofs', () => {
  const nonce = newNonce();

  it('bind the role, both ids and the nonce', () => {
    const base = dialerProof('s', nonce, 'a', 'b');
    expect(macMatches(base, dialerProof('s', nonce, 'a', 'b'))).toBe(true);
    expect(macMatches(base, acceptorProof('s', nonce, 'a', 'b'))).toBe(false);
    expect(macMatches(base, dialerProof('s', nonce, 'b', 'a'))).toBe(false);
    expect(macMatches(base, dialerProof('s', newNonce(), 'a', 'b'))).toBe(false);
    expect(macMatches(base, dialerProof('t', nonce, 'a', 'b'))).toBe(false);
    // Length-prefixed ids: moving a character across the boundary changes the proof.
    expect(macMatches(dialerProof('s', nonce, 'ab', 'c'), dialerProof('s', nonce, 'a', 'bc'))).toBe(false);
  });

  it('reject macs of the wrong length without throwing', () => {
    expect(macMatches(dialerProof('s', nonce, 'a', 'b'), new Uint8Array(31))).toBe(false);
  });

  it('parse only well-formed messages', () => {
    expect(parseChallenge({ t: 'challenge', v: PROTOCOL_VERSION, id: 'a', nonce })).toMatchObject({ id: 'a' });
    expect(parseChallenge({ t: 'challenge', v: 99, id: 'a', nonce })).toBeInstanceOf(TransportError);
    expect(parseChallenge({ t: 'challenge', v: PROTOCOL_VERSION, id: 'a', nonce: new Uint8Array(3) })).toBeInstanceOf(
      TransportError,
    );
    expect(parseHello({ t: 'hello', id: '', nonce, mac: new Uint8Array(32) })).toBeInstanceOf(TransportError);
    expect(parseHello({ t: 'hello', id: 'x'.repeat(257), nonce, mac: new Uint8Array(32) })).toBeInstanceOf(
      TransportError,
    );
    expect(parseHello([1, 2])).toBeInstanceOf(TransportError);
    expect(parseHello({ t: 'hello', id: 'a', nonce, mac: new Uint8Array(32) })).toMatchObject({ id: 'a' });
  });
});

describe('Backoff', () => {
  it('doubles from the initial delay up to the cap, with jitter in [d/2, d]', () => {
    const low = new Backoff({ initialMs: 50, maxMs: 2_000 }, () => 0);
    expect(Array.from({ length: 8 }, () => low.next())).toEqual([25, 50, 100, 200, 400, 800, 1000, 1000]);
    const high = new Backoff({ initialMs: 50, maxMs: 2_000 }, () => 1);
    expect(Array.from({ length: 8 }, () => high.next())).toEqual([50, 100, 200, 400, 800, 1600, 2000, 2000]);
    high.reset();
    expect(high.next()).toBe(50);
  });
});
