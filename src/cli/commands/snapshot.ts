/**
 * `rollcall snapshot save | status | restore`: backups (docs/operations.md). `save` streams
 * GET /v1/snapshot from the first endpoint that answers into a temporary file beside FILE,
 * verifies it, fsyncs and renames it into place; `status` verifies a file and says what it
 * holds; `restore` prepares one member of a new cluster from a file (src/ops/restore.ts).
 *
 * The storage stack (LevelDB, the registry) is loaded only when a subcommand runs.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { syncDir } from '../../storage/index.js';
import type { Command } from './command.js';
import { EXIT, reportError } from './exit-codes.js';
import { GLOBAL_HELP, type Globals, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { type Io, jsonOut, table } from './output.js';

const OPTIONS = {
  data: { type: 'string' },
  id: { type: 'string' },
  peers: { type: 'string' },
  'cluster-id': { type: 'string' },
  'initial-cluster-token': { type: 'string' },
  serializable: { type: 'boolean' },
} as const;

export const snapshot: Command = {
  name: 'snapshot',
  summary: 'save a backup of the registry, check a backup file, restore a new cluster from one',
  help: `Usage: rollcall snapshot save FILE [--serializable]
       rollcall snapshot status FILE
       rollcall snapshot restore FILE --data DIR --id ID --peers ID=HOST:PORT,...
                                (--initial-cluster-token TOKEN | --cluster-id ID)

  save      streams a consistent snapshot (one revision) from the first endpoint that
            answers, followers included, into FILE.tmp-..., verifies it, fsyncs it and
            renames it to FILE. Shows progress on stderr when it is a terminal. Needs an
            admin token when auth is on
  status    verifies FILE (checksums, structure, every record) and shows its revision,
            applied index, cluster id and counts of services, instances and sessions
  restore   prepares the data directory of ONE member of a NEW cluster from FILE; run it
            once per member, with the same FILE, --peers and --initial-cluster-token, then
            start every member with 'rollcall server' and the same --id, --data and
            --peers. The new cluster gets a new cluster id (printed: check that every
            member got the same): its members refuse the cluster the backup came from, and
            every other restore of FILE with another token, and they refuse it. DIR must
            not exist or be empty: restore never overwrites one

Options:
  --data DIR            the new member's data directory (restore)
  --id ID               the new member's id; must be in --peers (restore)
  --peers ID=HOST:PORT,...  every member of the new cluster, as 'rollcall server --peers'
  --initial-cluster-token TOKEN
                        names this restore (as etcd's): the same for each of its members,
                        another for every other restore of FILE (a test cluster and the
                        real one). The cluster id is derived from it, FILE and --peers
  --cluster-id ID       the new cluster's id as given, instead of a token
  --serializable        save this node's applied state without asking the leader first
                        (works without a leader; may miss the latest writes)

${GLOBAL_HELP}

Exit codes besides the common ones: 9 the file is truncated, corrupt or not a snapshot
file; 10 restore: the data directory is not empty.

Examples:
  rollcall snapshot save backup.snap --endpoints http://10.0.0.2:8101
  rollcall snapshot status backup.snap --json
  rollcall snapshot restore backup.snap --data /var/lib/rollcall --id n1 \\
    --peers n1=10.0.1.1:7101,n2=10.0.1.2:7101,n3=10.0.1.3:7101 \\
    --initial-cluster-token prod-restore-2026-05-01
`,
  async run(argv, io) {
    const { values, positionals, globals } = parse(argv, OPTIONS, true);
    if (globals.help) return help(io, this);
    const [sub, file, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    if (sub !== 'save' && sub !== 'status' && sub !== 'restore')
      throw new UsageError(`unknown snapshot subcommand ${JSON.stringify(sub ?? '')} (save, status, restore)`);
    if (file === undefined) throw new UsageError(`snapshot ${sub} needs a FILE`);
    const allowed: readonly string[] =
      sub === 'restore'
        ? ['data', 'id', 'peers', 'cluster-id', 'initial-cluster-token']
        : sub === 'save'
          ? ['serializable']
          : [];
    const misplaced = Object.keys(OPTIONS).find(
      (k) => values[k as keyof typeof OPTIONS] !== undefined && !allowed.includes(k),
    );
    if (misplaced !== undefined) throw new UsageError(`--${misplaced} does not belong to 'snapshot ${sub}'`);
    try {
      switch (sub) {
        case 'save':
          return await save(io, globals, file, values.serializable === true);
        case 'status':
          return await status(io, globals, file);
        case 'restore':
          return await restore(io, globals, file, values);
      }
    } catch (err) {
      return reportSnapshotError(io, err, globals.json);
    }
  },
};

/** Snapshot errors get their own exit codes; everything else goes the common way. */
async function reportSnapshotError(io: Io, err: unknown, json: boolean): Promise<number> {
  const { BackupFileError } = await import('../../ops/backup-format.js');
  const { RestoreError } = await import('../../ops/restore.js');
  let code: number | undefined;
  let body: Record<string, unknown> | undefined;
  if (err instanceof BackupFileError) {
    code = EXIT.BAD_SNAPSHOT;
    body = { code: err.problem, message: err.message, file: err.file };
  } else if (err instanceof RestoreError) {
    code = err.code === 'DATA_DIR_NOT_EMPTY' ? EXIT.DATA_DIR_NOT_EMPTY : EXIT.USAGE;
    body = { code: err.code, message: err.message };
  } else if (err instanceof SaveError) {
    code = err.exit;
    body = { code: err.code, message: err.message, ...(err.status === undefined ? {} : { status: err.status }) };
  }
  if (code === undefined || body === undefined) return reportError(io, err, json);
  if (json) io.err(`${JSON.stringify({ error: body })}\n`);
  else io.err(`rollcall: ${String(body.message)}\n`);
  return code;
}

class SaveError extends Error {
  constructor(
    readonly exit: number,
    readonly code: string,
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

// ---- save ---------------------------------------------------------------------------

async function save(io: Io, g: Globals, file: string, serializable: boolean): Promise<number> {
  const target = resolve(file);
  const temp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(3).toString('hex')}`);
  const endpoints = g.endpoints
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  if (endpoints.length === 0) throw new UsageError('--endpoints names no node');
  const failures: string[] = [];
  for (const endpoint of endpoints) {
    const url = `${endpoint}/v1/snapshot${serializable ? '?consistency=serializable' : ''}`;
    let got: { bytes: number } | 'next';
    try {
      got = await download(url, g, temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    if (got === 'next') {
      failures.push(endpoint);
      continue;
    }
    const { inspectBackup } = await import('../../ops/restore.js');
    let backup;
    try {
      backup = await inspectBackup(temp, `the snapshot from ${endpoint}`);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await rename(temp, target);
    await syncDir(dirname(target));
    const h = backup.header;
    const summary = {
      file,
      bytes: backup.bytes,
      sha256: backup.sha256,
      endpoint,
      node: h.node,
      clusterId: h.clusterId,
      revision: h.revision,
      applied: h.applied,
      counts: h.counts,
      createdAt: h.createdAt,
    };
    if (g.json) jsonOut(io, summary);
    else
      io.out(
        `saved ${file}: revision ${h.revision} (index ${h.applied.index}), ${h.counts.services} services, ${h.counts.instances} instances, ${h.counts.sessions} sessions, ${backup.bytes} bytes from ${h.node}; sha256 ${backup.sha256}\n`,
      );
    return EXIT.OK;
  }
  throw new SaveError(EXIT.UNAVAILABLE, 'UNAVAILABLE', `no node answered with a snapshot (${failures.join(', ')})`);
}

/**
 * Streams one endpoint's snapshot into `temp` (fsynced). 'next': the node could not serve
 * it (down, no leader, shutting down), try another. An answer that refuses us for good
 * (401/403, a bad request) is thrown. A stream that stops for `timeoutMs` is abandoned.
 */
async function download(url: string, g: Globals, temp: string, file: string): Promise<{ bytes: number } | 'next'> {
  const abort = new AbortController();
  let timer = setTimeout(() => abort.abort(), g.timeoutMs);
  const idle = () => {
    clearTimeout(timer);
    timer = setTimeout(() => abort.abort(), g.timeoutMs);
  };
  const progress = new Progress(file);
  try {
    let res: Response;
    try {
      res = await fetch(url, {
        headers: g.token === undefined ? {} : { authorization: `Bearer ${g.token}` },
        signal: abort.signal,
      });
    } catch {
      return 'next';
    }
    if (res.status !== 200) {
      const text = await res.text().catch(() => '');
      let error: { code?: string; message?: string } = {};
      try {
        error = (JSON.parse(text) as { error?: typeof error }).error ?? {};
      } catch {
        // Not a catalogue error (a proxy in between?): the status says enough.
      }
      if (res.status >= 500) return 'next';
      const exit =
        res.status === 401 || res.status === 403 ? EXIT.DENIED : res.status === 404 ? EXIT.NOT_FOUND : EXIT.REJECTED;
      throw new SaveError(
        exit,
        error.code ?? `HTTP_${res.status}`,
        `${url}: ${error.message ?? `HTTP ${res.status}`}`,
        res.status,
      );
    }
    if (res.body === null) return 'next';
    const fh = await open(temp, 'wx');
    let bytes = 0;
    try {
      for await (const piece of res.body) {
        idle();
        await fh.write(piece);
        bytes += piece.byteLength;
        progress.update(bytes);
      }
      await fh.sync();
    } catch (err) {
      // A stream cut halfway leaves a truncated file, which the check after this refuses;
      // a stalled one (the abort) is reported as such.
      if (abort.signal.aborted)
        throw new SaveError(
          EXIT.UNAVAILABLE,
          'TIMEOUT',
          `${url}: the snapshot stream stalled for ${g.timeoutMs} ms after ${bytes} bytes`,
        );
      if (!(err instanceof TypeError)) throw err;
    } finally {
      await fh.close();
    }
    progress.done(bytes);
    return { bytes };
  } finally {
    clearTimeout(timer);
    progress.done(null);
  }
}

/** One line on stderr, rewritten at most every 100 ms, only when stderr is a terminal. */
class Progress {
  private readonly tty = process.stderr.isTTY === true;
  private last = 0;
  private readonly started = Date.now();
  private shown = false;

  constructor(private readonly file: string) {}

  update(bytes: number): void {
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.last < 100) return;
    this.last = now;
    this.shown = true;
    const secs = Math.max(0.001, (now - this.started) / 1000);
    process.stderr.write(`\r\x1b[Ksaving ${this.file}: ${mib(bytes)} received, ${mib(bytes / secs)}/s`);
  }

  done(bytes: number | null): void {
    if (!this.tty || !this.shown) return;
    this.shown = false;
    process.stderr.write(bytes === null ? '\r\x1b[K' : `\r\x1b[Ksaving ${this.file}: ${mib(bytes)} received\n`);
  }
}

const mib = (n: number) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

// ---- status -------------------------------------------------------------------------

async function status(io: Io, g: Globals, file: string): Promise<number> {
  const { inspectBackup } = await import('../../ops/restore.js');
  const b = await inspectBackup(file);
  const h = b.header;
  if (g.json) {
    jsonOut(io, {
      file,
      format: h.format,
      clusterId: h.clusterId,
      node: h.node,
      createdAt: h.createdAt,
      revision: h.revision,
      applied: h.applied,
      members: h.conf,
      counts: h.counts,
      bytes: b.bytes,
      sha256: b.sha256,
      checksumOk: true,
    });
    return EXIT.OK;
  }
  const rows: [string, string][] = [
    ['file', file],
    ['format', String(h.format)],
    ['cluster id', h.clusterId ?? '(none)'],
    ['taken from', `${h.node} at ${h.createdAt}`],
    ['revision', String(h.revision)],
    ['applied', `index ${h.applied.index}, term ${h.applied.term}`],
    ['members', [...h.conf.voters, ...h.conf.learners.map((l) => `${l} (learner)`)].join(', ')],
    ['services', String(h.counts.services)],
    ['instances', String(h.counts.instances)],
    ['sessions', String(h.counts.sessions)],
    ['records', String(h.counts.pairs)],
    ['size', `${b.bytes} bytes`],
    ['sha256', b.sha256],
    ['checksum', 'ok'],
  ];
  io.out(table(['FIELD', 'VALUE'], rows));
  return EXIT.OK;
}

// ---- restore ------------------------------------------------------------------------

async function restore(
  io: Io,
  g: Globals,
  file: string,
  values: { data?: string; id?: string; peers?: string; 'cluster-id'?: string; 'initial-cluster-token'?: string },
): Promise<number> {
  const { data, id, peers } = values;
  if (data === undefined || id === undefined || peers === undefined)
    throw new UsageError('snapshot restore needs --data, --id and --peers');
  const { parsePeers } = await import('../../server/config.js');
  let members;
  try {
    members = parsePeers(peers);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { restoreMember } = await import('../../ops/restore.js');
  const r = await restoreMember({
    file,
    dataDir: data,
    id,
    peers: members,
    ...(values['cluster-id'] === undefined ? {} : { clusterId: values['cluster-id'] }),
    ...(values['initial-cluster-token'] === undefined ? {} : { token: values['initial-cluster-token'] }),
  });
  const h = r.header;
  if (g.json) {
    jsonOut(io, {
      dataDir: r.dataDir,
      id: r.id,
      clusterId: r.clusterId,
      fromClusterId: r.fromClusterId,
      members: r.members,
      revision: h.revision,
      applied: h.applied,
      counts: h.counts,
      sha256: r.sha256,
    });
    return EXIT.OK;
  }
  io.out(
    `restored ${r.id} into ${r.dataDir}: revision ${h.revision} (index ${h.applied.index}), ${h.counts.instances} instances, ${h.counts.sessions} sessions\n` +
      `new cluster id ${r.clusterId} (the backup came from ${r.fromClusterId === null ? 'a cluster without an id' : `cluster id ${r.fromClusterId}`}); members ${r.members.join(', ')}\n` +
      'every member of this restore must show the same cluster id: restore each with the same FILE, --peers and token\n' +
      `start it with: rollcall server --id ${r.id} --data ${data} --peers ${peers} --cluster-secret ...\n`,
  );
  return EXIT.OK;
}
