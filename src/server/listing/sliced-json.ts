/**
 * Large answers written in slices that hand the event loop back between them, so no listing,
 * however large, holds the loop for more than a few milliseconds: the leader's heartbeats
 * (every 50 ms tick) and every other request go on while a 200,000-instance answer is
 * written.
 *
 * One scheduler runs the slices of every open listing in turn, at most TURN_MS of them per
 * event-loop turn, then yields with setImmediate (after the poll phase, so network I/O,
 * Raft messages and timers run between turns). Each slice stops at its own deadline
 * (SLICE_MS). A stream is pull-driven: a client that reads slowly gets no slice until it
 * has read the last, and one that stops reading for STALL_MS is cut.
 */
import { Readable } from 'node:stream';

/** How long one slice of one listing may run. */
export const SLICE_MS = 2;
/**
 * How long the first slice may run, in the request's own turn, outside the scheduler: long
 * enough to answer a small list whole (about 200 instances), short enough that the requests
 * one ReadIndex round releases together (each its first slice, in one turn) add up to little.
 */
export const FIRST_SLICE_MS = 0.5;
/** How long all listings together may run in one event-loop turn (one slice past it at most). */
export const TURN_MS = 5;
/** A client that reads nothing for this long is cut (its view of the registry is released). */
export const STALL_MS = 60_000;

/** One slice: the text it wrote (possibly empty) and whether the answer is complete. */
export interface Slice {
  readonly text: string;
  readonly done: boolean;
}

/** Writes the next slice, stopping by `deadline` (a performance.now() time). */
export type SliceWriter = (deadline: number) => Slice;

/** A slice whose text may already be encoded (body-cache.ts keeps the Buffers a listing sent). */
export interface ChunkSlice {
  readonly text: string | Buffer;
  readonly done: boolean;
}

/** What SlicedJson sends: a SliceWriter, or one that hands over Buffers. */
export type ChunkWriter = (deadline: number) => ChunkSlice;

/** What the scheduler has done since start (or the last reset): for tests and benchmarks. */
export const sliceStats = {
  turns: 0,
  /** The longest turn, slices of every listing together, in ms of wall-clock time. */
  longestTurnMs: 0,
  /** Keys the writers have read (writers.ts counts them), and the most in one turn. */
  keys: 0,
  mostKeysInTurn: 0,
  reset(): void {
    this.turns = 0;
    this.longestTurnMs = 0;
    this.keys = 0;
    this.mostKeysInTurn = 0;
  },
};

class SliceScheduler {
  #queue: (() => void)[] = [];
  #scheduled = false;

  run(task: () => void): void {
    this.#queue.push(task);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#turn);
    }
  }

  /** Tasks queued during a turn wait for the next one. */
  readonly #turn = (): void => {
    this.#scheduled = false;
    const tasks = this.#queue;
    this.#queue = [];
    const started = performance.now();
    const keys = sliceStats.keys;
    const end = started + TURN_MS;
    let i = 0;
    while (i < tasks.length && (i === 0 || performance.now() < end)) tasks[i++]!();
    sliceStats.turns++;
    sliceStats.longestTurnMs = Math.max(sliceStats.longestTurnMs, performance.now() - started);
    sliceStats.mostKeysInTurn = Math.max(sliceStats.mostKeysInTurn, sliceStats.keys - keys);
    if (i < tasks.length) this.#queue = tasks.slice(i).concat(this.#queue);
    if (this.#queue.length > 0 && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#turn);
    }
  };
}

const scheduler = new SliceScheduler();

/** A JSON answer produced slice by slice; `onClose` runs once when it ends, fails or is cut. */
export class SlicedJson extends Readable {
  #queued = false;
  #done = false;
  #stall: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(
    private readonly write: ChunkWriter,
    private readonly onClose: () => void,
    private readonly stallMs = STALL_MS,
  ) {
    super();
  }

  override _read(): void {
    this.#armStall();
    if (this.#queued || this.#done) return;
    this.#queued = true;
    scheduler.run(this.#slice);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    this.#close();
    callback(err);
  }

  readonly #slice = (): void => {
    this.#queued = false;
    if (this.destroyed) return;
    let out: ChunkSlice;
    try {
      out = this.write(performance.now() + SLICE_MS);
    } catch (err) {
      this.destroy(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (out.done) {
      this.#done = true;
      if (out.text.length > 0) this.push(out.text);
      this.push(null);
      this.#close();
      return;
    }
    // An empty push would stall the stream: go on in the next turn instead.
    if (out.text.length === 0) {
      this.#queued = true;
      scheduler.run(this.#slice);
      return;
    }
    this.push(out.text);
  };

  #armStall(): void {
    if (this.#stall !== null) clearTimeout(this.#stall);
    this.#stall = setTimeout(
      () => this.destroy(new Error(`the client read nothing for ${this.stallMs} ms`)),
      this.stallMs,
    );
    this.#stall.unref();
  }

  #close(): void {
    if (this.#stall !== null) clearTimeout(this.#stall);
    this.#stall = null;
    if (this.#closed) return;
    this.#closed = true;
    this.onClose();
  }
}
