/**
 * The register model: one register per key, starting at null, with read / write / cas.
 *
 *   read   invoke value null;          ok value = the value read (null when absent)
 *   write  invoke value = the value;   ok value ignored
 *   cas    invoke value [expected, new]; ok = it took effect; fail = comparison failed
 *
 * Values are arbitrary JSON compared by canonical form. Internally each distinct value is
 * interned as a small integer, so a state is a number.
 */
import { canonicalJson } from '../canonical.js';
import type { HistoryEvent, HistoryOp } from '../history.js';
import { type DecodedOp, Interner, type Model, mix32, type StepResult } from './model.js';

export type RegisterInput =
  | { readonly f: 'read' }
  | { readonly f: 'write'; readonly value: number }
  | { readonly f: 'cas'; readonly expected: number; readonly next: number };

/** The interned value a read returned; or OK_OUTPUT (write/cas known to have succeeded); or UNKNOWN_OUTPUT. */
export type RegisterOutput = number;
export const OK_OUTPUT = -1;
export const UNKNOWN_OUTPUT = -2;

const NULL_ID = 0;
const FAIL: StepResult<number> = { ok: false };
const READ: RegisterInput = { f: 'read' };

export function createRegisterModel(): Model<number, RegisterInput, RegisterOutput> {
  const values = new Interner('null');
  const intern = (v: unknown): number => values.id(canonicalJson(v));
  return {
    name: 'register',
    init: () => NULL_ID,
    step(state, input, output) {
      switch (input.f) {
        case 'read':
          return output === UNKNOWN_OUTPUT || output === state ? { ok: true, next: state } : FAIL;
        case 'write':
          return { ok: true, next: input.value };
        case 'cas':
          if (state === input.expected) return { ok: true, next: input.next };
          return output === UNKNOWN_OUTPUT ? { ok: true, next: state } : FAIL;
      }
    },
    equal: (a, b) => a === b,
    hash: (s) => mix32(s),
    partition: (op: HistoryOp) => canonicalJson(op.key),
    validate(e: HistoryEvent) {
      if (e.f !== 'read' && e.f !== 'write' && e.f !== 'cas') {
        return `the register model has no operation "${e.f}" (expected read, write or cas)`;
      }
      if (e.type === 'invoke') {
        if (e.f === 'write' && e.value === undefined) return 'a write invoke needs the "value" written';
        if (e.f === 'cas' && !(Array.isArray(e.value) && e.value.length === 2)) {
          return `a cas invoke needs "value": [expected, new], got ${JSON.stringify(e.value) ?? 'nothing'}`;
        }
      } else if (e.type === 'ok' && e.f === 'read' && e.value === undefined) {
        return 'a read ok needs the "value" read (null when absent)';
      }
      return undefined;
    },
    decode(op: HistoryOp, known: boolean): DecodedOp<RegisterInput, RegisterOutput> | null {
      switch (op.f) {
        case 'read':
          return known ? { input: READ, output: intern(op.output) } : null;
        case 'write':
          return { input: { f: 'write', value: intern(op.input) }, output: known ? OK_OUTPUT : UNKNOWN_OUTPUT };
        case 'cas': {
          const [expected, next] = op.input as [unknown, unknown];
          return {
            input: { f: 'cas', expected: intern(expected), next: intern(next) },
            output: known ? OK_OUTPUT : UNKNOWN_OUTPUT,
          };
        }
        default:
          throw new Error(`register model: unexpected operation "${op.f}"`);
      }
    },
    reachableStates(inputs, limit) {
      const states = new Set<number>([NULL_ID]);
      for (const input of inputs) {
        if (input.f === 'write') states.add(input.value);
        else if (input.f === 'cas') states.add(input.next);
        if (states.size > limit) return undefined;
      }
      return [...states];
    },
    readOnly: (input) => input.f === 'read' || (input.f === 'cas' && input.expected === input.next),
  };
}
