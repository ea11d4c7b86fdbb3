/**
 * Access rules: who may register where, checked by the server before it proposes a
 * register. Stored through the replicated `setAccessRules` command as this JSON:
 *
 *   {
 *     "environment": "prod" | null,      // the registry's environment label
 *     "requireEnvironment": false,        // true: instances must carry metadata.environment
 *     "allow": [{ "name"?, "namespace"?, "service"?, "cidr"? }, ...],
 *     "deny":  [ ...same... ]
 *   }
 *
 * A rule matches a registration when every field it gives matches: `namespace` and
 * `service` exactly (or "*"), `cidr` containing the instance's `address` (an IPv4 or IPv6
 * address; a host name never matches a cidr). A matching deny rule refuses; then, if the
 * allow list is not empty, some allow rule must match. The environment check compares the
 * instance's `metadata.environment` with the label.
 */
import { BlockList, isIP } from 'node:net';

export interface AccessRule {
  readonly name?: string;
  readonly namespace?: string;
  readonly service?: string;
  readonly cidr?: string;
}

export interface AccessRulesDoc {
  readonly environment: string | null;
  readonly requireEnvironment: boolean;
  readonly allow: readonly AccessRule[];
  readonly deny: readonly AccessRule[];
}

/** The metadata key that carries an instance's environment label. */
export const ENVIRONMENT_KEY = 'environment';
export const MAX_RULES = 256;

export const EMPTY_RULES: AccessRulesDoc = Object.freeze({ environment: null, requireEnvironment: false, allow: [], deny: [] });

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
const SCOPE = { type: 'string', minLength: 1, maxLength: 128, pattern: '^(\\*|[A-Za-z0-9][A-Za-z0-9._-]*)$' } as const;
const RULE = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 64, pattern: NAME_PATTERN },
    namespace: SCOPE,
    service: SCOPE,
    cidr: { type: 'string', minLength: 2, maxLength: 64 },
  },
} as const;

/** JSON schema of `PUT /v1/access-rules`. */
export const accessRulesBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    environment: { anyOf: [{ type: 'string', minLength: 1, maxLength: 64, pattern: NAME_PATTERN }, { type: 'null' }] },
    requireEnvironment: { type: 'boolean' },
    allow: { type: 'array', maxItems: MAX_RULES, items: RULE },
    deny: { type: 'array', maxItems: MAX_RULES, items: RULE },
  },
} as const;

export class RulesError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Checks what the schema cannot and fills defaults; throws RulesError naming the field. */
export function normalizeRules(body: Record<string, unknown>): AccessRulesDoc {
  const list = (key: 'allow' | 'deny'): AccessRule[] => {
    const v = body[key];
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.length > MAX_RULES) throw new RulesError(key, `${key} must be an array of at most ${MAX_RULES} rules`);
    return v.map((r: unknown, i) => normalizeRule(r, `${key}.${i}`));
  };
  const env = body['environment'];
  if (env !== undefined && env !== null && (typeof env !== 'string' || !new RegExp(NAME_PATTERN).test(env) || env.length > 64)) {
    throw new RulesError('environment', 'environment must be a name of 1-64 characters of [A-Za-z0-9._-], or null');
  }
  const requireEnvironment = body['requireEnvironment'] ?? false;
  if (typeof requireEnvironment !== 'boolean') throw new RulesError('requireEnvironment', 'requireEnvironment must be a boolean');
  const environment = typeof env === 'string' ? env : null;
  if (requireEnvironment && environment === null) throw new RulesError('requireEnvironment', 'requireEnvironment needs an environment label');
  return { environment, requireEnvironment, allow: list('allow'), deny: list('deny') };
}

function normalizeRule(r: unknown, field: string): AccessRule {
  if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new RulesError(field, `${field} must be an object`);
  const o = r as Record<string, unknown>;
  const out: { name?: string; namespace?: string; service?: string; cidr?: string } = {};
  for (const k of ['name', 'namespace', 'service', 'cidr'] as const) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new RulesError(`${field}.${k}`, `${field}.${k} must be a string`);
    out[k] = v;
  }
  if (out.namespace === undefined && out.service === undefined && out.cidr === undefined) {
    throw new RulesError(field, `${field} must give at least one of namespace, service, cidr`);
  }
  if (out.cidr !== undefined) {
    const parsed = parseCidr(out.cidr);
    if (parsed === null) throw new RulesError(`${field}.cidr`, `${field}.cidr must be an IPv4 or IPv6 address or range like 10.0.0.0/8 or fd00::/8, got ${JSON.stringify(out.cidr)}`);
  }
  return out;
}

interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf('/');
  const address = slash < 0 ? s : s.slice(0, slash);
  const v = isIP(address);
  if (v === 0) return null;
  const family = v === 4 ? 'ipv4' : 'ipv6';
  const max = v === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  return prefix <= max ? { address, prefix, family } : null;
}

export type Verdict =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: 'ACCESS_DENIED'; readonly rule: string; readonly message: string }
  | { readonly ok: false; readonly code: 'ENVIRONMENT_MISMATCH'; readonly field: string; readonly message: string };

interface CompiledRule {
  readonly label: string;
  readonly namespace: string | null;
  readonly service: string | null;
  readonly range: BlockList | null;
}

/** Rules ready to check registrations; build once per stored revision. */
export class CompiledRules {
  private readonly allow: readonly CompiledRule[];
  private readonly deny: readonly CompiledRule[];

  constructor(readonly doc: AccessRulesDoc) {
    this.allow = doc.allow.map((r, i) => compile(r, `allow[${i}]`));
    this.deny = doc.deny.map((r, i) => compile(r, `deny[${i}]`));
  }

  /** The environment label only (PATCH of metadata). */
  checkEnvironment(metadata: Readonly<Record<string, string>> | undefined, field = 'metadata.environment'): Verdict {
    const label = this.doc.environment;
    if (label === null) return { ok: true };
    const env = metadata?.[ENVIRONMENT_KEY];
    if (env === undefined) {
      if (!this.doc.requireEnvironment) return { ok: true };
      return { ok: false, code: 'ENVIRONMENT_MISMATCH', field, message: `this registry is ${label} and requires metadata.environment on every instance` };
    }
    if (env === label) return { ok: true };
    return { ok: false, code: 'ENVIRONMENT_MISMATCH', field, message: `instance is labelled environment ${JSON.stringify(env)} but this registry is ${JSON.stringify(label)}` };
  }

  check(namespace: string, service: string, address: string, metadata: Readonly<Record<string, string>> | undefined): Verdict {
    const ip = ipOf(address);
    for (const r of this.deny) {
      if (matches(r, namespace, service, ip)) {
        return { ok: false, code: 'ACCESS_DENIED', rule: r.label, message: `registration of ${namespace}/${service} at ${address} is refused by access rule ${r.label}` };
      }
    }
    if (this.allow.length > 0 && !this.allow.some((r) => matches(r, namespace, service, ip))) {
      return { ok: false, code: 'ACCESS_DENIED', rule: 'allow', message: `no allow rule admits ${namespace}/${service} at ${address}` };
    }
    return this.checkEnvironment(metadata);
  }
}

function compile(r: AccessRule, position: string): CompiledRule {
  let range: BlockList | null = null;
  if (r.cidr !== undefined) {
    const c = parseCidr(r.cidr);
    if (c === null) throw new RulesError(position, `${position}.cidr is not a valid range`);
    range = new BlockList();
    range.addSubnet(c.address, c.prefix, c.family);
  }
  return {
    label: r.name !== undefined ? `${position} (${r.name})` : position,
    namespace: r.namespace === undefined || r.namespace === '*' ? null : r.namespace,
    service: r.service === undefined || r.service === '*' ? null : r.service,
    range,
  };
}

function matches(r: CompiledRule, namespace: string, service: string, ip: { address: string; family: 'ipv4' | 'ipv6' } | null): boolean {
  if (r.namespace !== null && r.namespace !== namespace) return false;
  if (r.service !== null && r.service !== service) return false;
  if (r.range !== null) return ip !== null && r.range.check(ip.address, ip.family);
  return true;
}

/** The address as an IP, if it is one (brackets and IPv4-mapped IPv6 undone). */
function ipOf(address: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  const a = address.replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  const v = isIP(a);
  return v === 4 ? { address: a, family: 'ipv4' } : v === 6 ? { address: a, family: 'ipv6' } : null;
}
