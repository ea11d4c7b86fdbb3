/**
 * A full scan of a LevelDB (sub)level in key order, a batch of records per await, through
 * one iterator: LevelDB gives an iterator an implicit consistent snapshot, so writes that
 * land meanwhile are not seen. The registry's load, snapshot preparation and snapshot
 * install all read the state machine this way.
 */

/** What a scan needs of a level: abstract-level's iterator. */
export interface Scannable<K, V> {
  iterator(options: ScanOptions): { nextv(size: number): Promise<Array<[K, V]>>; close(): Promise<void> };
}

interface ScanOptions {
  readonly keys: true;
  readonly values: true;
  /**
   * classic-level's own option (its types are not abstract-level's, which do not list it;
   * sublevels pass it through). It ends each nextv() at 16 KiB by default: ~36 registry
   * records, so a scan of 100,000 made 2,900 native calls instead of 100 and took ~20 % longer.
   */
  readonly highWaterMarkBytes: number;
  /**
   * 'utf8': keys come as strings, decoded by classic-level as it reads them (the registry's
   * load: ~0.7 µs a record less than a Buffer per key decoded in JavaScript afterwards).
   */
  readonly keyEncoding?: 'utf8';
}

/** Records per batch of a scan. */
export const SCAN_BATCH = 1000;

/**
 * Yields every record, `batch` at a time (keys as strings with `keyEncoding` 'utf8'). Give K and V (`scanBatches<Uint8Array, Uint8Array>(sm)`):
 * abstract-level's iterator() is generic per call, so they cannot be inferred from the level. The iterator is closed however the loop ends; if
 * reading failed, that error is the one reported, not a failure to close after it.
 */
export async function* scanBatches<K, V>(
  level: Scannable<K, V>,
  batch = SCAN_BATCH,
  keyEncoding?: 'utf8',
): AsyncGenerator<Array<[K, V]>> {
  const options: ScanOptions = { keys: true, values: true, highWaterMarkBytes: batch * 1024 };
  const it = level.iterator(keyEncoding === undefined ? options : { ...options, keyEncoding });
  let failed = false;
  try {
    for (;;) {
      const records = await it.nextv(batch);
      if (records.length === 0) return;
      yield records;
    }
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    if (failed) await it.close().catch(() => undefined);
    else await it.close();
  }
}
