/**
 * Reading a backup file (`rollcall snapshot status`) and preparing a member of a new
 * cluster from one (`rollcall snapshot restore`), as etcd's `snapshot restore` does.
 *
 * A restored member's data directory holds, in the storage format of this build (its
 * version record written by NodeStorage.open, as for any new data directory; docs/storage.md,
 * "Format version"):
 * - the state machine of the file, with its membership replaced by `--peers` (all voters)
 *   and the addresses members were added with set to theirs (src/node/peer-book.ts);
 * - a WAL that starts with a Raft snapshot at the file's applied index and term, and the
 *   hard state {term of that entry, no vote, commit = that index}: the log is empty after
 *   it, so the members elect a leader in a later term and carry on from there;
 * - a new cluster id, so the handshake refuses every peer of the cluster the backup came
 *   from (src/transport/cluster-identity.ts), and every member of any other restore of the
 *   same backup: it is derived from the file, `--peers` and the restore's token (etcd's
 *   `--initial-cluster-token`), which every member of one restore is given alike and no
 *   two restores share, so the members agree on it without talking to each other.
 *
 * Session deadlines are not in the file (only the leader keeps them, in memory): the
 * restored cluster's first leader grants every session a full TTL, as every new leader does.
 *
 * The directory is written beside the target under a temporary name and renamed into
 * place once complete and synced, so a crash leaves no half-restored member; a target
 * that exists and is not empty is never touched.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { encode } from '../codec/index.js';
import { MEMBER_ADDRESSES_KEY, smStore } from '../node/state-store.js';
import { CorruptStateError, META_STARTED_MEMBERS_KEY, Registry } from '../registry/index.js';
import { isClusterToken, writeClusterId } from '../storage/cluster-id.js';
import { syncDir } from '../storage/index.js';
import { isNodeLocalSmKey, SM_APPLIED_KEY_BYTES, SM_CONF_KEY_BYTES } from '../storage/keys.js';
import { NodeStorage } from '../storage/node-storage.js';
import { SnapshotWriter } from '../storage/snapshot.js';
import { encodeConfState } from '../storage/values.js';
import type { PeerAddress } from '../transport/index.js';
import { formatHostPort, isClusterId } from '../transport/index.js';
import { BackupFileError, type BackupHeader, type DecodedBackup, decodeBackup, type Pair } from './backup-format.js';

export type RestoreErrorCode =
  /** The target data directory exists and is not empty. */
  | 'DATA_DIR_NOT_EMPTY'
  /** The arguments cannot make a cluster (the member is not in --peers, a bad cluster id, ...). */
  | 'INVALID_ARGUMENT';

export class RestoreError extends Error {
  override readonly name = 'RestoreError';
  constructor(
    readonly code: RestoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface InspectedBackup extends DecodedBackup {
  readonly file: string;
}

/**
 * Reads `file` whole and verifies it: the format (backup-format.ts), then that this build
 * can load every registry record in it. Throws BackupFileError naming the file (or `name`
 * for it) when not.
 */
export async function inspectBackup(file: string, name = file): Promise<InspectedBackup> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (err) {
    throw new BackupFileError(
      'NOT_A_SNAPSHOT',
      name,
      `cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    );
  }
  const decoded = decodeBackup(data, name);
  try {
    await Registry.open(pairStore(decoded.pairs));
  } catch (err) {
    if (err instanceof CorruptStateError) throw new BackupFileError('CORRUPT', name, err.message);
    throw err;
  }
  return { ...decoded, file };
}

export interface RestoreOptions {
  readonly file: string;
  readonly dataDir: string;
  /** The member this directory is for; must be in `peers`. */
  readonly id: string;
  /** Every member of the new cluster (all voters), as in `rollcall server --peers`. */
  readonly peers: ReadonlyMap<string, PeerAddress>;
  /**
   * Names this restore, the same for each of its members and for no other restore (etcd's
   * `--initial-cluster-token`): the new cluster's id is derived from it, the file's checksum
   * and `peers` (restoreClusterId). Either it or `clusterId` is required.
   */
  readonly token?: string;
  /** The new cluster's id, as given; instead of `token`. */
  readonly clusterId?: string;
}

export interface RestoreResult {
  readonly dataDir: string;
  readonly id: string;
  readonly clusterId: string;
  /** The cluster the backup was taken from. */
  readonly fromClusterId: string | null;
  readonly members: readonly string[];
  readonly header: BackupHeader;
  readonly sha256: string;
}

/**
 * The id of a cluster restored from a backup: the same for every member restored from the
 * same file with the same `--peers` and token (so each member can be restored on its own
 * host, without talking to the others), another for every other restore of that file (a
 * test cluster and the real one restored from one backup must never talk to each other),
 * and never the id of the cluster the backup came from.
 */
export function restoreClusterId(sha256: string, peers: ReadonlyMap<string, PeerAddress>, token: string): string {
  const members = [...peers].map(([id, a]) => `${id}=${formatHostPort(a)}`).sort();
  return createHash('sha256')
    .update(`rollcall-restore\0${sha256}\0${members.join(',')}\0${token}`)
    .digest('hex')
    .slice(0, 16);
}

export async function restoreMember(options: RestoreOptions): Promise<RestoreResult> {
  const { id, peers } = options;
  const dataDir = resolve(options.dataDir);
  if (!peers.has(id)) throw new RestoreError('INVALID_ARGUMENT', `--peers must include this member (${id})`);
  if (options.token === undefined && options.clusterId === undefined)
    throw new RestoreError(
      'INVALID_ARGUMENT',
      'give this restore a name, the same for each of its members and for no other restore: --initial-cluster-token TOKEN (the new cluster id is derived from it, FILE and --peers), or --cluster-id ID. Without one, two restores of one backup with the same --peers would get the same id and could talk to each other',
    );
  if (options.token !== undefined && options.clusterId !== undefined)
    throw new RestoreError(
      'INVALID_ARGUMENT',
      '--initial-cluster-token and --cluster-id both name the new cluster: give one of them',
    );
  if (options.token !== undefined && !isClusterToken(options.token))
    throw new RestoreError(
      'INVALID_ARGUMENT',
      `--initial-cluster-token must be 1-256 printable characters without spaces, not ${JSON.stringify(options.token)}`,
    );
  if (options.clusterId !== undefined && !isClusterId(options.clusterId)) {
    throw new RestoreError(
      'INVALID_ARGUMENT',
      `--cluster-id must be 1-64 printable characters without spaces, not ${JSON.stringify(options.clusterId)}`,
    );
  }
  await refuseNonEmpty(dataDir);
  const backup = await inspectBackup(options.file);
  const { header } = backup;
  if (header.applied.index === 0)
    throw new BackupFileError('CORRUPT', options.file, 'it holds no applied state (applied index 0)');
  const clusterId = options.clusterId ?? restoreClusterId(backup.sha256, peers, options.token ?? '');
  if (clusterId === header.clusterId) {
    throw new RestoreError(
      'INVALID_ARGUMENT',
      `--cluster-id ${clusterId} is the id of the cluster the backup came from; a restored cluster needs a new one`,
    );
  }
  const members = [...peers.keys()].sort();
  const conf = { voters: members, learners: [] };
  const data = restoredStateMachine(backup.pairs, conf, peers);

  await mkdir(dirname(dataDir), { recursive: true });
  const staging = join(dirname(dataDir), `.${basename(dataDir)}.restoring-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  try {
    const storage = await NodeStorage.open(staging);
    try {
      const { index, term } = header.applied;
      await storage.persist({
        entries: [],
        snapshot: { meta: { index, term, conf }, data },
        hardState: { term, vote: null, commit: index },
      });
      await writeClusterId(storage.database, clusterId);
      // What `rollcall server` will load: fail here rather than at the member's first start.
      const registry = await Registry.open(smStore(storage.database));
      if (registry.appliedIndex !== index || registry.revision !== header.revision) {
        throw new Error(
          `restored state reads back at index ${registry.appliedIndex}, revision ${registry.revision}; expected ${index}, ${header.revision}`,
        );
      }
    } finally {
      await storage.close();
    }
    await syncTree(staging);
    await refuseNonEmpty(dataDir);
    try {
      // Over an empty directory or none: rename(2) replaces an empty directory atomically.
      await rename(staging, dataDir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST')
        throw new RestoreError(
          'DATA_DIR_NOT_EMPTY',
          `${dataDir} is not empty: restore never overwrites a data directory`,
        );
      throw err;
    }
    await syncDir(dirname(dataDir));
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return { dataDir, id, clusterId, fromClusterId: header.clusterId, members, header, sha256: backup.sha256 };
}

/**
 * The file's records as Raft snapshot data (src/storage/snapshot.ts), with the membership
 * and the member addresses of the new cluster in place of the old.
 */
function restoredStateMachine(
  pairs: readonly Pair[],
  conf: { voters: string[]; learners: string[] },
  peers: ReadonlyMap<string, PeerAddress>,
): Uint8Array {
  const memberAddressesKey = Buffer.from(MEMBER_ADDRESSES_KEY, 'utf8');
  const addresses = Object.fromEntries([...peers].map(([id, a]) => [id, formatHostPort(a)]));
  const replaced = new Map<string, Uint8Array>([
    [Buffer.from(SM_CONF_KEY_BYTES).toString('latin1'), encodeConfState(conf)],
    [memberAddressesKey.toString('latin1'), encode(addresses)],
  ]);
  const out: Pair[] = [];
  for (const [k, v] of pairs) {
    if (isNodeLocalSmKey(k)) continue;
    const name = Buffer.from(k).toString('latin1');
    // Which members of the old cluster had started says nothing of the new one's: its
    // members record themselves once they run (src/node/member-publication.ts).
    if (name === META_STARTED_MEMBERS_KEY) continue;
    const value = replaced.get(name);
    replaced.delete(name);
    out.push([k, value ?? v]);
  }
  for (const [name, value] of replaced) out.push([Buffer.from(name, 'latin1'), value]);
  out.sort((a, b) => Buffer.compare(a[0], b[0]));
  if (!out.some(([k]) => Buffer.compare(k, SM_APPLIED_KEY_BYTES) === 0))
    throw new Error('the snapshot holds no applied position');
  const writer = new SnapshotWriter();
  for (const [k, v] of out) writer.add(k, v);
  return writer.finish();
}

async function refuseNonEmpty(dir: string): Promise<void> {
  let names: string[];
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new RestoreError('DATA_DIR_NOT_EMPTY', `${dir} exists and is not a directory`);
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (names.length > 0)
    throw new RestoreError(
      'DATA_DIR_NOT_EMPTY',
      `${dir} is not empty (${names.length} entries): restore never overwrites a data directory; give an empty or new one`,
    );
}

/** fsyncs every file and directory under `dir` (LevelDB's own files included). */
async function syncTree(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await syncTree(path);
    else if (entry.isFile()) await syncFile(path);
  }
  await syncDir(dir);
}

async function syncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function pairStore(pairs: readonly Pair[]) {
  const decoder = new TextDecoder();
  return {
    async *batches() {
      for (let i = 0; i < pairs.length; i += 1000)
        yield pairs.slice(i, i + 1000).map(([k, v]) => [decoder.decode(k), v] as const);
    },
  };
}
