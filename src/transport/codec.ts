import { Packr } from 'msgpackr';

import { TransportError } from './errors.js';

export type Decoded = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: TransportError };

/** Turns values into frame payloads and back. Errors are values, never thrown. */
export interface Codec {
  encode(value: unknown): Buffer | TransportError;
  decode(payload: Uint8Array): Decoded;
}

/**
 * msgpack with plain maps (`useRecords: false`): every frame is self-describing, so a
 * node never depends on structure definitions negotiated earlier on some other
 * connection, and a reconnect or restart cannot desynchronise the two ends.
 *
 * `copyBuffers: true` makes decoded binary values own their memory instead of aliasing
 * the socket chunk they arrived in; Raft keeps log entries around, and a 10-byte value
 * must not pin a 64 KiB read buffer.
 *
 * Known lossy mappings (msgpack has no types for them): `Map` decodes as a plain object,
 * `Uint8Array` decodes as `Buffer` (a Uint8Array subclass), `-0` decodes as `0`.
 */
export function createCodec(): Codec {
  const packr = new Packr({ useRecords: false, copyBuffers: true });
  return {
    encode(value) {
      try {
        return packr.pack(value);
      } catch (error) {
        return new TransportError('ENCODE_FAILED', 'message cannot be msgpack-encoded', error);
      }
    },
    decode(payload) {
      try {
        return { ok: true, value: packr.unpack(payload) as unknown };
      } catch (error) {
        return { ok: false, error: new TransportError('DECODE_FAILED', 'frame is not valid msgpack', error) };
      }
    },
  };
}
