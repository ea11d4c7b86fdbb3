/**
 * Access rules as replicated semantics: the document `setAccessRules` stores, and the
 * verdict `register` and `update` get from it when they are applied.
 *
 * The verdict is decided by the state machine, at apply time, against the rules in force at
 * that log position; every replica reaches the same verdict for the same entry. Everything
 * here is therefore pure and deterministic: no clocks, no node-local state, no iteration
 * over anything unordered. Node's `isIP` and `BlockList` are used for addresses and ranges;
 * both are pure functions of their input. Changing any rule here changes what old log
 * entries do on replay: treat it as a state-machine version change.
 *
 * The document:
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
 * allow list is not empty, some allow rule must match; then the instance's
 * `metadata.environment` must equal the label (or be absent, unless `requireEnvironment`).
 */
import { BlockList, isIP } from 'node:net';
import type { AccessRule, AccessRulesDoc } from './access-rules-doc.js';
import type { CommandError, Register, Update } from './commands.js';
import type { Instance, StoredAccessRules } from './model.js';

// The document's shapes live in a file free of Node APIs, so the SDK types and the monitoring
// page (browser code) can import them.
export type { AccessRule, AccessRulesDoc };

/** The metadata key that carries an instance's environment label. */
export const ENVIRONMENT_KEY = 'environment';
export const MAX_RULES = 256;
export const RULE_NAME_LENGTH = 64;
export const SCOPE_LENGTH = 128;
export const CIDR_LENGTH = 64;
export const ENVIRONMENT_LENGTH = 64;

export const EMPTY_RULES: AccessRulesDoc = Object.freeze({
  environment: null,
  requireEnvironment: false,
  allow: Object.freeze([]),
  deny: Object.freeze([]),
});

export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
export const SCOPE_PATTERN = '^(\\*|[A-Za-z0-9][A-Za-z0-9._-]*)$';
const NAME = new RegExp(NAME_PATTERN);
const SCOPE = new RegExp(SCOPE_PATTERN);
const TOP_KEYS: ReadonlySet<string> = new Set(['environment', 'requireEnvironment', 'allow', 'deny']);
const RULE_KEYS = ['name', 'namespace', 'service', 'cidr'] as const;

export type ParsedRules =
  | { readonly ok: true; readonly value: AccessRulesDoc }
  | { readonly ok: false; readonly field: string; readonly message: string };

class Bad extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Checks a rules document and returns its canonical form (defaults filled in, fixed key
 * order, frozen): what `setAccessRules` stores. Checks everything the HTTP schema of
 * `PUT /v1/access-rules` checks and what it cannot (cidr syntax, requireEnvironment without
 * a label); `field` names what is at fault (`allow.0.cidr`).
 */
export function parseAccessRules(raw: unknown): ParsedRules {
  try {
    return { ok: true, value: parse(raw) };
  } catch (e) {
    if (e instanceof Bad) return { ok: false, field: e.field, message: e.message };
    throw e;
  }
}

function parse(raw: unknown): AccessRulesDoc {
  if (!isObject(raw)) throw new Bad('rules', 'access rules must be an object');
  for (const k of Object.keys(raw).sort()) {
    if (!TOP_KEYS.has(k))
      throw new Bad(
        k,
        `unknown access rules field ${JSON.stringify(k)} (environment, requireEnvironment, allow, deny)`,
      );
  }
  const list = (key: 'allow' | 'deny'): readonly AccessRule[] => {
    const v = raw[key];
    if (v === undefined) return Object.freeze([]);
    if (!Array.isArray(v) || v.length > MAX_RULES)
      throw new Bad(key, `${key} must be an array of at most ${MAX_RULES} rules`);
    return Object.freeze(v.map((r: unknown, i) => parseRule(r, `${key}.${i}`)));
  };
  const env = raw['environment'];
  if (
    env !== undefined &&
    env !== null &&
    (typeof env !== 'string' || !NAME.test(env) || env.length > ENVIRONMENT_LENGTH)
  ) {
    throw new Bad(
      'environment',
      `environment must be a name of 1-${ENVIRONMENT_LENGTH} characters of [A-Za-z0-9._-], or null`,
    );
  }
  const requireEnvironment = raw['requireEnvironment'] ?? false;
  if (typeof requireEnvironment !== 'boolean')
    throw new Bad('requireEnvironment', 'requireEnvironment must be a boolean');
  const environment = typeof env === 'string' ? env : null;
  if (requireEnvironment && environment === null)
    throw new Bad('requireEnvironment', 'requireEnvironment needs an environment label');
  return Object.freeze({ environment, requireEnvironment, allow: list('allow'), deny: list('deny') });
}

function parseRule(r: unknown, field: string): AccessRule {
  if (!isObject(r)) throw new Bad(field, `${field} must be an object`);
  for (const k of Object.keys(r).sort()) {
    if (!(RULE_KEYS as readonly string[]).includes(k))
      throw new Bad(`${field}.${k}`, `unknown rule field ${JSON.stringify(k)} (name, namespace, service, cidr)`);
  }
  const out: { name?: string; namespace?: string; service?: string; cidr?: string } = {};
  for (const k of RULE_KEYS) {
    const v = r[k];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new Bad(`${field}.${k}`, `${field}.${k} must be a string`);
    out[k] = v;
  }
  if (out.name !== undefined && (out.name.length > RULE_NAME_LENGTH || !NAME.test(out.name))) {
    throw new Bad(`${field}.name`, `${field}.name must be 1-${RULE_NAME_LENGTH} characters of ${NAME_PATTERN}`);
  }
  for (const k of ['namespace', 'service'] as const) {
    const v = out[k];
    if (v !== undefined && (v.length > SCOPE_LENGTH || !SCOPE.test(v)))
      throw new Bad(`${field}.${k}`, `${field}.${k} must be "*" or a name of 1-${SCOPE_LENGTH} characters`);
  }
  if (out.namespace === undefined && out.service === undefined && out.cidr === undefined) {
    throw new Bad(field, `${field} must give at least one of namespace, service, cidr`);
  }
  if (out.cidr !== undefined && (out.cidr.length > CIDR_LENGTH || parseCidr(out.cidr) === null)) {
    throw new Bad(
      `${field}.cidr`,
      `${field}.cidr must be an IPv4 or IPv6 address or range like 10.0.0.0/8 or fd00::/8, got ${JSON.stringify(out.cidr)}`,
    );
  }
  return Object.freeze(out);
}

export interface Cidr {
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

const OK: Verdict = Object.freeze({ ok: true });

interface CompiledRule {
  readonly label: string;
  readonly namespace: string | null;
  readonly service: string | null;
  readonly range: BlockList | null;
}

/** A parsed document ready to check registrations. */
export class CompiledRules {
  readonly #allow: readonly CompiledRule[];
  readonly #deny: readonly CompiledRule[];

  constructor(readonly doc: AccessRulesDoc) {
    this.#allow = doc.allow.map((r, i) => compile(r, `allow[${i}]`));
    this.#deny = doc.deny.map((r, i) => compile(r, `deny[${i}]`));
  }

  /** The environment label only (what an update of the metadata is checked against). */
  checkEnvironment(metadata: Readonly<Record<string, string>> | undefined, field = 'metadata.environment'): Verdict {
    const label = this.doc.environment;
    if (label === null) return OK;
    const env =
      metadata !== undefined && Object.hasOwn(metadata, ENVIRONMENT_KEY) ? metadata[ENVIRONMENT_KEY] : undefined;
    if (env === undefined) {
      if (!this.doc.requireEnvironment) return OK;
      return {
        ok: false,
        code: 'ENVIRONMENT_MISMATCH',
        field,
        message: `this registry is ${label} and requires metadata.environment on every instance`,
      };
    }
    if (env === label) return OK;
    return {
      ok: false,
      code: 'ENVIRONMENT_MISMATCH',
      field,
      message: `instance is labelled environment ${JSON.stringify(env)} but this registry is ${JSON.stringify(label)}`,
    };
  }

  /** A registration: deny rules first (in order), then the allow list, then the environment label. */
  check(
    namespace: string,
    service: string,
    address: string,
    metadata: Readonly<Record<string, string>> | undefined,
  ): Verdict {
    const ip = ipOf(address);
    for (const r of this.#deny) {
      if (matches(r, namespace, service, ip)) {
        return {
          ok: false,
          code: 'ACCESS_DENIED',
          rule: r.label,
          message: `registration of ${namespace}/${service} at ${address} is refused by access rule ${r.label}`,
        };
      }
    }
    if (this.#allow.length > 0 && !this.#allow.some((r) => matches(r, namespace, service, ip))) {
      return {
        ok: false,
        code: 'ACCESS_DENIED',
        rule: 'allow',
        message: `no allow rule admits ${namespace}/${service} at ${address}`,
      };
    }
    return this.checkEnvironment(metadata);
  }
}

function compile(r: AccessRule, position: string): CompiledRule {
  let range: BlockList | null = null;
  if (r.cidr !== undefined) {
    const c = parseCidr(r.cidr);
    // parseAccessRules has checked it; a document that skipped it cannot be compiled.
    if (c === null) throw new Error(`${position}.cidr is not a valid range`);
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

function matches(
  r: CompiledRule,
  namespace: string,
  service: string,
  ip: { address: string; family: 'ipv4' | 'ipv6' } | null,
): boolean {
  if (r.namespace !== null && r.namespace !== namespace) return false;
  if (r.service !== null && r.service !== service) return false;
  if (r.range !== null) return ip !== null && r.range.check(ip.address, ip.family);
  return true;
}

/** The address as an IP, if it is one (brackets and IPv4-mapped IPv6 undone); null for a host name. */
function ipOf(address: string): { address: string; family: 'ipv4' | 'ipv6' } | null {
  const a = address.replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return { address: mapped[1]!, family: 'ipv4' };
  const v = isIP(a);
  return v === 4 ? { address: a, family: 'ipv4' } : v === 6 ? { address: a, family: 'ipv6' } : null;
}

/** The rules in force: null when none are stored, 'invalid' when the stored document cannot be read. */
export type RulesInForce = CompiledRules | 'invalid' | null;

// Derived data only (compiled from an immutable stored object), so caching it cannot make
// replicas differ: a reload builds new stored objects and compiles again.
const compiled = new WeakMap<StoredAccessRules, CompiledRules | 'invalid'>();

/**
 * Compiles the stored rules, once per stored object. 'invalid' only for a document this
 * build cannot read: stored by a build with other rules (version skew) or loaded from
 * storage written that way; setAccessRules itself only stores documents parseAccessRules
 * accepts. Every replica of one build reads the same bytes the same way.
 */
export function rulesInForce(stored: StoredAccessRules | null): RulesInForce {
  if (stored === null) return null;
  let c = compiled.get(stored);
  if (c === undefined) {
    const parsed = parseAccessRules(stored.rules);
    c = parsed.ok ? new CompiledRules(parsed.value) : 'invalid';
    compiled.set(stored, c);
  }
  return c;
}

/**
 * The verdict on a register: null to admit, or the refusal apply answers with. Used by apply
 * (authoritative) and by the server's fast path (the same function over its local state).
 * The environment is checked on the metadata the instance will have: a register that leaves
 * metadata out keeps the existing instance's (`prev`).
 */
export function registerVerdict(
  stored: StoredAccessRules | null,
  c: Register,
  prev: Instance | undefined,
): CommandError | null {
  return refusal(stored, (rules) => rules.check(c.namespace, c.service, c.address, c.metadata ?? prev?.metadata));
}

/**
 * The verdict on an update: only a new metadata map is judged (the environment label). An
 * update cannot move an instance: namespace, service and address are not patchable.
 */
export function updateVerdict(stored: StoredAccessRules | null, c: Update): CommandError | null {
  const metadata = c.patch.metadata;
  if (metadata === undefined) return null;
  return metadataVerdict(stored, metadata, 'patch.metadata.environment');
}

/** A command that replaces an instance's metadata (update, setCheckHealth): its environment against the label in force. */
export function metadataVerdict(
  stored: StoredAccessRules | null,
  metadata: Readonly<Record<string, string>>,
  field: string,
): CommandError | null {
  return refusal(stored, (rules) => rules.checkEnvironment(metadata, field));
}

function refusal(stored: StoredAccessRules | null, judge: (rules: CompiledRules) => Verdict): CommandError | null {
  const rules = rulesInForce(stored);
  if (rules === null) return null;
  if (rules === 'invalid') {
    return Object.freeze({
      ok: false,
      code: 'ACCESS_RULES_INVALID',
      message:
        'the stored access rules cannot be read by this build of the registry; an admin must PUT /v1/access-rules again',
    });
  }
  const v = judge(rules);
  if (v.ok) return null;
  return v.code === 'ACCESS_DENIED'
    ? Object.freeze({ ok: false, code: v.code, message: v.message, rule: v.rule })
    : Object.freeze({ ok: false, code: v.code, message: v.message, field: v.field });
}
