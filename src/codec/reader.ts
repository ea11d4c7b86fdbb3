/**
 * A cursor over msgpack bytes for hand-written decoders of hot, fixed-shape records (the
 * registry's instances at load: 100,000s of them per start). It reads only the forms the
 * codec's encoder writes for plain data — maps, arrays, nil, booleans, ints up to 32 bits,
 * float64 and ASCII strings — and reports anything else as "not here" (`undefined`, -1,
 * `false`), so the caller falls back to the general decoder (`decode`), which reads every
 * form and whose strict checks then give the precise error. A fast path that returns a value
 * is therefore always the value `decode` would have given.
 */
import { Buffer } from 'node:buffer';

/**
 * Buffer's own latin1 slice, which `toString('latin1', …)` ends in (not in @types/node, in
 * every Node release this project supports): the cheapest way from ASCII bytes to a string.
 */
type Latin1Buffer = Buffer & { latin1Slice(start: number, end: number): string };

/** Strings at most this long go through the StringTable; longer ones are made fresh. */
const INTERN_MAX = 32;
/** Slots of the StringTable: a power of two. */
const TABLE_SLOTS = 4096;

/**
 * Short strings seen again and again while decoding many records (cluster names, tags,
 * metadata keys and values): a direct-mapped table from bytes to one string, so repeats cost
 * a hash and a compare instead of a new string, and the records decoded share one copy.
 */
export class StringTable {
  readonly #slots: (string | undefined)[] = new Array<string | undefined>(TABLE_SLOTS).fill(undefined);

  /** The string of ASCII bytes[start, end) (the caller checked they are ASCII). */
  get(bytes: Latin1Buffer, start: number, end: number): string {
    const len = end - start;
    if (len > INTERN_MAX) return bytes.latin1Slice(start, end);
    let h = 2166136261;
    for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
    const slot = (h >>> 0) & (TABLE_SLOTS - 1);
    const seen = this.#slots[slot];
    if (seen !== undefined && seen.length === len) {
      let same = true;
      for (let i = 0; i < len; i++)
        if (seen.charCodeAt(i) !== bytes[start + i]) {
          same = false;
          break;
        }
      if (same) return seen;
    }
    const made = bytes.latin1Slice(start, end);
    this.#slots[slot] = made;
    return made;
  }
}

/** Slots of a ValueTable: a power of two. */
const VALUE_SLOTS = 4096;
/** Byte ranges longer than this are not kept (a copy of each is held to compare with). */
const VALUE_MAX = 4096;
/** A ValueTable hashes this many bytes at each end of a range. */
const HASHED_ENDS = 24;

/**
 * Whole values decoded from byte ranges seen again and again (an instance's metadata map,
 * its tags): a direct-mapped table from the bytes to the one value decoded from them, so a
 * repeat costs a hash and a compare instead of a decode, and the records share one frozen
 * value. Sound because decoding is a pure function of the bytes: equal bytes, equal value.
 * A slot keeps a copy of its bytes; a colliding range replaces it.
 */
export class ValueTable<T> {
  readonly #keys: (Buffer | undefined)[] = new Array<Buffer | undefined>(VALUE_SLOTS).fill(undefined);
  readonly #values: (T | undefined)[] = new Array<T | undefined>(VALUE_SLOTS).fill(undefined);

  /** From the length and at most the first and last HASHED_ENDS bytes: a slot is checked whole anyway. */
  #slot(bytes: Uint8Array, start: number, end: number): number {
    let h = Math.imul(2166136261 ^ (end - start), 16777619);
    const head = Math.min(end, start + HASHED_ENDS);
    for (let i = start; i < head; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
    for (let i = Math.max(head, end - HASHED_ENDS); i < end; i++) h = Math.imul(h ^ bytes[i]!, 16777619);
    return (h >>> 0) & (VALUE_SLOTS - 1);
  }

  /** The value stored for bytes[start, end), if these very bytes were stored. */
  get(bytes: Uint8Array, start: number, end: number): T | undefined {
    const slot = this.#slot(bytes, start, end);
    const seen = this.#keys[slot];
    if (seen === undefined || seen.length !== end - start) return undefined;
    for (let i = 0; i < seen.length; i++) if (seen[i] !== bytes[start + i]) return undefined;
    return this.#values[slot];
  }

  set(bytes: Uint8Array, start: number, end: number, value: T): void {
    if (end - start > VALUE_MAX) return;
    const slot = this.#slot(bytes, start, end);
    this.#keys[slot] = Buffer.from(bytes.subarray(start, end));
    this.#values[slot] = value;
  }
}

const EMPTY = new Uint8Array(0);

function asBuffer(bytes: Uint8Array): Latin1Buffer {
  return (
    Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  ) as Latin1Buffer;
}

export class MsgpackReader {
  bytes: Latin1Buffer;
  pos = 0;
  /** Where the last string read by `stringBytes` lies: bytes[strStart, strEnd). */
  strStart = 0;
  strEnd = 0;

  constructor(bytes: Uint8Array = EMPTY) {
    this.bytes = asBuffer(bytes);
  }

  /** Starts reading `bytes` from the beginning (one reader serves many records). */
  reset(bytes: Uint8Array): this {
    this.bytes = asBuffer(bytes);
    this.pos = 0;
    return this;
  }

  get atEnd(): boolean {
    return this.pos === this.bytes.length;
  }

  /** A map's entry count, or -1 if no map starts here. */
  mapLength(): number {
    const b = this.bytes;
    const t = b[this.pos];
    if (t === undefined) return -1;
    if (t >= 0x80 && t <= 0x8f) {
      this.pos++;
      return t & 0x0f;
    }
    if (t === 0xde && this.pos + 3 <= b.length) {
      this.pos += 3;
      return b.readUInt16BE(this.pos - 2);
    }
    if (t === 0xdf && this.pos + 5 <= b.length) {
      this.pos += 5;
      return b.readUInt32BE(this.pos - 4);
    }
    return -1;
  }

  /** An array's length, or -1 if no array starts here. */
  arrayLength(): number {
    const b = this.bytes;
    const t = b[this.pos];
    if (t === undefined) return -1;
    if (t >= 0x90 && t <= 0x9f) {
      this.pos++;
      return t & 0x0f;
    }
    if (t === 0xdc && this.pos + 3 <= b.length) {
      this.pos += 3;
      return b.readUInt16BE(this.pos - 2);
    }
    if (t === 0xdd && this.pos + 5 <= b.length) {
      this.pos += 5;
      return b.readUInt32BE(this.pos - 4);
    }
    return -1;
  }

  /**
   * Steps over a string of ASCII bytes and sets strStart/strEnd; false (position unchanged
   * or not: the record is abandoned) if no string starts here or it is not all ASCII.
   */
  stringBytes(): boolean {
    const b = this.bytes;
    const t = b[this.pos];
    if (t === undefined) return false;
    let len: number;
    let at: number;
    if (t >= 0xa0 && t <= 0xbf) {
      len = t & 0x1f;
      at = this.pos + 1;
    } else if (t === 0xd9 && this.pos + 2 <= b.length) {
      len = b[this.pos + 1]!;
      at = this.pos + 2;
    } else if (t === 0xda && this.pos + 3 <= b.length) {
      len = b.readUInt16BE(this.pos + 1);
      at = this.pos + 3;
    } else if (t === 0xdb && this.pos + 5 <= b.length) {
      len = b.readUInt32BE(this.pos + 1);
      at = this.pos + 5;
    } else return false;
    const end = at + len;
    if (end > b.length) return false;
    for (let i = at; i < end; i++) if (b[i]! >= 0x80) return false;
    this.strStart = at;
    this.strEnd = end;
    this.pos = end;
    return true;
  }

  /**
   * Steps over a string without looking at its bytes (not even whether they are ASCII);
   * false if no string starts here or it runs past the end.
   */
  skipString(): boolean {
    const b = this.bytes;
    const t = b[this.pos];
    let end: number;
    if (t === undefined) return false;
    if (t >= 0xa0 && t <= 0xbf) end = this.pos + 1 + (t & 0x1f);
    else if (t === 0xd9 && this.pos + 2 <= b.length) end = this.pos + 2 + b[this.pos + 1]!;
    else if (t === 0xda && this.pos + 3 <= b.length) end = this.pos + 3 + b.readUInt16BE(this.pos + 1);
    else if (t === 0xdb && this.pos + 5 <= b.length) end = this.pos + 5 + b.readUInt32BE(this.pos + 1);
    else return false;
    if (end > b.length) return false;
    this.pos = end;
    return true;
  }

  /** The last string read by stringBytes, as a fresh string. */
  lastString(): string {
    return this.bytes.latin1Slice(this.strStart, this.strEnd);
  }

  /** Whether the last string read by stringBytes is `s` (ASCII). */
  lastStringIs(s: string): boolean {
    const start = this.strStart;
    if (this.strEnd - start !== s.length) return false;
    for (let i = 0; i < s.length; i++) if (this.bytes[start + i] !== s.charCodeAt(i)) return false;
    return true;
  }

  /** An ASCII string, or undefined. */
  string(table?: StringTable): string | undefined {
    if (!this.stringBytes()) return undefined;
    return table === undefined ? this.lastString() : table.get(this.bytes, this.strStart, this.strEnd);
  }

  /** A finite number (ints up to 32 bits, float64), or undefined for any other form. */
  number(): number | undefined {
    const b = this.bytes;
    const p = this.pos;
    const t = b[p];
    if (t === undefined) return undefined;
    if (t <= 0x7f) {
      this.pos = p + 1;
      return t;
    }
    if (t >= 0xe0) {
      this.pos = p + 1;
      return t - 0x100;
    }
    let v: number;
    switch (t) {
      case 0xcc:
        if (p + 2 > b.length) return undefined;
        v = b[p + 1]!;
        this.pos = p + 2;
        return v;
      case 0xcd:
        if (p + 3 > b.length) return undefined;
        this.pos = p + 3;
        return b.readUInt16BE(p + 1);
      case 0xce:
        if (p + 5 > b.length) return undefined;
        this.pos = p + 5;
        return b.readUInt32BE(p + 1);
      case 0xd0:
        if (p + 2 > b.length) return undefined;
        this.pos = p + 2;
        return b.readInt8(p + 1);
      case 0xd1:
        if (p + 3 > b.length) return undefined;
        this.pos = p + 3;
        return b.readInt16BE(p + 1);
      case 0xd2:
        if (p + 5 > b.length) return undefined;
        this.pos = p + 5;
        return b.readInt32BE(p + 1);
      case 0xcb:
        if (p + 9 > b.length) return undefined;
        v = b.readDoubleBE(p + 1);
        if (!Number.isFinite(v)) return undefined;
        this.pos = p + 9;
        return v;
      default:
        return undefined;
    }
  }

  /** true, false, or undefined if no boolean starts here. */
  boolean(): boolean | undefined {
    const t = this.bytes[this.pos];
    if (t === 0xc2 || t === 0xc3) {
      this.pos++;
      return t === 0xc3;
    }
    return undefined;
  }

  /** Steps over a nil; false if none starts here. */
  nil(): boolean {
    if (this.bytes[this.pos] !== 0xc0) return false;
    this.pos++;
    return true;
  }
}
