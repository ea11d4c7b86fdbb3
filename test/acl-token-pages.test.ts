/**
 * GET /v1/acl/tokens in pages (`limit`, `continue`), as every listing: sorted by id, no
 * token twice, never a secret, the cap without `limit`, a foreign `continue` refused; and
 * `rollcall acl token list` follows the pages. In one process (buildApp over
 * InMemoryNodeApi: the real state machine, over real HTTP for the CLI).
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { acl } from '../src/cli/commands/acl.js';
import { runCommand } from '../src/cli/commands/index.js';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { encodeContinue } from '../src/server/listing/continue-token.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

let app: FastifyInstance;
afterEach(async () => {
  await app?.close();
});

interface Page {
  revision: number;
  tokens: { id: string; name: string }[];
  continue?: string;
}

async function startWithTokens(count: number, listMaxItems?: number): Promise<string> {
  app = buildApp({
    node: await InMemoryNodeApi.create(),
    logger: silentLogger(),
    tokens: null,
    acl: true,
    ...(listMaxItems === undefined ? {} : { listMaxItems }),
  });
  await app.ready();
  const admin = (await app.inject({ method: 'POST', url: '/v1/acl/bootstrap' })).json().secret as string;
  for (let i = 0; i < count; i++) {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/acl/tokens',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ name: `t${i}`, role: 'read' }),
    });
    expect(r.statusCode).toBe(201);
  }
  return admin;
}

const list = (admin: string, query: string) =>
  app.inject({ method: 'GET', url: `/v1/acl/tokens${query}`, headers: { authorization: `Bearer ${admin}` } });

describe('GET /v1/acl/tokens pages', () => {
  it('limit and continue walk every token once, in id order, and never show a secret', async () => {
    const admin = await startWithTokens(11);
    const whole = (await list(admin, '')).json() as Page;
    expect(whole.tokens).toHaveLength(12);
    expect(whole.continue).toBeUndefined();
    const seen: string[] = [];
    let query = '?limit=5';
    let pages = 0;
    for (;;) {
      const r = await list(admin, query);
      expect(r.statusCode).toBe(200);
      expect(r.body).not.toContain('secret');
      const page = r.json() as Page;
      expect(page.tokens.length).toBeLessThanOrEqual(5);
      seen.push(...page.tokens.map((t) => t.id));
      pages++;
      if (page.continue === undefined) break;
      query = `?limit=5&continue=${encodeURIComponent(page.continue)}`;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual(whole.tokens.map((t) => t.id));
    expect([...seen].sort()).toEqual(seen);
  });

  it('a token revoked between pages is not listed; none is listed twice', async () => {
    const admin = await startWithTokens(5);
    const first = (await list(admin, '?limit=3')).json() as Page;
    const tokens = ((await list(admin, '')).json() as Page).tokens;
    const all = tokens.map((t) => t.id);
    // One on the second page, never the admin token this test lists with (ids are random: the
    // bootstrap token sorts anywhere; revoking it made the next page a 401 one run in six).
    const doomed = tokens.slice(3).find((t) => t.name !== 'bootstrap')!.id;
    const revoked = await app.inject({
      method: 'DELETE',
      url: `/v1/acl/tokens/${doomed}`,
      headers: { authorization: `Bearer ${admin}` },
    });
    expect(revoked.statusCode).toBe(200);
    const second = (await list(admin, `?limit=3&continue=${encodeURIComponent(first.continue!)}`)).json() as Page;
    expect(second.revision).toBeGreaterThan(first.revision);
    expect([...first.tokens, ...second.tokens].map((t) => t.id)).toEqual(all.filter((id) => id !== doomed));
    expect(second.continue).toBeUndefined();
  });

  it('without limit, more than the cap is refused (LIMIT_EXCEEDED); limit is capped', async () => {
    const admin = await startWithTokens(4, 3);
    const refused = await list(admin, '');
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toMatchObject({ code: 'LIMIT_EXCEEDED', field: 'limit', limit: 3, count: 5 });
    const capped = (await list(admin, '?limit=100')).json() as Page;
    expect(capped.tokens).toHaveLength(3);
    expect(capped.continue).toBeDefined();
  });

  it('a continue of another listing, garbage, or a bad limit is 400', async () => {
    const admin = await startWithTokens(0);
    const foreign = encodeContinue({ revision: 1, after: 'x', listing: 'services' });
    for (const q of [`?continue=${foreign}`, '?continue=nonsense', '?limit=0', '?limit=x', '?other=1']) {
      const r = await list(admin, q);
      expect(r.statusCode, q).toBe(400);
      expect(r.json().error.code, q).toBe('INVALID_ARGUMENT');
    }
  });

  it('rollcall acl token list follows the pages past the cap of one answer', async () => {
    const admin = await startWithTokens(7, 3);
    const base = await app.listen({ host: '127.0.0.1', port: 0 });
    let stdout = '';
    let stderr = '';
    const io = { out: (t: string) => void (stdout += t), err: (t: string) => void (stderr += t) };
    const code = await runCommand(acl, ['token', 'list', '--endpoints', base, '--token', admin, '--json'], io);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const listed = JSON.parse(stdout) as Page;
    expect(listed.tokens.map((t) => t.name).sort()).toEqual(['bootstrap', 't0', 't1', 't2', 't3', 't4', 't5', 't6']);
  });
});
