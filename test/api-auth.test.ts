/** The token checker alone: parsing a token file, identifying a bearer token, role and namespace decisions. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Permission, Principal } from '../src/server/auth.js';
import { TokenAuthority, TokenFileError } from '../src/server/auth.js';

const READ = 'read-token-0123456789abcdef';
const REG = 'register-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';

const file = JSON.stringify([
  { token: READ, role: 'read', name: 'dashboards' },
  { token: REG, role: 'register', namespaces: ['prod'] },
  { token: ADMIN, role: 'admin' },
]);

describe('token file', () => {
  it('loads entries and names them without their tokens', () => {
    const auth = TokenAuthority.parse(file);
    expect(auth.summary()).toEqual({ read: 1, register: 1, admin: 1 });
    const id = auth.identify(`Bearer ${REG}`);
    expect(id).toEqual({ ok: true, principal: { name: 'token#1', role: 'register', namespaces: ['prod'] } });
  });

  const bad: [string, string, RegExp][] = [
    ['not JSON', `[{"token": "${READ}", "role": `, /not valid JSON/],
    ['not an array', JSON.stringify({ token: READ, role: 'read' }), /non-empty JSON array/],
    ['empty', '[]', /non-empty JSON array/],
    ['short token', JSON.stringify([{ token: 'short', role: 'read' }]), /entry 0: token must be 16-512/],
    ['token with a space', JSON.stringify([{ token: `${READ} x`, role: 'read' }]), /entry 0: token/],
    [
      'unknown role',
      JSON.stringify([{ token: READ, role: 'root' }]),
      /entry 0: role must be one of read, register, admin/,
    ],
    ['unknown field', JSON.stringify([{ token: READ, role: 'read', scope: 'x' }]), /unknown field "scope"/],
    [
      'bad namespaces',
      JSON.stringify([{ token: READ, role: 'read', namespaces: [] }]),
      /namespaces must be a non-empty array/,
    ],
    [
      'duplicate token',
      JSON.stringify([
        { token: READ, role: 'read' },
        { token: READ, role: 'admin' },
      ]),
      /entry 1 repeats the token/,
    ],
  ];
  for (const [what, text, message] of bad) {
    it(`refuses a file with ${what}, without quoting any token`, () => {
      let err: unknown;
      try {
        TokenAuthority.parse(text, 'tokens.json');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TokenFileError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain(READ.slice(0, 10));
      expect((err as Error).message).not.toContain('short');
    });
  }

  it('reads a file from disk and says which file failed', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'rollcall-auth-'));
    try {
      const p = path.join(dir, 'tokens.json');
      await writeFile(p, file);
      expect((await TokenAuthority.load(p)).summary().admin).toBe(1);
      await expect(TokenAuthority.load(path.join(dir, 'missing.json'))).rejects.toThrow(
        /cannot read .*missing.json: ENOENT/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('identify', () => {
  const auth = TokenAuthority.parse(file);
  it.each([
    [undefined, 'missing'],
    ['', 'missing'],
    [`Basic ${Buffer.from('a:b').toString('base64')}`, 'malformed'],
    ['Bearer', 'malformed'],
    [`Bearer ${READ} extra`, 'malformed'],
    [`Bearer ${READ}x`, 'unknown'],
    [`Bearer ${READ.slice(0, -1)}`, 'unknown'],
  ])('%s -> %s', (header, reason) => {
    expect(auth.identify(header)).toEqual({ ok: false, reason });
  });

  it('takes the scheme in any case', () => {
    expect(auth.identify(`bearer ${ADMIN}`)).toMatchObject({ ok: true, principal: { role: 'admin' } });
    expect(auth.identify(`BEARER  ${READ}`)).toMatchObject({ ok: true, principal: { name: 'dashboards' } });
  });
});

describe('authorize', () => {
  const read: Principal = { name: 'r', role: 'read', namespaces: null };
  const reg: Principal = { name: 'g', role: 'register', namespaces: ['prod'] };
  const regAll: Principal = { name: 'ga', role: 'register', namespaces: null };
  const admin: Principal = { name: 'a', role: 'admin', namespaces: null };
  const nsAdmin: Principal = { name: 'an', role: 'admin', namespaces: ['prod'] };
  const svcAdmin: Principal = { name: 'as', role: 'admin', namespaces: null, servicePrefixes: ['orders'] };
  const cases: [Principal, Permission, string | null | undefined, boolean][] = [
    [read, 'public', undefined, true],
    [read, 'read', 'prod', true],
    [read, 'read', null, true],
    [read, 'register', 'prod', false],
    [read, 'admin', undefined, false],
    [reg, 'register', 'prod', true],
    [reg, 'register', 'test', false],
    [reg, 'register', undefined, true], // sessions are not namespaced
    [reg, 'read', 'prod', false],
    [reg, 'admin', 'prod', false],
    [regAll, 'register', 'test', true],
    [admin, 'read', null, true],
    [admin, 'register', 'anything', true],
    [admin, 'admin', undefined, true],
    // An admin route that names no namespace acts on the whole cluster: unlimited admins only.
    [nsAdmin, 'admin', 'prod', true],
    [nsAdmin, 'admin', 'test', false],
    [nsAdmin, 'admin', undefined, false],
    [nsAdmin, 'register', undefined, true],
    [nsAdmin, 'read', undefined, true],
    [svcAdmin, 'admin', undefined, false],
    [svcAdmin, 'read', undefined, true],
  ];
  it.each(cases)('%o needs %s in %s -> %s', (p, need, ns, allowed) => {
    const d = TokenAuthority.authorize(p, need, ns);
    expect(d.ok).toBe(allowed);
    if (!d.ok) expect(d.message).toContain(`token ${p.name}`);
  });

  it('asks a namespace-limited reader to name a namespace for a watch across all', () => {
    const d = TokenAuthority.authorize({ name: 'r', role: 'read', namespaces: ['prod'] }, 'read', null);
    expect(d).toEqual({ ok: false, message: expect.stringMatching(/limited to namespaces prod; name one/) });
  });
});
