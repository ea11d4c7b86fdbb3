/**
 * Access rules over HTTP: the JSON schema of `PUT /v1/access-rules` and the server's use of
 * the rules document.
 *
 * The rules themselves (their format, what a rule matches, the verdict on a registration)
 * live in the state machine, src/registry/access.ts: `register` and `update` are judged when
 * they are applied, against the rules in force at that log position, identically on every
 * replica. That verdict is the only one: the server does not check registrations against its
 * own applied rules before proposing, because those may be stale (a follower behind the
 * leader, or a setAccessRules committed but not yet applied) and a local refusal would then
 * contradict the rules in force. A refusal costs one log entry; refusals are rare.
 */
import { CIDR_LENGTH, ENVIRONMENT_LENGTH, MAX_RULES, NAME_PATTERN, RULE_NAME_LENGTH, SCOPE_LENGTH, SCOPE_PATTERN } from '../registry/access.js';
import type { AccessRulesDoc } from '../registry/index.js';
import { parseAccessRules } from '../registry/index.js';

export type { AccessRule, AccessRulesDoc, Verdict } from '../registry/index.js';
export { CompiledRules, EMPTY_RULES, ENVIRONMENT_KEY, MAX_RULES, parseCidr } from '../registry/index.js';

const SCOPE = { type: 'string', minLength: 1, maxLength: SCOPE_LENGTH, pattern: SCOPE_PATTERN } as const;
const RULE = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', minLength: 1, maxLength: RULE_NAME_LENGTH, pattern: NAME_PATTERN },
    namespace: SCOPE,
    service: SCOPE,
    cidr: { type: 'string', minLength: 2, maxLength: CIDR_LENGTH },
  },
} as const;

/** JSON schema of `PUT /v1/access-rules` (the state machine checks the same, and the cidr syntax). */
export const accessRulesBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    environment: { anyOf: [{ type: 'string', minLength: 1, maxLength: ENVIRONMENT_LENGTH, pattern: NAME_PATTERN }, { type: 'null' }] },
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

/**
 * The canonical document (defaults filled in), as setAccessRules will store it; throws
 * RulesError naming the field. The same check the state machine makes, run here to refuse a
 * bad document without a round trip through the log.
 */
export function normalizeRules(body: Record<string, unknown>): AccessRulesDoc {
  const parsed = parseAccessRules(body);
  if (!parsed.ok) throw new RulesError(parsed.field, parsed.message);
  return parsed.value;
}
