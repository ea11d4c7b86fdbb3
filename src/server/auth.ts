/**
 * Bearer tokens with roles, from a token file:
 *
 *   [{ "token": "…", "role": "read" | "register" | "admin", "namespaces"?: ["prod"], "name"?: "ci" }]
 *
 * - read: GET routes and watches.
 * - register: sessions (open, keepalive, close) and register/deregister of instances.
 * - admin: everything (PATCH, access rules, leader transfer, and all of the above).
 * `namespaces` limits a token to those namespaces on namespaced routes; a watch across all
 * namespaces then needs an unlimited token. Routes that are not namespaced (sessions,
 * cluster status) are open to the role whatever its namespaces, except the admin ones: an
 * admin route that names no namespace acts on the whole cluster (membership, the corruption
 * check and its disarm, snapshots, access rules, the health policy, tokens, federation), so
 * it needs an admin token without namespace or service-prefix limits (isClusterWide).
 *
 * Tokens are compared in constant time (SHA-256 digests through timingSafeEqual, every
 * entry checked, no early exit) and never appear in errors or logs: entries are named by
 * their `name` or position in the file.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export const ROLES = ['read', 'register', 'admin'] as const;
export type Role = (typeof ROLES)[number];
/**
 * What a route needs: nothing (probes, the API description), any valid token whatever its
 * role and scopes (`token`: a token's description of itself), or a role.
 */
export type Permission = 'public' | 'token' | Role;

export interface Principal {
  /** For logs: the entry's `name`, or `token#<position>`. Never the token. */
  readonly name: string;
  readonly role: Role;
  /** null = every namespace. */
  readonly namespaces: readonly string[] | null;
  /** Replicated tokens (--acl): service names must start with one of these; null or absent = every service. */
  readonly servicePrefixes?: readonly string[] | null;
  /** A replicated token's id (--acl); absent for --token-file entries. */
  readonly tokenId?: string;
}

export type Identity =
  | { readonly ok: true; readonly principal: Principal }
  | { readonly ok: false; readonly reason: 'missing' | 'malformed' | 'unknown' };

export type Decision = { readonly ok: true } | { readonly ok: false; readonly message: string };

/**
 * Whether a route acts on the whole cluster: it needs admin and names no namespace
 * (`namespace` undefined: the route is not namespaced). Such a route (membership changes,
 * the corruption check and its disarm, snapshot download, access rules, the health policy,
 * token management, federation join and leave) reaches past any namespace, so a token
 * limited to namespaces or service prefixes must not use it: holding one would otherwise
 * let it act outside its scope (an unlimited admin token made through it, say).
 */
export function isClusterWide(need: Permission, namespace: string | null | undefined): boolean {
  return need === 'admin' && namespace === undefined;
}

/** What a token is limited to, for messages; null when it is not limited. */
function scopeOf(p: Principal): string | null {
  const parts: string[] = [];
  if (p.namespaces !== null) parts.push(`namespaces ${p.namespaces.join(', ')}`);
  if (p.servicePrefixes != null) parts.push(`services starting with ${p.servicePrefixes.join(', ')}`);
  return parts.length === 0 ? null : parts.join(' and ');
}

export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

interface Entry extends Principal {
  readonly digest: Buffer;
}

const TOKEN = /^[\x21-\x7e]{16,512}$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const KEYS = new Set(['token', 'role', 'namespaces', 'name']);

export class TokenAuthority {
  private constructor(private readonly entries: readonly Entry[]) {}

  /** Reads and checks a token file; errors name the entry and never quote the file. */
  static async load(path: string): Promise<TokenAuthority> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new TokenFileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    return TokenAuthority.parse(text, path);
  }

  static parse(text: string, source = 'token file'): TokenAuthority {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      // JSON.parse messages quote the input, which is secret: say only where.
      throw new TokenFileError(`${source} is not valid JSON`);
    }
    if (!Array.isArray(raw) || raw.length === 0)
      throw new TokenFileError(`${source} must be a non-empty JSON array of token entries`);
    const entries: Entry[] = [];
    const seen = new Set<string>();
    raw.forEach((item: unknown, i) => {
      const where = `${source} entry ${i}`;
      if (typeof item !== 'object' || item === null || Array.isArray(item))
        throw new TokenFileError(`${where} must be an object`);
      const o = item as Record<string, unknown>;
      for (const k of Object.keys(o))
        if (!KEYS.has(k)) throw new TokenFileError(`${where} has an unknown field ${JSON.stringify(k)}`);
      const token = o['token'];
      if (typeof token !== 'string' || !TOKEN.test(token)) {
        throw new TokenFileError(`${where}: token must be 16-512 visible ASCII characters without spaces`);
      }
      const role = o['role'];
      if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role))
        throw new TokenFileError(`${where}: role must be one of ${ROLES.join(', ')}`);
      let namespaces: string[] | null = null;
      if (o['namespaces'] !== undefined) {
        const ns = o['namespaces'];
        if (!Array.isArray(ns) || ns.length === 0 || !ns.every((n) => typeof n === 'string' && NAME.test(n))) {
          throw new TokenFileError(
            `${where}: namespaces must be a non-empty array of namespace names (leave it out for all namespaces)`,
          );
        }
        namespaces = [...new Set(ns as string[])].sort();
      }
      let name = `token#${i}`;
      if (o['name'] !== undefined) {
        if (typeof o['name'] !== 'string' || !NAME.test(o['name']))
          throw new TokenFileError(`${where}: name must be 1-128 characters of [A-Za-z0-9._-]`);
        name = o['name'];
      }
      const digest = sha256(token);
      const key = digest.toString('hex');
      if (seen.has(key)) throw new TokenFileError(`${where} repeats the token of an earlier entry`);
      seen.add(key);
      entries.push({ name, role: role as Role, namespaces, digest });
    });
    return new TokenAuthority(entries);
  }

  /** How many tokens of each role, for the startup log line. */
  summary(): Record<Role, number> {
    const out: Record<Role, number> = { read: 0, register: 0, admin: 0 };
    for (const e of this.entries) out[e.role]++;
    return out;
  }

  /** Finds the entry whose token the `Authorization` header carries. */
  identify(authorization: string | undefined): Identity {
    if (authorization === undefined || authorization.length === 0) return { ok: false, reason: 'missing' };
    const m = /^Bearer +([^\s]+) *$/i.exec(authorization);
    if (!m) return { ok: false, reason: 'malformed' };
    const digest = sha256(m[1]!);
    let found: Entry | null = null;
    // Every entry is compared, whatever matched, so timing says nothing about which.
    for (const e of this.entries) if (timingSafeEqual(e.digest, digest) && found === null) found = e;
    if (found === null) return { ok: false, reason: 'unknown' };
    return { ok: true, principal: { name: found.name, role: found.role, namespaces: found.namespaces } };
  }

  /**
   * Whether `p` may use a route that needs `need`. `namespace`: the namespace the request
   * touches; null when it spans every namespace; undefined when the route is not namespaced.
   * `service`: the service a namespaced route names (undefined: none, it spans services).
   */
  static authorize(p: Principal, need: Permission, namespace: string | null | undefined, service?: string): Decision {
    if (need === 'public' || need === 'token') return { ok: true };
    if (p.role !== 'admin' && p.role !== need) {
      return {
        ok: false,
        message: `token ${p.name} has role ${p.role}; this route needs ${need === 'admin' ? 'admin' : `${need} or admin`}`,
      };
    }
    if (isClusterWide(need, namespace)) {
      const scope = scopeOf(p);
      if (scope === null) return { ok: true };
      return {
        ok: false,
        message: `token ${p.name} is limited to ${scope}; this route acts on the whole cluster and names no namespace, so it needs an admin token without namespace or service-prefix limits`,
      };
    }
    if (p.servicePrefixes != null && namespace !== undefined) {
      if (service === undefined) {
        return {
          ok: false,
          message: `token ${p.name} is limited to services starting with ${p.servicePrefixes.join(', ')}; use a route that names the service`,
        };
      }
      if (!p.servicePrefixes.some((prefix) => service.startsWith(prefix))) {
        return {
          ok: false,
          message: `token ${p.name} is limited to services starting with ${p.servicePrefixes.join(', ')}, not ${service}`,
        };
      }
    }
    if (p.namespaces === null || namespace === undefined) return { ok: true };
    if (namespace === null) {
      return {
        ok: false,
        message: `token ${p.name} is limited to namespaces ${p.namespaces.join(', ')}; name one (for a watch: ?namespace=)`,
      };
    }
    if (!p.namespaces.includes(namespace)) {
      return {
        ok: false,
        message: `token ${p.name} is limited to namespaces ${p.namespaces.join(', ')}, not ${namespace}`,
      };
    }
    return { ok: true };
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
