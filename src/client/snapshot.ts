/**
 * The discovery cache on disk: one JSON file per service under `snapshotDir`
 * (`<dir>/<namespace>/<service>.json`; names cannot contain `/` or start with `.`), and for a
 * service read from a named datacenter (`dc`) `<dir>/@dc/<datacenter>/<namespace>/<service>.json`
 * (no namespace directory can be `@dc`: `@` is encoded), so two datacenters' answers never
 * share a file.
 * Written on change, atomically (a temporary file renamed over the old one, so a crash
 * leaves the old snapshot or the new one, never half of one), and read at start when no
 * node answers. Writes of one service never overlap: a change during a write marks the
 * service dirty and one more write follows.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CacheSnapshot } from './cache.js';

export class SnapshotStore {
  readonly #writing = new Map<string, Promise<void>>();
  readonly #pending = new Map<string, () => CacheSnapshot>();

  constructor(
    readonly dir: string,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}

  fileOf(namespace: string, service: string, datacenter?: string): string {
    const root = datacenter === undefined ? this.dir : path.join(this.dir, '@dc', safe(datacenter));
    return path.join(root, safe(namespace), `${safe(service)}.json`);
  }

  /** Reads a service's snapshot; undefined when there is none or it is unreadable. */
  async read(namespace: string, service: string, datacenter?: string): Promise<CacheSnapshot | undefined> {
    let text: string;
    try {
      text = await readFile(this.fileOf(namespace, service, datacenter), 'utf8');
    } catch {
      return undefined;
    }
    try {
      const s = JSON.parse(text) as CacheSnapshot;
      if (
        s.format !== 1 ||
        s.namespace !== namespace ||
        s.service !== service ||
        s.datacenter !== datacenter ||
        !Array.isArray(s.instances)
      )
        return undefined;
      return s;
    } catch {
      return undefined;
    }
  }

  /** Schedules a write of `take()` (called when the write starts, so it is the newest state). */
  save(namespace: string, service: string, take: () => CacheSnapshot, datacenter?: string): void {
    const key = this.fileOf(namespace, service, datacenter);
    this.#pending.set(key, take);
    if (!this.#writing.has(key)) this.#writing.set(key, this.#drain(key));
  }

  /** Resolves when every scheduled write has reached the disk. */
  async flush(): Promise<void> {
    while (this.#writing.size > 0) await Promise.all([...this.#writing.values()]);
  }

  async #drain(file: string): Promise<void> {
    try {
      for (let take = this.#pending.get(file); take !== undefined; take = this.#pending.get(file)) {
        this.#pending.delete(file);
        try {
          await mkdir(path.dirname(file), { recursive: true });
          const tmp = `${file}.${process.pid}.tmp`;
          await writeFile(tmp, JSON.stringify(take()));
          await rename(tmp, file);
        } catch (err) {
          this.onError(err);
        }
      }
    } finally {
      this.#writing.delete(file);
    }
  }
}

function safe(name: string): string {
  // Registry names match [A-Za-z0-9][A-Za-z0-9._-]*; anything else is encoded, never a path.
  return /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) ? name : encodeURIComponent(name).replace(/^\./, '%2E');
}
