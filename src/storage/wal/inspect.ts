/**
 * Finds where an entry sits in a node's WAL files, for tests and for an operator who wants
 * to look at the bytes (the storage itself never needs positions).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeItem, FRAME_HEADER_BYTES, frameAt, ITEM, splitItems } from './format.js';
import { listSegments } from './reader.js';
import { walDir } from './wal.js';

export interface WalEntryLocation {
  /** The segment file. */
  readonly path: string;
  /** Offset of the entry's sealed value (checksum, then msgpack) in the file. */
  readonly offset: number;
  readonly length: number;
  /** Whether the frame holding it is the last frame of the last segment. */
  readonly inLastFrame: boolean;
}

/** The last write of log entry `index` in the WAL of the node data directory `dataDir`, if any. */
export async function locateWalEntry(dataDir: string, index: number): Promise<WalEntryLocation | undefined> {
  const dir = walDir(dataDir);
  const segments = await listSegments(dir);
  let found: Omit<WalEntryLocation, 'inLastFrame'> | undefined;
  let foundFrame = -1;
  let frameNo = 0;
  for (const seg of segments) {
    const path = join(dir, seg.name);
    const data = await readFile(path);
    let at = 0;
    while (at < data.byteLength) {
      const frame = frameAt(data, at);
      if (!frame.ok) break;
      for (const it of splitItems(frame.body).items) {
        if (it.kind !== ITEM.entry) continue;
        const d = decodeItem(it.kind, it.payload);
        if (d.ok && d.record.kind === 'entry' && d.record.entry.index === index) {
          found = { path, offset: at + FRAME_HEADER_BYTES + it.offset, length: it.payload.byteLength };
          foundFrame = frameNo;
        }
      }
      frameNo++;
      at = frame.end;
    }
  }
  return found === undefined ? undefined : { ...found, inLastFrame: foundFrame === frameNo - 1 };
}
