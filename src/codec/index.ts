/**
 * The one msgpackr configuration used on disk and between nodes. Plain maps (no record
 * extension) keep every encoded value self-describing, so a reader never depends on
 * structures a writer registered earlier.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true, int64AsType: 'number' });

export function encode(value: unknown): Uint8Array {
  return packr.pack(value);
}

export function decode<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
