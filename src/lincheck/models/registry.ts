/**
 * The registry model: service instances keyed by "namespace/service/id", each independent.
 *
 *   register    invoke value = instance {address, port, weight, metadata}
 *               (upsert) ok value = the new version (integer), or null when not observed
 *   unregister  invoke value null; ok value = whether it existed (boolean), or null
 *   get         invoke value null; ok value = the instance with its version, or null
 *   update      invoke value {expected: version, instance: {...}}: compare-and-set by version;
 *               ok value = the new version, or null; fail = version mismatch / absent
 *
 * Versions start at 1 when an instance is created and grow by 1 on every change (a register
 * of an existing instance and a successful update), as the server does: a register or update
 * that leaves every field as it was changes nothing and keeps the version. Unregister removes
 * the instance, so a later register creates it again at version 1. A get compares address, port, weight,
 * metadata (as canonical JSON) and version; other fields are ignored.
 *
 * Internally a state is a number: 0 = absent, else fieldsId * 2^24 + version.
 */
import { canonicalJson, isPlainObject } from '../canonical.js';
import type { HistoryEvent, HistoryOp } from '../history.js';
import { type DecodedOp, Interner, type Model, mix32, type StepResult } from './model.js';

export type RegistryInput =
  | { readonly f: 'register'; readonly fields: number }
  | { readonly f: 'unregister' }
  | { readonly f: 'get' }
  | { readonly f: 'update'; readonly expected: number; readonly fields: number };

/**
 * register/update: the new version, or NOT_REPORTED; unregister: 1 existed / 0 did not, or
 * NOT_REPORTED; get: the state read (encoded like a state; IMPOSSIBLE if unrepresentable).
 * UNKNOWN_OUTPUT when the outcome is unknown.
 */
export type RegistryOutput = number;
export const NOT_REPORTED = -1;
export const UNKNOWN_OUTPUT = -2;
const IMPOSSIBLE = -3;

const ABSENT = 0;
const VERSION_SPACE = 2 ** 24;
const FAIL: StepResult<number> = { ok: false };
const GET: RegistryInput = { f: 'get' };
const UNREGISTER: RegistryInput = { f: 'unregister' };

export const REGISTRY_OPERATIONS = ['register', 'unregister', 'get', 'update'] as const;

const KEY_PATTERN = /^[^/]+\/[^/]+\/.+$/;

function version(state: number): number {
  return state % VERSION_SPACE;
}

function fieldsOf(state: number): number {
  return Math.floor(state / VERSION_SPACE);
}

/** The version a write of `fields` leaves on `state` (which is not absent). */
function nextVersion(state: number, fields: number): number {
  return fieldsOf(state) === fields ? version(state) : version(state) + 1;
}

function encode(fields: number, v: number): number {
  if (v >= VERSION_SPACE) throw new Error(`registry model: version ${v} is too large`);
  return fields * VERSION_SPACE + v;
}

function isVersion(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
}

/** The problem with an instance value, or undefined. */
function instanceProblem(v: unknown, what: string, withVersion: boolean): string | undefined {
  if (!isPlainObject(v)) return `${what} must be an instance object, got ${JSON.stringify(v) ?? 'nothing'}`;
  if (typeof v['address'] !== 'string') return `${what}.address must be a string`;
  const port = v['port'];
  if (!(typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 65535)) {
    return `${what}.port must be an integer 0..65535`;
  }
  if (!(typeof v['weight'] === 'number' && Number.isFinite(v['weight']))) return `${what}.weight must be a number`;
  if (!isPlainObject(v['metadata'])) return `${what}.metadata must be an object`;
  if (withVersion && !isVersion(v['version'])) return `${what}.version must be an integer >= 1`;
  return undefined;
}

function fieldsText(v: unknown): string {
  const i = v as Record<string, unknown>;
  return canonicalJson({ address: i['address'], port: i['port'], weight: i['weight'], metadata: i['metadata'] });
}

function validateEvent(e: HistoryEvent): string | undefined {
  if (!(REGISTRY_OPERATIONS as readonly string[]).includes(e.f)) {
    return `the registry model has no operation "${e.f}" (expected register, unregister, get or update)`;
  }
  if (typeof e.key !== 'string' || !KEY_PATTERN.test(e.key)) {
    return `the registry model needs "key": "namespace/service/id", got ${JSON.stringify(e.key) ?? 'nothing'}`;
  }
  const v = e.value;
  if (e.type === 'invoke') {
    if (e.f === 'register') return instanceProblem(v, 'register value', false);
    if (e.f === 'update') {
      if (!isPlainObject(v) || !isVersion(v['expected'])) {
        return 'an update invoke needs "value": {"expected": version, "instance": {...}}';
      }
      return instanceProblem(v['instance'], 'update value.instance', false);
    }
    return undefined;
  }
  if (e.type !== 'ok') return undefined;
  switch (e.f) {
    case 'register':
    case 'update':
      return v === undefined || v === null || isVersion(v)
        ? undefined
        : `a ${e.f} ok value must be the new version (integer >= 1) or null, got ${JSON.stringify(v)}`;
    case 'unregister':
      return v === undefined || v === null || typeof v === 'boolean'
        ? undefined
        : `an unregister ok value must be true/false (whether it existed) or null, got ${JSON.stringify(v)}`;
    default:
      if (v === undefined) return 'a get ok needs the "value" read (the instance, or null when absent)';
      return v === null ? undefined : instanceProblem(v, 'get ok value', true);
  }
}

export function createRegistryModel(): Model<number, RegistryInput, RegistryOutput> {
  const fieldsTable = new Interner('');
  const ok = (next: number): StepResult<number> => ({ ok: true, next });
  const reported = (v: unknown): number => (isVersion(v) ? v : NOT_REPORTED);
  return {
    name: 'registry',
    init: () => ABSENT,
    step(state, input, output) {
      switch (input.f) {
        case 'register': {
          const v = state === ABSENT ? 1 : nextVersion(state, input.fields);
          return output >= 0 && output !== v ? FAIL : ok(encode(input.fields, v));
        }
        case 'unregister':
          return output >= 0 && output !== (state === ABSENT ? 0 : 1) ? FAIL : ok(ABSENT);
        case 'get':
          return output === UNKNOWN_OUTPUT || output === state ? ok(state) : FAIL;
        case 'update': {
          if (state !== ABSENT && version(state) === input.expected) {
            const v = nextVersion(state, input.fields);
            return output >= 0 && output !== v ? FAIL : ok(encode(input.fields, v));
          }
          return output === UNKNOWN_OUTPUT ? ok(state) : FAIL;
        }
      }
    },
    equal: (a, b) => a === b,
    hash: (s) => mix32(s),
    partition: (op: HistoryOp) => String(op.key),
    validate: validateEvent,
    decode(op: HistoryOp, known: boolean): DecodedOp<RegistryInput, RegistryOutput> | null {
      switch (op.f) {
        case 'register':
          return {
            input: { f: 'register', fields: fieldsTable.id(fieldsText(op.input)) },
            output: known ? reported(op.output) : UNKNOWN_OUTPUT,
          };
        case 'unregister':
          return {
            input: UNREGISTER,
            output: !known ? UNKNOWN_OUTPUT : typeof op.output === 'boolean' ? Number(op.output) : NOT_REPORTED,
          };
        case 'get': {
          if (!known) return null;
          if (op.output === null) return { input: GET, output: ABSENT };
          const read = op.output as Record<string, unknown>;
          const v = read['version'] as number;
          const output = v < VERSION_SPACE ? encode(fieldsTable.id(fieldsText(read)), v) : IMPOSSIBLE;
          return { input: GET, output };
        }
        case 'update': {
          const u = op.input as { expected: number; instance: unknown };
          return {
            input: { f: 'update', expected: u.expected, fields: fieldsTable.id(fieldsText(u.instance)) },
            output: known ? reported(op.output) : UNKNOWN_OUTPUT,
          };
        }
        default:
          throw new Error(`registry model: unexpected operation "${op.f}"`);
      }
    },
    reachableStates(inputs, limit) {
      const fields = new Set<number>();
      let changes = 0;
      for (const input of inputs) {
        if (input.f === 'register' || input.f === 'update') {
          fields.add(input.fields);
          changes++;
        }
      }
      if (1 + fields.size * changes > limit) return undefined;
      const states = [ABSENT];
      for (const f of fields) for (let v = 1; v <= changes; v++) states.push(encode(f, v));
      return states;
    },
    readOnly: (input) => input.f === 'get',
  };
}
