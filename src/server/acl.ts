/**
 * Who a request is, with replicated access tokens (`--acl`, docs/security.md "Access
 * control") and/or the per-node `--token-file` (break-glass with --acl).
 *
 * Replicated tokens live in the state machine (src/registry: bootstrapAcl, createToken,
 * revokeToken) as the SHA-256 digest of a 256-bit random secret; the secret is made here, on
 * the node that takes the request, and only its digest enters the log. Secrets are
 * high-entropy, so one unsalted SHA-256 is enough: a digest found in a data directory does
 * not give the secret back.
 *
 * "A token created through one node works on every node once the create is acknowledged":
 * a node that does not know a presented token may simply not have applied the create yet.
 * So a miss waits for a read barrier (this node applies everything committed before the
 * request arrived) and looks again before refusing; the failed-auth rate limit bounds how
 * many barriers unknown tokens can cost. A revoke takes effect on a node as soon as it is
 * applied there: every request looks the token up in the applied state.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { AclToken } from '../registry/index.js';
import type { Identity, Principal, TokenAuthority } from './auth.js';
import type { NodeApi } from './node-api.js';

/** What identification can say beyond TokenAuthority's reasons. */
export type AclIdentity =
  | Identity
  /** --acl, not bootstrapped yet, and no break-glass token: POST /v1/acl/bootstrap first. */
  | { readonly ok: false; readonly reason: 'bootstrap' }
  /** The token is unknown here and the read barrier that would confirm it failed (no leader, timeout). */
  | { readonly ok: false; readonly reason: 'unavailable'; readonly error: unknown };

export type AclNode = Pick<NodeApi, 'registry' | 'readBarrier'>;

/** Secret prefix: recognisable in a leaked log or file (secret scanners), says nothing about the token. */
const SECRET_PREFIX = 'rc_';

/**
 * The form of every replicated token's secret: the prefix and 32 random bytes in base64url
 * (newTokenSecret is the only maker, since the first build with --acl). A secret of any other
 * form can never be a replicated token: DNS refuses such a --dns-token-file (src/dns/access.ts).
 */
export const REPLICATED_SECRET_FORM = /^rc_[A-Za-z0-9_-]{43}$/;

export function newTokenSecret(): { readonly id: string; readonly secret: string; readonly secretHash: string } {
  const secret = SECRET_PREFIX + randomBytes(32).toString('base64url');
  return { id: randomUUID(), secret, secretHash: secretDigest(secret).toString('hex') };
}

export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function principalOf(t: AclToken): Principal {
  return { name: t.name, role: t.role, namespaces: t.namespaces, servicePrefixes: t.servicePrefixes, tokenId: t.id };
}

export class AccessControl {
  constructor(
    /** --token-file tokens (break-glass with --acl); null: none. */
    readonly file: TokenAuthority | null,
    /** --acl: replicated tokens from this node's state machine; null: off. */
    readonly acl: { readonly node: AclNode; readonly timeoutMs: number } | null,
  ) {}

  /** Whether any token check is on. */
  get on(): boolean {
    return this.file !== null || this.acl !== null;
  }

  bootstrapped(): boolean {
    return this.acl?.node.registry.aclBootstrapped() === true;
  }

  /** Identifies a bearer secret (undefined: none was sent). */
  async identify(secret: string | undefined): Promise<AclIdentity> {
    const acl = this.acl;
    if (secret === undefined || secret === '') {
      return acl !== null && !acl.node.registry.aclBootstrapped()
        ? { ok: false, reason: 'bootstrap' }
        : { ok: false, reason: 'missing' };
    }
    if (this.file !== null) {
      const id = this.file.identify(`Bearer ${secret}`);
      if (id.ok || acl === null) return id;
    }
    if (acl === null) return { ok: false, reason: 'unknown' };
    const digest = secretDigest(secret);
    let found = lookup(acl.node, digest);
    if (found === undefined) {
      // Maybe created through another node and not applied here yet: catch up, then decide.
      try {
        await acl.node.readBarrier(acl.timeoutMs);
      } catch (error) {
        return { ok: false, reason: 'unavailable', error };
      }
      found = lookup(acl.node, digest);
    }
    if (found !== undefined) return { ok: true, principal: principalOf(found) };
    return acl.node.registry.aclBootstrapped() ? { ok: false, reason: 'unknown' } : { ok: false, reason: 'bootstrap' };
  }
}

function lookup(node: AclNode, digest: Buffer): AclToken | undefined {
  // Found by its digest (a map of digests of high-entropy secrets: its timing tells nothing
  // about any secret), then compared in constant time all the same.
  const t = node.registry.tokenByHash(digest.toString('hex'));
  if (t === undefined) return undefined;
  return timingSafeEqual(Buffer.from(t.secretHash, 'hex'), digest) ? t : undefined;
}

/**
 * Failed authentications per source address, in fixed one-minute windows: past `limit` in a
 * window, every request from that address is refused with 429 until the window ends, so a
 * secret cannot be guessed at line rate. No timer: stale entries are dropped when the table
 * grows, so it needs no closing.
 */
export class FailedAuthLimiter {
  readonly #windows = new Map<string, { start: number; failures: number }>();

  constructor(
    /** Failures per window per address; 0: no limit. */
    readonly limit: number,
    readonly windowMs = 60_000,
    private readonly now: () => number = () => Date.now(),
    private readonly maxAddresses = 100_000,
  ) {}

  /** Seconds until `address` may try again; 0: not limited. */
  blockedFor(address: string): number {
    if (this.limit === 0) return 0;
    const w = this.#windows.get(address);
    if (w === undefined) return 0;
    const left = w.start + this.windowMs - this.now();
    if (left <= 0) {
      this.#windows.delete(address);
      return 0;
    }
    return w.failures >= this.limit ? Math.ceil(left / 1000) : 0;
  }

  fail(address: string): void {
    if (this.limit === 0) return;
    const now = this.now();
    let w = this.#windows.get(address);
    if (w === undefined || now - w.start >= this.windowMs) {
      if (this.#windows.size >= this.maxAddresses) this.#sweep(now);
      w = { start: now, failures: 0 };
      this.#windows.set(address, w);
    }
    w.failures++;
  }

  #sweep(now: number): void {
    for (const [a, w] of this.#windows) if (now - w.start >= this.windowMs) this.#windows.delete(a);
    // Still full (an address flood): forget the oldest half rather than grow without bound.
    if (this.#windows.size >= this.maxAddresses) {
      let drop = Math.floor(this.#windows.size / 2);
      for (const a of this.#windows.keys()) {
        if (drop-- <= 0) break;
        this.#windows.delete(a);
      }
    }
  }
}
