/**
 * A rolling upgrade from a real older build (docs/operations.md, "Upgrades"), too slow for
 * npm test (it builds a commit from git history, ~25 s, then runs a cluster for a while):
 *
 *   npm run build && npm run upgrade-test -- [--from REF] [--keep]
 *
 * Builds REF (default 7f6ccb7^: the last build before setCheckHealth and the member-address
 * record; it reports no state-machine version, so it counts as 1) in a git worktree, starts
 * three nodes on it, then under a write and keepalive load replaces them one at a time with
 * this build (SIGTERM, start on the same data directory, wait until caught up). Then: the
 * cluster version is raised to this build's (STATE_MACHINE_VERSION) on every node, no request failed beyond the documented
 * retries (another node, for up to 5 s), the load's session was never expired, every
 * acknowledged write is on every node, and the corruption check finds the replicas identical.
 * Exit code 0 when all hold, 1 otherwise. --keep leaves the worktree and data directories.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { STATE_MACHINE_VERSION } from '../src/registry/index.js';
import { CLI_PATH, LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: { from: { type: 'string', default: '7f6ccb7^' }, keep: { type: 'boolean', default: false } },
});
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');

type Reply = { status: number; body: any };
async function http(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 3000,
): Promise<Reply> {
  const r = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    body: body === undefined ? null : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch {
      // A node restarting: ask again.
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function log(msg: string, extra: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ at: new Date().toISOString(), msg, ...extra })}\n`);
}

function buildOld(ref: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rollcall-old-build-'));
  execFileSync('git', ['-C', root, 'worktree', 'add', '--detach', dir, ref], { stdio: 'ignore' });
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
  const started = Date.now();
  execFileSync(
    process.execPath,
    [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json', '--preserveSymlinks'],
    { cwd: dir, stdio: 'inherit' },
  );
  log('built the old build', { ref, dir, ms: Date.now() - started });
  return dir;
}

async function main(): Promise<number> {
  const oldDir = buildOld(values.from!);
  const oldCli = path.join(oldDir, 'dist/src/cli/main.js');
  if (!existsSync(oldCli)) throw new Error(`${oldCli} was not built`);
  const builds = new Map<string, string>([
    ['n1', oldCli],
    ['n2', oldCli],
    ['n3', oldCli],
  ]);
  const cluster = await LocalCluster.start({ size: 3, logLevel: 'warn', cliPath: (id) => builds.get(id) ?? CLI_PATH });
  const failures: string[] = [];
  let stopped = false;
  try {
    const up = () => cluster.nodes.filter((n) => n.proc !== null).map((n) => n.url);
    await waitFor('a leader', async () => (await http('GET', `${cluster.nodes[0]!.url}/v1/cluster`)).body.leader);

    /** One request, retried on the other running nodes for up to 5 s (what docs/client.md asks of a client). */
    let turn = 0;
    const withRetry = async (
      what: string,
      call: (url: string) => Promise<Reply>,
      ok: (r: Reply) => boolean,
    ): Promise<Reply | null> => {
      const deadline = Date.now() + 5000;
      let last = 'no node up';
      while (Date.now() < deadline) {
        const urls = up();
        const url = urls[turn++ % Math.max(1, urls.length)];
        if (url !== undefined) {
          try {
            const r = await call(url);
            if (ok(r)) return r;
            last = `${r.status} ${JSON.stringify(r.body)}`;
            if (r.status === 404) break; // not retryable: a false expiry or a lost write
          } catch (err) {
            last = (err as Error).message;
          }
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      failures.push(`${what}: ${last}`);
      return null;
    };

    const session = `upgrade-${Date.now()}`;
    await withRetry(
      'open the session',
      (u) => http('POST', `${u}/v1/sessions`, { ttlMs: 10_000 }, { 'x-rollcall-session-id': session }),
      (r) => r.status === 201,
    );
    const acked: string[] = [];
    let keepalives = 0;
    const keepaliveLoop = (async () => {
      while (!stopped) {
        if (
          await withRetry(
            'keepalive',
            (u) => http('PUT', `${u}/v1/sessions/${session}/keepalive`),
            (r) => r.status === 200,
          )
        )
          keepalives++;
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
    const writeLoop = (async () => {
      for (let i = 0; !stopped; i++) {
        const id = `w-${i}`;
        const client = { 'x-rollcall-client-id': 'upgrade-test', 'x-rollcall-seq': String(i + 1) };
        const r = await withRetry(
          `write ${id}`,
          (u) =>
            http(
              'PUT',
              `${u}/v1/namespaces/prod/services/load/instances/${id}`,
              { address: '10.0.0.1', port: 1000 + (i % 1000), sessionId: session },
              client,
            ),
          (x) => x.status === 200,
        );
        if (r) acked.push(id);
        await new Promise((res) => setTimeout(res, 50));
      }
    })();

    await new Promise((r) => setTimeout(r, 3000));
    for (const n of cluster.nodes) {
      log('upgrading', { node: n.id });
      await cluster.stop(n.id);
      builds.set(n.id, CLI_PATH);
      await cluster.restart(n.id);
      await waitFor(`${n.id} caught up`, async () => {
        const st = (await http('GET', `${n.url}/v1/cluster`)).body;
        const self = st.members.find((m: { id: string }) => m.id === n.id);
        return st.leader !== null && self?.lag === 0;
      });
      await new Promise((r) => setTimeout(r, 2000));
    }
    const versions = await waitFor(`cluster version ${STATE_MACHINE_VERSION} on every node`, async () => {
      const vs = await Promise.all(
        cluster.nodes.map(async (n) => (await http('GET', `${n.url}/v1/cluster`)).body.clusterVersion as number),
      );
      return vs.every((v) => v === STATE_MACHINE_VERSION) ? vs : undefined;
    });
    log('raised', { versions });
    await new Promise((r) => setTimeout(r, 3000));
    stopped = true;
    await Promise.all([keepaliveLoop, writeLoop]);

    // Every acknowledged write on every node, the session alive, replicas identical.
    for (const n of cluster.nodes) {
      const s = await http('PUT', `${n.url}/v1/sessions/${session}/keepalive`);
      if (s.status !== 200) failures.push(`${n.id}: the session is gone (${s.status}): a false expiry`);
      const list = await http('GET', `${n.url}/v1/namespaces/prod/services/load/instances`);
      const have = new Set((list.body.instances as { id: string }[]).map((i) => i.id));
      const missing = acked.filter((id) => !have.has(id));
      if (missing.length > 0)
        failures.push(`${n.id}: ${missing.length} acknowledged writes missing (${missing.slice(0, 5).join(', ')})`);
    }
    const check = await http('POST', `${cluster.nodes[0]!.url}/v1/cluster/check`, {}, {}, 30_000);
    if (check.status !== 200 || check.body.corrupt !== false)
      failures.push(`corruption check: ${check.status} ${JSON.stringify(check.body)}`);
    log('done', { writes: acked.length, keepalives, failures });
    return failures.length === 0 ? 0 : 1;
  } finally {
    stopped = true;
    await cluster.close();
    if (!values.keep) execFileSync('git', ['-C', root, 'worktree', 'remove', '--force', oldDir], { stdio: 'ignore' });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`upgrade-test: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
