/**
 * CRC-32 (IEEE 802.3, the zlib/PNG polynomial) over stored values. Node ≥ 20.15 has a
 * native `zlib.crc32`; older Node 20 releases fall back to a table-driven version that
 * computes the same values, so the on-disk format does not depend on the Node release.
 */
import * as zlib from 'node:zlib';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The portable implementation; exported so a test can check it against the native one. */
export function crc32Table(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const native: ((data: Uint8Array) => number) | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (data) => zlib.crc32(data) >>> 0 : undefined;

export const crc32: (data: Uint8Array) => number = native ?? crc32Table;
