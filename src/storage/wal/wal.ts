/**
 * The write side of the WAL: segment files in one directory, appended to, never rewritten.
 * One write() call and (when asked) one fdatasync per frame. Rolling over to a new segment
 * and deleting segments that only hold compacted entries are the only other file
 * operations. Callers serialize their calls (NodeStorage's write queue).
 */
import * as fs from 'node:fs';
import { mkdir, rm, truncate, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ioError } from '../errors.js';
import type { WalRecord } from './format.js';
import { encodeFrame, segmentItem, segmentName } from './format.js';
import { readWal, type SegmentFile, type WalScan } from './reader.js';

const fdatasync = promisify(fs.fdatasync);
const fsync = promisify(fs.fsync);
const close = promisify(fs.close);
// Plain descriptors, not FileHandles: a FileHandle closes its descriptor when collected.
const openFd = promisify(fs.open);

/**
 * Default segment size: a segment is rolled over once it holds this many bytes. Compaction
 * deletes whole segments only, and open() reads every segment left, so this bounds what a
 * restart replays beyond the compaction point: at 64 MiB a node restarted after 100,000
 * writes of ~400 bytes re-read all of them (a fifth of its start-up CPU), at 8 MiB about
 * 20,000 at most. A rollover (create, fsync the directory) every 8 MiB costs nothing here.
 */
export const DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024;

export interface WalOptions {
  /** Roll over to a new segment once the active one reaches this many bytes. */
  readonly segmentBytes?: number;
}

export interface WalStats {
  readonly frames: number;
  /** fdatasync/fsync calls (frames, rollovers, the directory). */
  readonly syncs: number;
  readonly segments: number;
  readonly segmentsDeleted: number;
}

/** Where a node's WAL lives: inside its data directory, next to LevelDB's own files. */
export const walDir = (dataDir: string): string => join(dataDir, 'wal');

interface Segment {
  readonly name: string;
  readonly seq: number;
  readonly firstIndex: number;
}

export interface NewSegment {
  /** The log's last index when the segment starts (entries after it are not in the log). */
  readonly last: number;
  /** Items written before the segment header: the state as of the start (snapshot meta, hard state). */
  readonly state: readonly Uint8Array[];
}

export class Wal {
  private readonly segments: Segment[];
  /** The active (last) segment's descriptor, or undefined before the first write. */
  private fd: number | undefined;
  private size: number;
  /** Frames written since the last fdatasync of the active segment. */
  private dirty = false;
  private counters = { frames: 0, syncs: 0, segmentsDeleted: 0 };

  private constructor(
    readonly dir: string,
    private readonly format: number,
    segments: SegmentFile[],
    fd: number | undefined,
    private readonly segmentBytes: number,
  ) {
    this.segments = segments.map(({ name, seq, firstIndex }) => ({ name, seq, firstIndex }));
    this.fd = fd;
    this.size = segments.at(-1)?.bytes ?? 0;
  }

  /**
   * Reads and verifies the WAL in `dir` (created if missing), calling `onRecord` for each
   * record in order, cuts a torn last write off the last segment, and opens that segment
   * for appending.
   */
  static async open(
    dir: string,
    format: number,
    onRecord: (r: WalRecord) => void,
    options: WalOptions = {},
  ): Promise<{ wal: Wal; scan: WalScan }> {
    try {
      // A new directory's entry must be durable before anything in it counts on it.
      if ((await mkdir(dir, { recursive: true })) !== undefined) await syncDir(dirname(dir));
    } catch (err) {
      throw ioError(`creating the WAL directory ${dir}`, err);
    }
    const scan = await readWal(dir, format, onRecord);
    const segments = [...scan.segments];
    const last = segments.at(-1);
    let fd: number | undefined;
    try {
      if (last !== undefined && scan.torn !== undefined) {
        // Appends go after the intact data; cut the torn bytes so they can never be read as a frame.
        await truncate(join(dir, last.name), last.bytes);
      }
      if (last !== undefined && last.bytes === 0) {
        // A segment whose header never became durable: the previous segment is complete on its own.
        await unlink(join(dir, last.name));
        segments.pop();
      }
      const active = segments.at(-1);
      if (active !== undefined) {
        fd = await openFd(join(dir, active.name), 'r+');
        // After a process crash the last frames may still be only in the page cache. The
        // node is about to act on them (vote, acknowledge, delete older segments): make
        // them durable first. Older segments were synced before the next one was started.
        await fdatasync(fd);
      }
      if (scan.torn !== undefined || (last !== undefined && last.bytes === 0)) await syncDir(dir);
    } catch (err) {
      if (fd !== undefined) await close(fd).catch(() => undefined);
      throw ioError(`repairing the end of the WAL in ${dir}`, err);
    }
    return { wal: new Wal(dir, format, segments, fd, options.segmentBytes ?? DEFAULT_SEGMENT_BYTES), scan };
  }

  /** True when the next write should start a new segment (none yet, or the active one is full). */
  needsNewSegment(): boolean {
    return this.fd === undefined || this.size >= this.segmentBytes;
  }

  stats(): WalStats {
    return { ...this.counters, segments: this.segments.length };
  }

  /** Segment names in sequence order (tests, tools). */
  segmentNames(): string[] {
    return this.segments.map((s) => s.name);
  }

  /**
   * Writes `items` as one frame: one write() and, if `sync`, one fdatasync. With
   * `newSegment`, the frame starts a new segment (the active one is made durable first,
   * so a later segment is never durable while an earlier one has a hole).
   */
  async write(items: readonly Uint8Array[], sync: boolean, newSegment?: NewSegment): Promise<void> {
    let frameItems = items;
    let created = false;
    if (newSegment !== undefined) {
      await this.sync();
      const seq = (this.segments.at(-1)?.seq ?? -1) + 1;
      const name = segmentName(seq, newSegment.last + 1);
      const fd = await openFd(join(this.dir, name), 'wx');
      const previous = this.fd;
      this.fd = fd;
      this.size = 0;
      this.segments.push({ name, seq, firstIndex: newSegment.last + 1 });
      if (previous !== undefined) await close(previous);
      frameItems = [...newSegment.state, segmentItem({ format: this.format, seq, last: newSegment.last }), ...items];
      created = true;
    }
    const fd = this.fd;
    if (fd === undefined) throw new Error('WAL: write before the first segment');
    const frame = encodeFrame(frameItems);
    // A synchronous write only copies into the page cache (the fdatasync is what waits for
    // the disk); it saves a thread-pool round trip per frame.
    let done = 0;
    while (done < frame.byteLength) done += fs.writeSync(fd, frame, done, frame.byteLength - done, this.size + done);
    this.size += frame.byteLength;
    this.counters.frames++;
    if (sync || created) {
      await fdatasync(fd);
      this.counters.syncs++;
      this.dirty = false;
    } else {
      this.dirty = true;
    }
    // The new file's directory entry must be durable too, or the segment could vanish.
    if (created) await this.syncDirCounted();
  }

  /** fdatasync the active segment if anything was written to it unsynced. */
  async sync(): Promise<void> {
    if (!this.dirty || this.fd === undefined) return;
    await fdatasync(this.fd);
    this.counters.syncs++;
    this.dirty = false;
  }

  /**
   * Deletes the segments that only hold entries at or below `index` (and state superseded
   * by later segments' headers). The record that makes them unnecessary — the snapshot meta
   * at `index` — must already be written; it is made durable here before anything is deleted.
   * Returns the number of segments deleted.
   */
  async releaseTo(index: number): Promise<number> {
    const names = await this.detachTo(index);
    await this.deleteDetached(names);
    return names.length;
  }

  /**
   * The first half of releaseTo: makes the WAL durable, forgets the segments that hold
   * nothing beyond `index` and returns their names, to be deleted by deleteDetached (which
   * may run beside later writes: they go to other files). Deletions of successive
   * detachments must run in the order of the detachments.
   */
  async detachTo(index: number): Promise<string[]> {
    // Segment k (and every one before it) may go once segment k+1 starts at or below
    // index+1: the log as of k+1's start ends at firstIndex-1 ≤ index, so all the earlier
    // segments contribute is compacted entries and superseded state. Start indices are not
    // monotonic (a conflicting tail can be replaced after a rollover), so find the last such k.
    let upTo = -1;
    for (let k = 0; k + 1 < this.segments.length; k++) {
      if (this.segments[k + 1]!.firstIndex - 1 <= index) upTo = k;
    }
    if (upTo < 0) return [];
    await this.sync();
    return this.segments.splice(0, upTo + 1).map((s) => s.name);
  }

  /** Deletes detached segments (detachTo), oldest first. */
  async deleteDetached(names: readonly string[]): Promise<void> {
    // Oldest first, each deletion made durable before the next: a crash midway then leaves a
    // consecutive run of old segments (superseded by later ones, deleted again by the next
    // release), never a gap that open() would refuse as LOG_GAP. Deletions are rare (a
    // segment is 8 MiB), so a directory fsync per segment is cheap.
    for (const name of names) {
      await rm(join(this.dir, name), { force: true });
      await this.syncDirCounted();
      this.counters.segmentsDeleted++;
    }
  }

  /** Makes pending frames durable and closes the active segment. */
  async close(): Promise<void> {
    const fd = this.fd;
    if (fd === undefined) return;
    try {
      await this.sync();
    } finally {
      this.fd = undefined;
      await close(fd);
    }
  }

  private async syncDirCounted(): Promise<void> {
    await syncDir(this.dir);
    this.counters.syncs++;
  }
}

/** fsync a directory, so the files created in it (or its own creation) survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fd = await openFd(dir, 'r');
  try {
    await fsync(fd);
  } finally {
    await close(fd);
  }
}
