/**
 * checkHistory: validate and pair the events, split them per key (P-compositionality),
 * search each key, and explain the first key that fails.
 */
import { type HistoryEvent, type HistoryOp, lineOf, type Outcome, pairOperations, parseEvents } from './history.js';
import { type AnyModel, createModel, type ModelName } from './models/index.js';
import { searchLinearization } from './search.js';
import { cutWindow, shrinkFailure } from './window.js';

export interface CheckOptions {
  /** A built-in model by name (default "register"), or a model instance. */
  model?: ModelName | AnyModel;
  /** Give up after this long; the verdict is then "unknown" unless a key already failed. */
  timeoutMs?: number;
  /** Search steps the failure-window shrinking may spend (default 2,000,000). */
  explainSteps?: number;
  /** Wall-clock limit for the failure-window shrinking (default 5,000 ms). */
  explainTimeoutMs?: number;
}

/** One operation in a failure report. Indices are 0-based positions in the events; lines are 1-based. */
export interface ReportedOp {
  process: number | string;
  f: string;
  key: string | number | null;
  /** The invoke's value. */
  value: unknown;
  /** How the operation completed in the history ("pending": no completion). */
  type: Exclude<Outcome, 'fail'>;
  /** The ok completion's value (only for type "ok"). */
  output?: unknown;
  invokeIndex: number;
  returnIndex: number | null;
  invokeLine: number;
  returnLine: number | null;
  /** Present (true) when the window ignores this operation's outcome: it began before the window. */
  outcomeIgnored?: true;
}

export interface FailureReport {
  /** The key whose history has no linearization (as written in the history; null if none). */
  key: string | number | null;
  /** A one-sentence human summary. */
  message: string;
  /** The operation at whose completion the search gets stuck: the key's history before that
   *  completion linearizes (when `prefixLinearizes`), the history through it does not. */
  stuck: ReportedOp;
  prefixLinearizes: boolean;
  /** Operations of this key (fail operations excluded) completed before the stuck completion. */
  prefixOps: number;
  /** The smallest failing window found: no linearization exists for these operations, from
   *  any of `startStates` possible starting states. */
  window: {
    fromIndex: number;
    toIndex: number;
    fromLine: number;
    toLine: number;
    startStates: number;
    ops: ReportedOp[];
  };
  /** Whether the shrinking finished within its budget (else the window may not be minimal). */
  minimal: boolean;
}

export interface CheckResult {
  linearizable: boolean | 'unknown';
  model: string;
  /** Operations (invocations) in the history. */
  ops: number;
  /** Independent keys. */
  keys: number;
  elapsedMs: number;
  failure?: FailureReport;
}

function resolveModel(model: ModelName | AnyModel | undefined): AnyModel {
  if (model === undefined) return createModel('register');
  if (typeof model === 'string') {
    if (model !== 'register' && model !== 'registry') throw new Error(`unknown model "${String(model)}"`);
    return createModel(model);
  }
  return model;
}

/**
 * Parses JSON-lines text into events (blank lines skipped). Throws HistoryParseError with the
 * 1-based line number on bad JSON, a bad envelope, a completion without invocation, or, when
 * a model is given, a value that model cannot read.
 */
export function parseHistory(text: string, options: { model?: ModelName | AnyModel } = {}): HistoryEvent[] {
  if (options.model === undefined) return parseEvents(text);
  const model = resolveModel(options.model);
  return parseEvents(text, (e) => model.validate(e));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function reportOp(events: readonly HistoryEvent[], op: HistoryOp, known: boolean): ReportedOp {
  return {
    process: op.process,
    f: op.f,
    key: op.key,
    value: op.input,
    type: op.outcome === 'fail' ? 'info' : op.outcome,
    ...(op.outcome === 'ok' ? { output: op.output } : {}),
    invokeIndex: op.invokeIndex,
    returnIndex: op.returnIndex,
    invokeLine: lineOf(events, op.invokeIndex),
    returnLine: op.returnIndex === null ? null : lineOf(events, op.returnIndex),
    ...(!known && op.outcome === 'ok' ? { outcomeIgnored: true as const } : {}),
  };
}

function describeOp(op: ReportedOp): string {
  const value = op.value === null ? '' : ` ${JSON.stringify(op.value)}`;
  const output = op.type === 'ok' && op.output !== null ? ` -> ${JSON.stringify(op.output)}` : '';
  return `${op.f}${value}${output} by process ${JSON.stringify(op.process)} (lines ${op.invokeLine}-${op.returnLine ?? '?'})`;
}

/** Checks a history (events in real-time order) for linearizability. */
export function checkHistory(events: readonly HistoryEvent[], options: CheckOptions = {}): CheckResult {
  const started = performance.now();
  const model = resolveModel(options.model);
  const ops = pairOperations(events, (e) => model.validate(e));

  const partitions = new Map<string, { key: HistoryOp['key']; ops: HistoryOp[] }>();
  for (const op of ops) {
    const id = model.partition(op);
    let p = partitions.get(id);
    if (p === undefined) {
      p = { key: op.key, ops: [] };
      partitions.set(id, p);
    }
    if (op.outcome !== 'fail') p.ops.push(op); // a failed operation did not happen
  }

  const deadline = options.timeoutMs === undefined ? Infinity : started + options.timeoutMs;
  const result = (linearizable: boolean | 'unknown'): CheckResult => ({
    linearizable,
    model: model.name,
    ops: ops.length,
    keys: partitions.size,
    elapsedMs: round(performance.now() - started),
  });

  let timedOut = false;
  for (const p of partitions.values()) {
    const { search } = cutWindow(model, p.ops, 0, Infinity);
    const { verdict, frontier } = searchLinearization(model, search, { deadline });
    if (verdict === 'timeout') {
      timedOut = true;
      break;
    }
    if (verdict === 'not-linearizable') {
      const failure = explain(model, events, p.key, p.ops, frontier, options);
      return { ...result(false), failure };
    }
  }
  return result(timedOut ? 'unknown' : true);
}

function explain(
  model: AnyModel,
  events: readonly HistoryEvent[],
  key: HistoryOp['key'],
  ops: readonly HistoryOp[],
  frontier: number,
  options: CheckOptions,
): FailureReport {
  const s = shrinkFailure(model, ops, frontier, {
    maxSteps: options.explainSteps ?? 2_000_000,
    deadline: performance.now() + (options.explainTimeoutMs ?? 5_000),
    maxStartStates: 1024,
  });
  const stuck = reportOp(events, s.stuck, true);
  const windowOps = s.window.members.map((m) => reportOp(events, m.op, m.known));
  const prefixOps = ops.filter((op) => op.outcome === 'ok' && (op.returnIndex as number) < s.to).length;
  const fromLine = lineOf(events, s.from);
  const toLine = lineOf(events, s.to);
  const keyText = key === null ? 'the register' : `key ${JSON.stringify(key)}`;
  const message =
    `${keyText}: no linearization allows ${describeOp(stuck)}` +
    (s.prefixLinearizes ? `; everything on this key before line ${toLine} linearizes` : '') +
    `; smallest failing window: ${windowOps.length} operation${windowOps.length === 1 ? '' : 's'} on lines ${fromLine}-${toLine}` +
    (s.startStates > 1 ? `, from any of ${s.startStates} possible starting states` : '');
  return {
    key,
    message,
    stuck,
    prefixLinearizes: s.prefixLinearizes,
    prefixOps,
    window: {
      fromIndex: s.from,
      toIndex: s.to,
      fromLine,
      toLine,
      startStates: s.startStates,
      ops: windowOps,
    },
    minimal: s.minimal,
  };
}
