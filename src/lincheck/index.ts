/**
 * Rollcall's linearizability checker: a test kit for Jepsen-style histories.
 *
 *   import { parseHistory, checkHistory } from '../src/lincheck/index.js';
 *   const result = checkHistory(parseHistory(text), { model: 'register' });
 *
 * See docs/linearizability.md.
 */
export { checkHistory, parseHistory } from './check.js';
export type { CheckOptions, CheckResult, FailureReport, ReportedOp } from './check.js';
export { HistoryParseError, pairOperations } from './history.js';
export type { EventType, HistoryEvent, HistoryOp, Outcome } from './history.js';
export type { AnyModel, DecodedOp, Model, StepResult } from './model.js';
export { createModel, isModelName, MODEL_NAMES } from './models.js';
export type { ModelName } from './models.js';
export { createRegisterModel } from './register-model.js';
export type { RegisterInput, RegisterOutput } from './register-model.js';
export { createRegistryModel } from './registry-model.js';
export type { RegistryInput, RegistryOutput } from './registry-model.js';
export { searchLinearization } from './search.js';
export type { SearchOp, SearchOptions, SearchResult, SearchVerdict } from './search.js';
export { runCli, USAGE } from './cli.js';
export type { CliResult } from './cli.js';
export { canonicalJson, jsonEqual } from './canonical.js';
export { simulateHistory, randomPlan, seededRandom, registerSpec, registrySpec, specFor } from './simulate.js';
export type { PlannedOp, RandomPlanOptions, SequentialSpec } from './simulate.js';
export { bruteForceLinearizable } from './oracle.js';
