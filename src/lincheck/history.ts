/**
 * History parsing and validation: Jepsen-style JSON lines in, paired operations out.
 *
 * One event per line: {"process": 0, "type": "invoke"|"ok"|"fail"|"info", "f": "...",
 * "key": "...", "value": ..., "time": ns}. Line order is real-time order; `time` is only
 * informational. Every completion must follow an invoke of the same process with the same
 * `f` and `key`. A process may invoke again after an `info` completion; an invoke with no
 * completion at all is treated like `info` (outcome unknown).
 */

export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

export interface HistoryEvent {
  process: number | string;
  type: EventType;
  f: string;
  key?: string | number | null;
  value?: unknown;
  time?: number;
}

/** Thrown on malformed input; `line` is 1-based (for an events array: the event's position + 1). */
export class HistoryParseError extends Error {
  readonly line: number;
  readonly problem: string;
  constructor(line: number, problem: string) {
    super(`line ${line}: ${problem}`);
    this.name = 'HistoryParseError';
    this.line = line;
    this.problem = problem;
  }
}

/** How an operation ended. `pending`: the history holds no completion for it. */
export type Outcome = 'ok' | 'fail' | 'info' | 'pending';

/** One operation: an invoke paired with its completion (if any). */
export interface HistoryOp {
  /** Position in invoke order, 0-based. */
  id: number;
  process: number | string;
  f: string;
  /** The key as written in the history; null when the events carry none. */
  key: string | number | null;
  /** The invoke event's value (null when absent). */
  input: unknown;
  outcome: Outcome;
  /** The `ok` completion's value (null when absent or not `ok`). */
  output: unknown;
  /** Index of the invoke event in the events array (0-based). */
  invokeIndex: number;
  /** Index of the completion event, or null when there is none. */
  returnIndex: number | null;
}

/** Validates one event for a particular model; returns the problem, or undefined when fine. */
export type EventValidator = (event: HistoryEvent) => string | undefined;

const EVENT_TYPES: ReadonlySet<string> = new Set(['invoke', 'ok', 'fail', 'info']);

/** Line numbers of events that came from parseHistory (so later errors can name the line). */
const eventLines = new WeakMap<object, number>();

/** The 1-based source line of events[index]: its line in the parsed text, else index + 1. */
export function lineOf(events: readonly HistoryEvent[], index: number): number {
  const e = events[index];
  return (e !== undefined && eventLines.get(e)) || index + 1;
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Checks the envelope of one event (not model-specific); returns the problem or undefined. */
export function envelopeProblem(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    return `expected a JSON object, got ${describe(raw)}`;
  }
  const e = raw as Record<string, unknown>;
  const p = e['process'];
  if (!((typeof p === 'number' && Number.isSafeInteger(p)) || (typeof p === 'string' && p !== ''))) {
    return `"process" must be an integer or a non-empty string, got ${describe(p)}`;
  }
  if (typeof e['type'] !== 'string' || !EVENT_TYPES.has(e['type'])) {
    return `"type" must be one of invoke, ok, fail, info; got ${describe(e['type'])}`;
  }
  if (typeof e['f'] !== 'string' || e['f'] === '') {
    return `"f" must be a non-empty string, got ${describe(e['f'])}`;
  }
  const k = e['key'];
  if (k !== undefined && k !== null && typeof k !== 'string' && !(typeof k === 'number' && Number.isFinite(k))) {
    return `"key" must be a string or a number, got ${describe(k)}`;
  }
  const t = e['time'];
  if (t !== undefined && t !== null && !(typeof t === 'number' && Number.isFinite(t))) {
    return `"time" must be a number, got ${describe(t)}`;
  }
  return undefined;
}

function keyOf(e: HistoryEvent): string | number | null {
  return e.key === undefined ? null : e.key;
}

/**
 * Pairs invokes with completions. Validates envelopes, the optional model-specific rule, and
 * the pairing rules; throws HistoryParseError naming the offending line.
 * Returns the operations in invoke order.
 */
export function pairOperations(events: readonly HistoryEvent[], validate?: EventValidator): HistoryOp[] {
  const ops: HistoryOp[] = [];
  const pending = new Map<number | string, HistoryOp>();
  for (let i = 0; i < events.length; i++) {
    const e = events[i] as HistoryEvent;
    const problem = envelopeProblem(e) ?? validate?.(e);
    if (problem !== undefined) throw new HistoryParseError(lineOf(events, i), problem);
    const open = pending.get(e.process);
    if (e.type === 'invoke') {
      if (open !== undefined) {
        throw new HistoryParseError(
          lineOf(events, i),
          `process ${describe(e.process)} invokes "${e.f}" while its "${open.f}" from line ${lineOf(events, open.invokeIndex)} has not completed`,
        );
      }
      const op: HistoryOp = {
        id: ops.length,
        process: e.process,
        f: e.f,
        key: keyOf(e),
        input: e.value === undefined ? null : e.value,
        outcome: 'pending',
        output: null,
        invokeIndex: i,
        returnIndex: null,
      };
      ops.push(op);
      pending.set(e.process, op);
      continue;
    }
    if (open === undefined) {
      throw new HistoryParseError(
        lineOf(events, i),
        `"${e.type}" completion for process ${describe(e.process)}, which has no pending invocation`,
      );
    }
    if (open.f !== e.f) {
      throw new HistoryParseError(
        lineOf(events, i),
        `completion "f" is "${e.f}" but process ${describe(e.process)} invoked "${open.f}" (line ${lineOf(events, open.invokeIndex)})`,
      );
    }
    if (open.key !== keyOf(e)) {
      throw new HistoryParseError(
        lineOf(events, i),
        `completion "key" is ${describe(keyOf(e))} but process ${describe(e.process)} invoked key ${describe(open.key)} (line ${lineOf(events, open.invokeIndex)})`,
      );
    }
    open.outcome = e.type;
    open.returnIndex = i;
    if (e.type === 'ok') open.output = e.value === undefined ? null : e.value;
    pending.delete(e.process);
  }
  return ops;
}

/**
 * Parses JSON-lines text into events. Blank lines are skipped. Validates the envelope, the
 * pairing of invokes and completions and, when `validate` is given, the model's rules.
 * Throws HistoryParseError with the 1-based line number and the problem.
 */
export function parseEvents(text: string, validate?: EventValidator): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = (lines[n] as string).trim();
    if (line === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new HistoryParseError(n + 1, `invalid JSON (${(err as Error).message})`);
    }
    const problem = envelopeProblem(raw);
    if (problem !== undefined) throw new HistoryParseError(n + 1, problem);
    const event = raw as HistoryEvent;
    eventLines.set(event, n + 1);
    events.push(event);
  }
  pairOperations(events, validate);
  return events;
}
