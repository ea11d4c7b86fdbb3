/**
 * The corruption check end to end, with real processes (issue 20, "Corruption checks"):
 * a 3-node cluster whose leader checks every second; one follower's state machine gets a
 * record behind the log's back (the test-only `writeStateKey` fault); the leader's
 * periodic check names it, the critical `node-corrupt` alert fires, that node refuses
 * reads with 503 CORRUPT while writes through it go on (its Consul API answers 500 and its
 * DNS SERVFAIL), the others serve as before, and
 * `rollcall check` reports the same with exit code 11. `rollcall check --disarm` clears the
 * stopped follower's mark: the next check marks it again while its state still differs, and
 * after a repair in place every member agrees and the alert resolves. The same on the running
 * cluster: POST /v1/cluster/check/disarm through another node, and `rollcall check --disarm
 * --member`, clear the mark of the member that holds it (it serves reads again at once), the
 * next check marks it again while its state differs, and after a repair it stays clear.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DecodedPacket } from 'dns-packet';
import { Level } from 'level';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { queryUdp } from './helpers/dns.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

let c: LocalCluster;
let leader = '';
/** The follower the second test corrupts; the third disarms it. */
let corruptId = '';
/** Each node's Consul API and DNS ports, by index (n1 is 0). */
let consulPorts: number[] = [];
let dnsPorts: number[] = [];
/** dns-packet's types leave the response code out of a decoded packet. */
const rcodeOf = (p: DecodedPacket): string => (p as DecodedPacket & { rcode: string }).rcode;
const portOf = (ports: readonly number[], id: string): number => ports[Number(id.slice(1)) - 1]!;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function cli(args: readonly string[]): Promise<Run> {
  const proc = spawn(process.execPath, [CLI_PATH, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stdout, stderr })));
}

beforeAll(async () => {
  consulPorts = [await freePort(), await freePort(), await freePort()];
  dnsPorts = [await freePort(), await freePort(), await freePort()];
  c = await LocalCluster.start({
    size: 3,
    logLevel: 'error',
    env: { ROLLCALL_TEST_FAULTS: '1' },
    nodeEnv: (id) => ({
      ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${portOf(consulPorts, id)}`,
      ROLLCALL_DNS_LISTEN: `127.0.0.1:${portOf(dnsPorts, id)}`,
    }),
    extraArgs: ['--corruption-check-interval', '1'],
    // Peer links through proxies: the online disarm's test cuts the leader's link to a member.
    proxied: true,
  });
  leader = await waitForLeader(c.nodes.map((n) => n.url));
  for (let i = 0; i < 30; i++) {
    const r = await register(c.node(leader).url, 'prod', 'orders', `o-${i}`, { address: '10.0.0.1', port: 1000 + i });
    expect(r.status).toBeLessThan(300);
  }
}, 60_000);

afterAll(async () => {
  await c?.close();
});

describe('corruption check', () => {
  it('finds every member with the same hash at the same index', async () => {
    const r = await cli(['check', '--json', '--endpoints', c.nodes.map((n) => n.url).join(',')]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      corrupt: boolean;
      members: { id: string; verdict: string; hash: string; index: number }[];
    };
    expect(report.corrupt).toBe(false);
    expect(report.members.map((m) => [m.id, m.verdict])).toEqual(c.nodes.map((n) => [n.id, 'ok']));
    expect(new Set(report.members.map((m) => m.hash)).size).toBe(1);
    expect(new Set(report.members.map((m) => m.index)).size).toBe(1);
  });

  it('names a follower whose state changed behind the log, fires the alert, and that follower refuses reads', async () => {
    const follower = c.nodes.find((n) => n.id !== leader)!;
    const other = c.nodes.find((n) => n.id !== leader && n.id !== follower.id)!;
    corruptId = follower.id;
    // A meta key: the registry's load skips those, so only the hash can tell (a key the load
    // refuses would stop the node at its next start instead).
    const fault = await http('PUT', `${follower.url}/v1/test/faults`, {
      writeStateKey: { key: '\u0000meta/bogus', value: 'not written by apply' },
    });
    expect(fault.status, JSON.stringify(fault.body)).toBe(200);

    // The leader's periodic check (every second) finds it: the alert names the follower.
    const alert = await waitFor('the node-corrupt alert on the leader', async () => {
      const a = await http('GET', `${c.node(leader).url}/v1/alerts`);
      return (a.body.active as { id: string; kind: string; severity: string; subject: string }[]).find(
        (x) => x.kind === 'node-corrupt',
      );
    });
    expect(alert).toMatchObject({ id: `node-corrupt:${follower.id}`, severity: 'critical', subject: follower.id });

    // The follower was told: it refuses reads, linearizable and serializable alike.
    const refused = await waitFor('the follower to refuse reads', async () => {
      const r = await list(follower.url, 'prod', 'orders');
      return r.status === 503 ? r : undefined;
    });
    expect(refused.body.error.code).toBe('CORRUPT');
    expect((await list(follower.url, 'prod', 'orders', '?consistency=serializable')).status).toBe(503);
    // The Consul API and DNS on it refuse too, Consul-shaped; on the others they answer.
    const consul = await fetch(`http://127.0.0.1:${portOf(consulPorts, follower.id)}/v1/health/service/orders?ns=prod`);
    expect([consul.status, await consul.text()]).toEqual([
      500,
      "This member's data failed the corruption check; ask another member",
    ]);
    expect((await fetch(`http://127.0.0.1:${portOf(consulPorts, follower.id)}/v1/status/leader`)).status).toBe(200);
    expect(
      (await fetch(`http://127.0.0.1:${portOf(consulPorts, other.id)}/v1/health/service/orders?ns=prod`)).status,
    ).toBe(200);
    const name = 'orders.service.prod.ns.consul';
    expect(rcodeOf(await queryUdp(portOf(dnsPorts, follower.id), name, 'A'))).toBe('SERVFAIL');
    expect(rcodeOf(await queryUdp(portOf(dnsPorts, other.id), name, 'A'))).toBe('NOERROR');
    // It still reports its status (not ready: load balancers take it out), and writes
    // through it go to the leader as usual.
    expect((await http('GET', `${follower.url}/v1/cluster`)).status).toBe(200);
    const ready = await http('GET', `${follower.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body.reasons.join(' ')).toContain('corruption check');
    expect((await http('GET', `${c.node(leader).url}/readyz`)).status).toBe(200);
    const w = await register(follower.url, 'prod', 'orders', 'via-corrupt', { address: '10.0.0.2', port: 1 });
    expect(w.status, JSON.stringify(w.body)).toBeLessThan(300);
    // The others serve reads, the new write included.
    for (const n of [c.node(leader), other]) {
      const r = await list(n.url, 'prod', 'orders');
      expect(r.status, n.id).toBe(200);
      expect((r.body.instances as unknown[]).length).toBe(31);
    }

    // On demand: rollcall check names it, with exit code 11.
    const r = await cli(['check', '--json', '--endpoints', c.node(leader).url]);
    expect(r.code, r.stderr).toBe(11);
    const report = JSON.parse(r.stdout) as {
      corrupt: boolean;
      members: { id: string; verdict: string; hash: string }[];
    };
    expect(report.corrupt).toBe(true);
    expect(report.members.map((m) => [m.id, m.verdict])).toEqual(
      c.nodes.map((n) => [n.id, n.id === follower.id ? 'corrupt' : 'ok']),
    );
    const text = await cli(['check', '--endpoints', c.node(leader).url]);
    expect(text.code).toBe(11);
    expect(text.stdout).toMatch(new RegExp(`${follower.id}\\s.*CORRUPT`));

    // A restart is no repair: the mark is stored, and the follower refuses reads from its
    // first answer on (before the leader's next check could tell it again).
    await c.stop(follower.id);
    await c.restart(follower.id);
    const first = await list(follower.url, 'prod', 'orders', '?consistency=serializable');
    expect(first.status).toBe(503);
    expect(first.body.error.code).toBe('CORRUPT');
  });

  it("check --disarm clears a stopped member's mark: marked again while its state differs, not after a repair", async () => {
    const follower = c.node(corruptId);
    const all = c.nodes.map((n) => n.url).join(',');
    const refusesReads = async () => {
      const r = await list(follower.url, 'prod', 'orders', '?consistency=serializable');
      return r.status === 503 && r.body.error.code === 'CORRUPT';
    };

    // While the node runs its database is locked: refused, and the usage is checked.
    const busy = await cli(['check', '--disarm', '--data', follower.dataDir]);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toBe(
      `rollcall: ${follower.dataDir} is in use: stop the node before disarming its corruption mark, or disarm it on the running cluster (rollcall check --disarm --member ID)\n`,
    );
    expect((await cli(['check', '--data', follower.dataDir])).code).toBe(2);
    expect((await cli(['check', '--disarm', '--member', follower.id, '--data', follower.dataDir])).code).toBe(2);

    // Disarmed with the state still wrong: the node serves reads again only until the
    // leader's next check (every second) marks it again. A disarm hides nothing for long.
    await c.stop(follower.id);
    const cleared = await cli(['check', '--disarm', '--data', follower.dataDir, '--json']);
    expect(cleared.code, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout)).toMatchObject({
      dataDir: follower.dataDir,
      disarmed: true,
      mark: { by: expect.any(String), detail: expect.stringContaining('hash') },
    });
    await c.restart(follower.id);
    await waitFor('the next check to mark the follower corrupt again', refusesReads);

    // Repaired in place (the record written behind the log's back taken out again), then
    // disarmed: it serves reads, and every member agrees.
    await c.stop(follower.id);
    const raw = new Level<Uint8Array, Uint8Array>(follower.dataDir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw
      .sublevel<Uint8Array, Uint8Array>('sm', { keyEncoding: 'view', valueEncoding: 'view' })
      .del(new TextEncoder().encode('\u0000meta/bogus'));
    await raw.close();
    const text = await cli(['check', '--disarm', '--data', follower.dataDir]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^cleared the corruption mark of ${follower.dataDir} \\(set by n\\d at `));
    const none = await cli(['check', '--disarm', '--data', follower.dataDir]);
    expect(none.stdout).toBe(`${follower.dataDir} has no corruption mark: nothing to clear\n`);
    await c.restart(follower.id);
    await waitFor(
      'a check that finds every member ok',
      async () => (await cli(['check', '--endpoints', all])).code === 0,
    );
    expect(await refusesReads()).toBe(false);
    const served = await list(follower.url, 'prod', 'orders', '?consistency=serializable');
    expect(served.status).toBe(200);
    expect((served.body.instances as unknown[]).length).toBe(31);
    await waitFor('the node-corrupt alert to resolve', async () => {
      const a = await http('GET', `${c.node(leader).url}/v1/alerts`);
      return !(a.body.active as { kind: string }[]).some((x) => x.kind === 'node-corrupt');
    });
  }, 60_000);

  it('disarms a running member through any node: marked again while its state differs, clear after a repair', async () => {
    const follower = c.node(corruptId);
    const other = c.nodes.find((n) => n.id !== leader && n.id !== follower.id)!;
    const served = async () => (await list(follower.url, 'prod', 'orders', '?consistency=serializable')).status;
    const disarm = (via: string, body?: unknown) => http('POST', `${via}/v1/cluster/check/disarm`, body);
    /** Holds off the leader's periodic check on the follower (no hash asked, no verdict told), or lets it run again. */
    const holdChecks = async (hold: boolean) => {
      const f = await http('PUT', `${follower.url}/v1/test/faults`, {
        dropFrom: hold ? [leader] : [],
        kinds: hold ? ['hashRequest', 'corrupt'] : [],
      });
      expect(f.status, JSON.stringify(f.body)).toBe(200);
    };
    // Clear from the previous test. Corrupted again through the test-only hook, the
    // leader's periodic check (every second) marks it.
    expect(await served()).toBe(200);
    const fault = await http('PUT', `${follower.url}/v1/test/faults`, {
      writeStateKey: { key: '\u0000meta/bogus-online', value: 'not written by apply' },
    });
    expect(fault.status, JSON.stringify(fault.body)).toBe(200);
    await waitFor('the periodic check to mark the follower', async () => (await served()) === 503);

    // Bad requests are refused in the catalogue's shape; an unknown member is NOT_MEMBER.
    const unknown = await disarm(other.url, { member: 'n9' });
    expect([unknown.status, unknown.body.error.code, unknown.body.error.field]).toEqual([400, 'NOT_MEMBER', 'member']);
    const bad = await disarm(other.url, { member: 7 });
    expect([bad.status, bad.body.error.code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(await served()).toBe(503);

    // The leader's checks held off the follower (its reports then leave it `unreachable`,
    // not corrupt), the other follower runs a check on demand: it names the follower, and
    // the alert shows on it. Only the leader checks periodically, so on the other follower
    // only a check that finds every member ok, or a disarm, can resolve it.
    await holdChecks(true);
    const alertsOn = async (url: string) =>
      ((await http('GET', `${url}/v1/alerts`)).body.active as { id: string }[]).map((a) => a.id);
    const alertId = `node-corrupt:${follower.id}`;
    /** Whether `from`'s peer link to `to` is up, as `from` reports it. */
    const linked = async (from: string, to: string) =>
      ((await http('GET', `${from}/v1/cluster`)).body.members as { id: string; connected: boolean }[]).some(
        (m) => m.id === to && m.connected,
      );
    // The follower restarted at the end of the previous test: the check asks it over the other
    // follower's own link, which may still be on its way back.
    await waitFor("the other follower's link to the follower", () => linked(other.url, follower.id));
    const checkOnOther = async () => {
      const checked = await http('POST', `${other.url}/v1/cluster/check`);
      expect(checked.status, JSON.stringify(checked.body)).toBe(200);
      expect(checked.body.corrupt, JSON.stringify(checked.body)).toBe(true);
      await waitFor('the alert on the other follower', async () => (await alertsOn(other.url)).includes(alertId));
    };
    await checkOnOther();

    // Disarmed through that node (the mark is the follower's own: the request travels to it,
    // on the same stream as that check's verdict, so after it), with its state still wrong:
    // the alert there is gone by the time the answer comes.
    const viaRoute = await disarm(other.url, { member: follower.id });
    expect(viaRoute.status, JSON.stringify(viaRoute.body)).toBe(200);
    expect(viaRoute.body).toMatchObject({
      by: other.id,
      members: [
        {
          id: follower.id,
          disarmed: true,
          mark: { by: leader, detail: expect.stringContaining('hash') },
          error: null,
        },
      ],
    });
    expect(await alertsOn(other.url)).not.toContain(alertId);
    expect(await served()).toBe(200);
    expect((await http('GET', `${follower.url}/readyz`)).status).toBe(200);

    // Checked again through the other follower (which tells the follower: it is marked),
    // then disarmed through the leader: the member clears its mark before it answers (its
    // own alert goes with it), and the other follower, told by the leader, drops the verdict
    // that raised its alert, without a new check.
    await checkOnOther();
    await waitFor("the other follower's verdict to mark the follower", async () => (await served()) === 503);
    expect(await alertsOn(follower.url)).toContain(alertId);
    // The page follows the alerts stream: it must see the alert resolved.
    const stream = new AbortController();
    const events = await fetch(`${other.url}/v1/alerts/stream`, { signal: stream.signal });
    const reader = events.body!.getReader();
    let streamed = '';
    const resolvedOnStream = (async () => {
      const resolved = new RegExp(`"type":"resolved"[^\\n]*"id":"${alertId}"`);
      while (!resolved.test(streamed)) {
        const chunk = await reader.read();
        if (chunk.done) return false;
        streamed += new TextDecoder().decode(chunk.value);
      }
      return true;
    })();
    const viaLeader = await disarm(c.node(leader).url, { member: follower.id });
    expect(viaLeader.status, JSON.stringify(viaLeader.body)).toBe(200);
    expect(viaLeader.body.members).toMatchObject([
      { id: follower.id, disarmed: true, mark: { by: other.id }, error: null },
    ]);
    expect(await served()).toBe(200);
    expect(await alertsOn(follower.url)).not.toContain(alertId);
    await waitFor(
      'the alert on the other follower to resolve after the disarm',
      async () => !(await alertsOn(other.url)).includes(alertId),
      3000,
    );
    expect(await resolvedOnStream, streamed).toBe(true);
    stream.abort();
    await reader.cancel().catch(() => undefined);
    // A disarm hides nothing: the next periodic check marks it again while the state differs.
    await holdChecks(false);
    await waitFor('the next check to mark the follower again', async () => (await served()) === 503);

    // Repaired in place (stopped, the stray record deleted, started: the stored mark still
    // refuses reads), then disarmed with the CLI through the leader: it serves reads, and
    // the periodic checks leave it so.
    await c.stop(follower.id);
    const raw = new Level<Uint8Array, Uint8Array>(follower.dataDir, { keyEncoding: 'view', valueEncoding: 'view' });
    await raw
      .sublevel<Uint8Array, Uint8Array>('sm', { keyEncoding: 'view', valueEncoding: 'view' })
      .del(new TextEncoder().encode('\u0000meta/bogus-online'));
    await raw.close();
    // Stopped, it cannot be reached: the leader waits out its deadline for the link, and the
    // member keeps its mark (exit 8, the row says why).
    const down = await cli(['check', '--disarm', '--json', '--member', follower.id, '--endpoints', c.node(leader).url]);
    expect(down.code, down.stdout + down.stderr).toBe(8);
    expect(JSON.parse(down.stdout).members).toMatchObject([
      {
        id: follower.id,
        disarmed: false,
        error: { code: 'TIMEOUT', message: expect.stringContaining('could not be reached within 5000 ms') },
      },
    ]);
    await c.restart(follower.id);
    expect(await served()).toBe(503);
    // Just restarted, the follower serves HTTP before the leader's peer link to it is back
    // (the leader redials with backoff): the leader waits for the link (within its 5-s
    // request deadline) and relays the disarm once it is up. No retry here: one command.
    const text = await cli(['check', '--disarm', '--member', follower.id, '--endpoints', c.node(leader).url]);
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${follower.id}\\s+disarmed\\s+set by ${leader} at `));
    expect(text.stdout).toContain(`disarmed through ${leader}: 1 mark cleared`);
    expect(await served()).toBe(200);
    // The same wait, made certain: the leader's link to the member cut (its stream reset and
    // each redial refused), a disarm through the leader, and the link let through again
    // while that request waits. Without the wait it would fail at once ("no connection").
    c.net!.cut(leader, follower.id);
    await waitFor(
      'the leader to see its link to the follower down',
      async () => !(await linked(c.node(leader).url, follower.id)),
    );
    const waited = disarm(c.node(leader).url, { member: follower.id });
    // A fault schedule, not a wait for a condition: the request is on the leader well within it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    c.net!.heal(leader, follower.id);
    const relayed = await waited;
    expect(relayed.status, JSON.stringify(relayed.body)).toBe(200);
    expect(relayed.body.members).toEqual([{ id: follower.id, disarmed: false, mark: null, error: null }]);
    // A check waits for the link the same way: a member whose link is not back yet is not
    // called unreachable at once.
    c.net!.cut(leader, follower.id);
    await waitFor(
      'the leader to see its link to the follower down again',
      async () => !(await linked(c.node(leader).url, follower.id)),
    );
    const checking = http('POST', `${c.node(leader).url}/v1/cluster/check`, {});
    await new Promise((resolve) => setTimeout(resolve, 300)); // a fault schedule, as above
    c.net!.heal(leader, follower.id);
    const checked = await checking;
    expect(checked.status, JSON.stringify(checked.body)).toBe(200);
    expect(
      (checked.body.members as { id: string; verdict: string }[]).find((m) => m.id === follower.id)?.verdict,
      JSON.stringify(checked.body),
    ).not.toBe('unreachable');
    const all = c.nodes.map((n) => n.url).join(',');
    await waitFor(
      'a check that finds every member ok',
      async () => (await cli(['check', '--endpoints', all])).code === 0,
    );
    await waitFor('the node-corrupt alert to resolve', async () => {
      const a = await http('GET', `${c.node(leader).url}/v1/alerts`);
      return !(a.body.active as { kind: string }[]).some((x) => x.kind === 'node-corrupt');
    });
    expect(await served()).toBe(200);
    // Every member, through any node: nothing left to clear, exit 0.
    const json = await cli(['check', '--disarm', '--json', '--endpoints', other.url]);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      by: other.id,
      members: c.nodes.map((n) => ({ id: n.id, disarmed: false, mark: null, error: null })),
    });
    // A member the request cannot reach keeps its mark, if any, and says why: exit 8.
    const cut = await http('PUT', `${other.url}/v1/test/faults`, { dropTo: [follower.id], kinds: ['disarm'] });
    expect(cut.status).toBe(200);
    const partial = await cli(['check', '--disarm', '--json', '--endpoints', other.url]);
    expect(partial.code, partial.stderr).toBe(8);
    const rows = JSON.parse(partial.stdout).members as { id: string; error: { code: string } | null }[];
    expect(rows.filter((m) => m.error !== null).map((m) => m.id)).toEqual([follower.id]);
    expect((await http('PUT', `${other.url}/v1/test/faults`, {})).status).toBe(200);
    // No body at all is every member too (a bare `curl -X POST`).
    const bare = await disarm(c.node(leader).url);
    expect(bare.status, JSON.stringify(bare.body)).toBe(200);
    expect((bare.body.members as { id: string }[]).map((m) => m.id)).toEqual(c.nodes.map((n) => n.id));
  }, 60_000);

  it('check --disarm refuses a directory without a node database, and creates none', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'rollcall-disarm-'));
    try {
      const r = await cli(['check', '--disarm', '--data', empty]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`rollcall: ${empty} holds no Rollcall node database: is --data right?\n`);
      expect(await readdir(empty)).toEqual([]);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
