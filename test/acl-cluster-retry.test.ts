/**
 * Token writes retried through another node of a real 3-node --acl cluster (separate
 * processes, LevelDB, TCP): with the same x-rollcall-client-id and x-rollcall-seq, a retry
 * of bootstrap or create through another node makes no second token and names the one the
 * first attempt made (the deduplication table is replicated state); a retried revoke
 * through another node answers as the first did.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { bootstrapWhenReady, http, waitFor } from './helpers/http.js';

let cluster: LocalCluster;
const url = (id: string): string => cluster.node(id).url;
const ids = (client: string, seq: number): Record<string, string> => ({
  'x-rollcall-client-id': client,
  'x-rollcall-seq': String(seq),
});

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, logLevel: 'warn', extraArgs: ['--acl'] });
  await waitFor('a leader every node agrees on', async () => {
    const views = await Promise.all(
      cluster.nodes.map((n) =>
        http('GET', `${n.url}/readyz`).then((r) => (r.status === 200 ? (r.body.leader as string | null) : null)),
      ),
    );
    return views[0] && views.every((v) => v === views[0]) ? views[0] : undefined;
  });
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});

describe('token writes retried through another node', () => {
  it('bootstrap, create and revoke apply once', async () => {
    // A new cluster raises its version to this build's once every member reported it.
    const boot = await bootstrapWhenReady(url('n1'), ids('ops', 1));
    expect(boot.status, JSON.stringify(boot.body)).toBe(201);
    const admin = { authorization: `Bearer ${boot.body.secret as string}` };
    const bootAgain = await http('POST', `${url('n2')}/v1/acl/bootstrap`, {}, ids('ops', 1));
    expect(bootAgain.status).toBe(409);
    expect(bootAgain.body.error).toMatchObject({ code: 'ACL_BOOTSTRAPPED', replayed: true, id: boot.body.id });

    const body = { name: 'dashboards', role: 'read' };
    const made = await http('POST', `${url('n1')}/v1/acl/tokens`, body, { ...admin, ...ids('ops', 2) });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const retried = await http('POST', `${url('n3')}/v1/acl/tokens`, body, { ...admin, ...ids('ops', 2) });
    expect(retried.status).toBe(409);
    expect(retried.body.error).toMatchObject({ code: 'TOKEN_EXISTS', replayed: true, id: made.body.id });
    const listed = await http('GET', `${url('n2')}/v1/acl/tokens`, undefined, admin);
    expect(listed.body.tokens.filter((t: { name: string }) => t.name === 'dashboards')).toHaveLength(1);

    const revoke = `/v1/acl/tokens/${made.body.id as string}`;
    const revoked = await http('DELETE', `${url('n2')}${revoke}`, undefined, { ...admin, ...ids('ops', 3) });
    expect(revoked.status).toBe(200);
    const revokedAgain = await http('DELETE', `${url('n1')}${revoke}`, undefined, { ...admin, ...ids('ops', 3) });
    expect(revokedAgain.status).toBe(200);
    expect(revokedAgain.body).toEqual(revoked.body);
    expect(
      (await http('GET', `${url('n3')}/v1/cluster`, undefined, { authorization: `Bearer ${made.body.secret}` })).status,
    ).toBe(401);
  });
});
