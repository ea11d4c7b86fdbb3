/**
 * Rollcall's linearizability checker: a test kit for Jepsen-style histories.
 *
 *   import { parseHistory, checkHistory } from '../src/lincheck/index.js';
 *   const result = checkHistory(parseHistory(text), { model: 'register' });
 *
 * See docs/linearizability.md.
 */

export { canonicalJson, jsonEqual } from './canonical.js';
export type { CheckOptions, CheckResult, FailureReport, ReportedOp } from './check.js';
export { checkHistory, parseHistory } from './check.js';
export type { CliResult } from './cli.js';
export { runCli, USAGE } from './cli.js';
export type { EventType, HistoryEvent, HistoryOp, Outcome } from './history.js';
export { HistoryParseError, pairOperations } from './history.js';
export type {
  AnyModel,
  DecodedOp,
  Model,
  ModelName,
  RegisterInput,
  RegisterOutput,
  RegistryInput,
  RegistryOutput,
  StepResult,
} from './models/index.js';
export { createModel, createRegisterModel, createRegistryModel, isModelName, MODEL_NAMES } from './models/index.js';
export { bruteForceLinearizable } from './oracle.js';
export type { SearchOp, SearchOptions, SearchResult, SearchVerdict } from './search.js';
export { searchLinearization } from './search.js';
export type { PlannedOp, RandomPlanOptions, SequentialSpec } from './simulate.js';
export { randomPlan, registerSpec, registrySpec, seededRandom, simulateHistory, specFor } from './simulate.js';
