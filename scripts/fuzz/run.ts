/**
 * The HTTP fuzzer's run: one real node (a `rollcall server` process with bearer tokens),
 * requests from requests.ts sent one at a time on fresh connections, and after each one
 * the checks of issue 22:
 *
 * - an answer comes (no hang, no connection closed without one, no crash: the process is
 *   alive and /healthz answers);
 * - no 5xx, except the documented waits (504 TIMEOUT on a `minRevision` the node has not
 *   reached), 503 OVERLOADED (load shedding), and NO_LEADER / TRANSFER_IN_PROGRESS /
 *   PROPOSAL_DROPPED within 15 s after the fuzzer itself changed the membership or moved
 *   leadership (on a one-node cluster this never happens; it is not counted as a failure if
 *   it does);
 * - every 4xx and 5xx (HEAD aside) is `{"error": {"code", "message"}}` with a code of the
 *   node's catalogue (its /openapi.json) and that code's status;
 * - a refused request, and any GET or HEAD, leaves the registry revision where it was
 *   (nothing else changes it: see requests.ts), and a refused membership request leaves
 *   the members as they were;
 * - the node logs no "unexpected error serving a request" and no error answer rewritten
 *   into the catalogue (both mean a bug).
 *
 * Generation is seeded (fast-check): the same seed sends the same requests, so a run
 * replays with `node dist/scripts/fuzz-http.js --requests N --seed S`.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { LocalCluster } from '../local-cluster.js';
import { sendRaw } from './raw-http.js';
import { type FuzzRequest, NAMESPACES, requestArbitrary, routeTable, type Tokens } from './requests.js';

export interface FuzzOptions {
  readonly seed: number;
  readonly requests: number;
  /** Longest wait for one answer (default 10 s). */
  readonly timeoutMs?: number;
  /** Size of the huge bodies (default 2 MiB). */
  readonly hugeBytes?: number;
  /** Bearer-token auth on the node (default true). */
  readonly auth?: boolean;
  /**
   * Also add members that do not exist (default false). Each one added is removed at once,
   * and the node must still lead afterwards: a learner that never connected must not cost a
   * one-node cluster its quorum.
   */
  readonly membership?: boolean;
  /** Stop after this many failures (default 20). */
  readonly maxFailures?: number;
  /** Stops the run early (the report covers what was sent). */
  readonly signal?: AbortSignal;
  /** Progress lines, about every `progressEvery` requests (default 1000). */
  readonly onProgress?: (line: string) => void;
  readonly progressEvery?: number;
}

export interface FuzzFailure {
  readonly index: number;
  readonly request: string;
  readonly problem: string;
  /** The request line and headers as sent. */
  readonly sent?: string;
  readonly answer?: string;
}

export interface FuzzReport {
  readonly seed: number;
  readonly requests: number;
  readonly durationMs: number;
  readonly perSecond: number;
  readonly statuses: Record<string, number>;
  readonly codes: Record<string, number>;
  /** 5xx answers that were allowed (documented waits, shedding), by code. */
  readonly allowed5xx: Record<string, number>;
  readonly stateChecks: number;
  readonly crashed: boolean;
  readonly failures: readonly FuzzFailure[];
  /** Error-level lines the node logged (at most 20). */
  readonly nodeErrors: readonly string[];
  /** The requests before the first failure, with what they got (oldest first). */
  readonly trail: readonly string[];
  readonly replay: string;
}

/** Health checks that can never change an instance's health: no async writes during a run. */
const QUIET_HEALTH_POLICY = {
  defaults: {
    health: {
      successRatio: { subhealthy: null, down: null },
      p99Ms: { subhealthy: null },
      cpu: { subhealthy: null },
      memory: { subhealthy: null },
      disk: { subhealthy: null },
    },
  },
};

/** Thrown by the property to end the run (stopped, crashed, or enough failures). */
class StopRun extends Error {}

const BUG_LOGS = [/unexpected error serving a request/, /not in the catalogue shape/];
const CHURN = new Set(['NO_LEADER', 'TRANSFER_IN_PROGRESS', 'PROPOSAL_DROPPED']);

interface Catalogue {
  readonly [code: string]: { readonly status: number } | undefined;
}

export function replayCommand(requests: number, seed: number): string {
  return `node dist/scripts/fuzz-http.js --requests ${requests} --seed ${seed}`;
}

export async function fuzzHttp(options: FuzzOptions): Promise<FuzzReport> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const maxFailures = options.maxFailures ?? 20;
  const progressEvery = options.progressEvery ?? 1000;
  const useAuth = options.auth ?? true;
  const dir = await mkdtemp(path.join(tmpdir(), 'rollcall-fuzz-'));
  const tokens: Tokens = {
    admin: 'fuzz-admin-token-0123456789',
    read: 'fuzz-read-token-01234567890',
    registerFz: 'fuzz-register-fz-token-0123',
    register: 'fuzz-register-token-0123456',
  };
  const nodeErrors: string[] = [];
  const bugLines: string[] = [];
  let cluster: LocalCluster | null = null;
  try {
    const extraArgs: string[] = [];
    if (useAuth) {
      const file = path.join(dir, 'tokens.json');
      await writeFile(
        file,
        JSON.stringify([
          { token: tokens.admin, role: 'admin', name: 'fuzz-admin' },
          { token: tokens.read, role: 'read', name: 'fuzz-read' },
          { token: tokens.registerFz, role: 'register', namespaces: ['fz'], name: 'fuzz-register-fz' },
          { token: tokens.register, role: 'register', name: 'fuzz-register' },
        ]),
      );
      extraArgs.push('--token-file', file);
    }
    cluster = await LocalCluster.start({
      size: 1,
      dataRoot: path.join(dir, 'data'),
      extraArgs,
      onLog: (_id, line) => {
        let level = 0;
        let msg = line;
        try {
          const o = JSON.parse(line) as { level?: number; msg?: string };
          level = o.level ?? 0;
          msg = o.msg ?? line;
        } catch {
          level = /error|exception|fatal/i.test(line) ? 50 : 0;
        }
        if (level >= 50) {
          if (nodeErrors.length < 20) nodeErrors.push(line.slice(0, 500));
          if (level >= 60 || BUG_LOGS.some((re) => re.test(msg))) bugLines.push(line.slice(0, 500));
        }
      },
    });
    const node = cluster.nodes[0]!;
    const admin: Record<string, string> = useAuth ? { authorization: `Bearer ${tokens.admin}` } : {};
    const call = async (
      method: string,
      p: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<Response> =>
      fetch(`${node.url}${p}`, {
        method,
        headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    await waitReady(call);
    await expectOk(await call('PUT', '/v1/health/policy', QUIET_HEALTH_POLICY), 'setting the quiet health policy');
    // A little state to aim at: sessions that outlive the run, an instance on each.
    for (const [i, s] of ['s1', 's2'].entries()) {
      await expectOk(
        await call('POST', '/v1/sessions', { ttlMs: 8 * 3_600_000 }, { 'x-rollcall-session-id': s }),
        `opening ${s}`,
      );
      await expectOk(
        await call('PUT', `/v1/namespaces/${NAMESPACES[i]}/services/web/instances/i${i + 1}`, {
          address: '10.0.0.1',
          port: 80,
          sessionId: s,
        }),
        'registering',
      );
    }
    const doc = (await (await call('GET', '/openapi.json')).json()) as Parameters<typeof routeTable>[0] & {
      'x-error-catalogue': Catalogue;
    };
    const routes = routeTable(doc);
    const generator = {
      selfPeerAddress: `127.0.0.1:${node.peerPort}`,
      membership: options.membership ?? false,
      ...(options.hugeBytes === undefined ? {} : { hugeBytes: options.hugeBytes }),
    };
    const catalogue = doc['x-error-catalogue'];

    const revision = async (): Promise<number | null> => {
      try {
        const res = await fetch(`${node.url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
        await res.arrayBuffer();
        return Number(res.headers.get('x-rollcall-revision'));
      } catch {
        return null;
      }
    };
    /** The member ids, or what kept us from reading them (a shed or failed request). */
    const members = async (): Promise<string> => {
      try {
        const res = await call('GET', '/v1/cluster');
        const body = (await res.json()) as { members?: { id: string }[] };
        return body.members ? JSON.stringify(body.members.map((m) => m.id).sort()) : `unknown (${res.status})`;
      } catch (err) {
        return `unknown (${(err as Error).message})`;
      }
    };

    const statuses: Record<string, number> = {};
    const codes: Record<string, number> = {};
    const allowed5xx: Record<string, number> = {};
    const failures: FuzzFailure[] = [];
    let crashed = false;
    // The node is up but the run cannot go on (it lost its leadership for good).
    let stopped = false;
    let stateChecks = 0;
    let sent = 0;
    let lastChurn = -Infinity;
    let before = await revision();
    const started = performance.now();
    // The last requests and what they got: what led to the first failure.
    const recent: string[] = [];
    let trail: string[] = [];
    const fail = (r: FuzzRequest, problem: string, answer?: string): void => {
      if (failures.length === 0) trail = [...recent];
      failures.push({
        index: sent,
        request: r.summary,
        problem,
        sent: r.head,
        ...(answer === undefined ? {} : { answer: answer.slice(0, 400) }),
      });
    };

    const step = async (r: FuzzRequest): Promise<void> => {
      sent++;
      // Housekeeping, not fuzzed: access rules the fuzzer stored would refuse most registrations.
      if (sent % 500 === 0) {
        await call('PUT', '/v1/access-rules', {}).then((res) => res.arrayBuffer());
        before = await revision();
      }
      const membership = r.route?.template.startsWith('/v1/cluster/members') === true;
      const membersBefore = membership ? await members() : null;
      const outcome = await sendRaw(
        node.httpPort,
        { chunks: r.chunks, halfClose: r.halfClose, head: r.isHead },
        timeoutMs,
      );
      let after = await revision();
      if (outcome.kind === 'refused' || after === null || node.proc === null) {
        crashed = node.proc === null || outcome.kind === 'refused';
        fail(r, crashed ? 'the node is gone (crash)' : '/healthz does not answer after this request');
        return;
      }
      let refused = true;
      if (outcome.kind === 'timeout') fail(r, `no answer within ${timeoutMs} ms`, outcome.partial);
      else if (outcome.kind === 'closed')
        fail(r, `connection closed without an answer (${outcome.error ?? 'EOF'})`, outcome.partial);
      else {
        const { status, body } = outcome.answer;
        statuses[status] = (statuses[status] ?? 0) + 1;
        refused = status >= 400 || status === 0;
        const text = body.toString('utf8');
        if (status === 0) fail(r, 'the answer is not HTTP', text);
        if (status >= 400 && !r.isHead) {
          const err = catalogueError(text, status, catalogue);
          if (typeof err === 'string') fail(r, err, text);
          else {
            codes[err.code] = (codes[err.code] ?? 0) + 1;
            if (status >= 500) {
              const allowed =
                (err.code === 'TIMEOUT' && err.field === 'minRevision') ||
                err.code === 'OVERLOADED' ||
                (CHURN.has(err.code) && performance.now() - lastChurn < 15_000);
              if (allowed) allowed5xx[err.code] = (allowed5xx[err.code] ?? 0) + 1;
              else fail(r, `${status} ${err.code}`, text);
            }
          }
        } else if (status >= 500) fail(r, `${status} to a HEAD request`);
        const changesLeadership =
          r.route !== null && /^\/v1\/cluster\/(members|leader)/.test(r.route.template) && r.method !== 'GET';
        if (changesLeadership && (status < 300 || status === 504)) lastChurn = performance.now();
        if (status === 201 && r.route?.template === '/v1/cluster/members') {
          // A member that does not exist, a learner that never catches up: after a few
          // heartbeats the node must still lead; then it is removed again.
          const id = (JSON.parse(text) as { id: string }).id;
          await new Promise((resolve) => setTimeout(resolve, 1000));
          const leads = await waitReady(call, 3000).then(
            () => true,
            () => false,
          );
          const removed = await call('DELETE', `/v1/cluster/members/${encodeURIComponent(id)}`).then(
            async (res) => `${res.status} ${await res.text()}`,
            (e: Error) => e.message,
          );
          if (!leads) {
            fail(
              r,
              `after adding member ${id} (never started) the node lost its leadership; removing it answered ${removed}`,
              text,
            );
            stopped = true;
            return;
          }
          after = await revision();
        }
      }
      if (refused || r.method === 'GET' || r.method === 'HEAD') {
        stateChecks++;
        const answered =
          outcome.kind === 'answer' ? `${outcome.answer.status} ${outcome.answer.body.toString('utf8')}` : outcome.kind;
        if (before !== null && after !== before)
          fail(
            r,
            `the revision moved from ${before} to ${after} on a ${refused ? 'refused request' : 'read'}`,
            answered,
          );
        const membersAfter = membersBefore === null ? null : await members();
        const known =
          membersBefore !== null &&
          membersAfter !== null &&
          !membersBefore.startsWith('unknown') &&
          !membersAfter.startsWith('unknown');
        if (refused && known && membersAfter !== membersBefore)
          fail(r, `a refused request changed the members from ${membersBefore} to ${membersAfter}`);
      }
      before = after;
      recent.push(
        `#${sent} ${r.summary} -> ${outcome.kind === 'answer' ? `${outcome.answer.status} ${outcome.answer.body.subarray(0, 120).toString('utf8')}` : outcome.kind}`,
      );
      if (recent.length > 40) recent.shift();
      if (sent % progressEvery === 0)
        options.onProgress?.(progress(sent, options.requests, started, statuses, failures.length));
    };

    // fc.check, not fc.assert: the property fails only to end the run early (StopRun).
    const details = await fc.check(
      fc.asyncProperty(requestArbitrary(routes, { ...generator, tokens: useAuth ? tokens : null }), async (r) => {
        if (crashed || stopped || failures.length >= maxFailures || options.signal?.aborted) throw new StopRun();
        try {
          await step(r);
        } catch (err) {
          // The fuzzer's own bookkeeping failed (a housekeeping call refused, say): say so, go on.
          fail(r, `the fuzzer failed on this request: ${(err as Error).message}`);
        }
      }),
      { seed: options.seed, numRuns: options.requests, endOnFailure: true },
    );
    // A failure of the harness itself (not a finding about the node) is thrown as it is.
    if (details.failed && !(details.errorInstance instanceof StopRun))
      throw details.errorInstance ?? new Error('the fuzz run failed');

    // The end: still up, still answering, nothing in the log that means a bug.
    if (!crashed && (node.proc === null || (await revision()) === null)) crashed = true;
    if (crashed && !failures.some((f) => f.problem.includes('crash')))
      failures.push({ index: sent, request: '(after the run)', problem: 'the node is gone (crash)' });
    for (const line of bugLines.slice(0, 5))
      failures.push({ index: sent, request: '(node log)', problem: 'the node logged a bug', answer: line });
    const durationMs = Math.round(performance.now() - started);
    return {
      seed: options.seed,
      requests: sent,
      durationMs,
      perSecond: Math.round((sent / Math.max(1, durationMs)) * 1000),
      statuses,
      codes,
      allowed5xx,
      stateChecks,
      crashed,
      failures,
      nodeErrors,
      trail,
      replay: replayCommand(options.requests, options.seed),
    };
  } finally {
    await cluster?.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** The error of a catalogue-shaped body, or what is wrong with it. */
function catalogueError(text: string, status: number, catalogue: Catalogue): { code: string; field?: string } | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return `a ${status} whose body is not JSON`;
  }
  const err = (body as { error?: { code?: unknown; message?: unknown; field?: unknown } } | null)?.error;
  if (typeof err !== 'object' || err === null) return `a ${status} without {"error": {...}}`;
  if (typeof err.code !== 'string' || catalogue[err.code] === undefined)
    return `a ${status} with code ${JSON.stringify(err.code)}, not in the catalogue`;
  if (catalogue[err.code]!.status !== status)
    return `code ${err.code} is ${catalogue[err.code]!.status} in the catalogue, answered ${status}`;
  if (typeof err.message !== 'string' || err.message.length === 0) return `a ${status} ${err.code} without a message`;
  return typeof err.field === 'string' ? { code: err.code, field: err.field } : { code: err.code };
}

function progress(
  sent: number,
  total: number,
  started: number,
  statuses: Record<string, number>,
  failures: number,
): string {
  const s = (performance.now() - started) / 1000;
  const fives = Object.entries(statuses)
    .filter(([k]) => Number(k) >= 500)
    .reduce((a, [, v]) => a + v, 0);
  return `fuzz: ${sent}/${total} requests, ${Math.round(sent / s)}/s, 5xx ${fives}, failures ${failures}`;
}

async function waitReady(call: (m: string, p: string) => Promise<Response>, withinMs = 15_000): Promise<void> {
  for (let i = 0; i < withinMs / 100; i++) {
    try {
      const res = await call('GET', '/readyz');
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the fuzz node did not become ready within ${withinMs} ms`);
}

async function expectOk(res: Response, what: string): Promise<void> {
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${text.slice(0, 300)}`);
}
