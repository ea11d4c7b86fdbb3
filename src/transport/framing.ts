import type { Payload } from './codec.js';
import { TransportError } from './errors.js';

/** Frames are `u32 big-endian length || payload`. */
export const FRAME_HEADER_BYTES = 4;
/** The largest length a 4-byte header can express. */
export const MAX_FRAME_LENGTH = 0xffff_ffff;

/**
 * Concatenates frames into one buffer so a whole batch costs a single `socket.write`
 * (and usually a single syscall). One copy of the payload bytes is cheaper than the
 * per-write overhead of Node streams for the small messages Raft sends most.
 */
export function encodeFrames(payloads: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const payload of payloads) total += FRAME_HEADER_BYTES + payload.byteLength;
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const payload of payloads) {
    if (payload.byteLength > MAX_FRAME_LENGTH) {
      throw new TransportError('FRAME_TOO_LARGE', `payload of ${payload.byteLength} bytes cannot be framed`);
    }
    out.writeUInt32BE(payload.byteLength, offset);
    out.set(payload, offset + FRAME_HEADER_BYTES);
    offset += FRAME_HEADER_BYTES + payload.byteLength;
  }
  return out;
}

/** A binary value at least this large goes to the socket as its own buffer rather than copied into a batch. */
export const SPLICE_MIN_BYTES = 16 * 1024;

/** A payload's length on the wire, without its frame header. */
export function payloadLength(payload: Payload): number {
  return payload.byteLength;
}

/**
 * The frames of a batch as buffers for one corked write: small frames and the parts of
 * spliced ones around their binary value are joined (one copy of a few bytes), a large
 * binary value is its own buffer, uncopied. The bytes are those of `encodeFrames` over
 * the same messages encoded whole.
 */
export function framePieces(payloads: readonly Payload[]): Uint8Array[] {
  const pieces: Uint8Array[] = [];
  let run: Uint8Array[] = [];
  let runBytes = 0;
  const add = (bytes: Uint8Array) => {
    run.push(bytes);
    runBytes += bytes.byteLength;
  };
  const endRun = () => {
    if (run.length === 0) return;
    pieces.push(run.length === 1 ? run[0]! : Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const payload of payloads) {
    if (payload.byteLength > MAX_FRAME_LENGTH) {
      throw new TransportError('FRAME_TOO_LARGE', `payload of ${payload.byteLength} bytes cannot be framed`);
    }
    const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    header.writeUInt32BE(payload.byteLength, 0);
    add(header);
    if (payload instanceof Uint8Array) {
      add(payload);
      continue;
    }
    add(payload.head);
    if (payload.binary.byteLength >= SPLICE_MIN_BYTES) {
      endRun();
      pieces.push(payload.binary);
    } else {
      add(payload.binary);
    }
    add(payload.tail);
  }
  endRun();
  return pieces;
}

export interface DecodeResult {
  /** Complete frame payloads, in arrival order. May alias the pushed chunks: do not mutate. */
  readonly frames: Buffer[];
  /** Set once the stream is unusable; frames before the bad one are still returned. */
  readonly error: TransportError | null;
}

/**
 * Incremental decoder for a byte stream of frames: TCP delivers chunks with arbitrary
 * boundaries, so one chunk may hold many frames, a fraction of one, or both.
 *
 * Chunks are kept as a list and only joined once a frame is complete, so a large frame
 * arriving in many small chunks costs O(size), not O(size * chunks).
 */
export class FrameDecoder {
  private readonly chunks: Buffer[] = [];
  /** Bytes of `chunks[0]` already consumed; an offset is cheaper than re-slicing per frame. */
  private offset = 0;
  private buffered = 0;
  /** Payload length of the frame being assembled, once its header has arrived. */
  private pendingLength: number | null = null;
  private failure: TransportError | null = null;

  constructor(private maxFrameBytes: number) {}

  /** Raised after the handshake: unauthenticated peers get a small limit, peers a large one. */
  setMaxFrameBytes(maxFrameBytes: number): void {
    this.maxFrameBytes = maxFrameBytes;
  }

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): DecodeResult {
    if (this.failure !== null) return { frames: [], error: this.failure };
    const frames: Buffer[] = [];
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.pendingLength === null) {
        if (this.buffered < FRAME_HEADER_BYTES) break;
        const length = this.readHeader();
        if (length > this.maxFrameBytes) {
          this.failure = new TransportError(
            'FRAME_TOO_LARGE',
            `frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`,
          );
          this.chunks.length = 0;
          this.offset = 0;
          this.buffered = 0;
          return { frames, error: this.failure };
        }
        this.pendingLength = length;
      }
      if (this.buffered < this.pendingLength) break;
      frames.push(this.take(this.pendingLength));
      this.pendingLength = null;
    }
    return { frames, error: null };
  }

  private readHeader(): number {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.offset >= FRAME_HEADER_BYTES) {
      const length = first.readUInt32BE(this.offset);
      this.consume(first, FRAME_HEADER_BYTES);
      return length;
    }
    return this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
  }

  /** Removes exactly `n` buffered bytes (the caller checked they are there). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first !== undefined && first.length - this.offset >= n) {
      // The common case: the bytes are contiguous, so hand out a view rather than a copy.
      const view = first.subarray(this.offset, this.offset + n);
      this.consume(first, n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[0];
      if (chunk === undefined) throw new Error('FrameDecoder invariant violated: buffered count is wrong');
      const used = Math.min(chunk.length - this.offset, n - written);
      chunk.copy(out, written, this.offset, this.offset + used);
      written += used;
      this.consume(chunk, used);
    }
    return out;
  }

  private consume(first: Buffer, n: number): void {
    this.buffered -= n;
    this.offset += n;
    if (this.offset === first.length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}
