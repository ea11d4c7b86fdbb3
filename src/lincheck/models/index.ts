/**
 * The sequential specifications the checker searches against: the `Model` contract
 * (model.ts), the two built-in models (register.ts, registry.ts) and the table that
 * picks one by name (by-name.ts). See docs/linearizability.md, Models.
 */

export type { ModelName } from './by-name.js';
export { createModel, isModelName, MODEL_NAMES } from './by-name.js';
export type { AnyModel, DecodedOp, Model, StepResult } from './model.js';
export { mix32 } from './model.js';
export type { RegisterInput, RegisterOutput } from './register.js';
export { createRegisterModel } from './register.js';
export type { RegistryInput, RegistryOutput } from './registry.js';
export { createRegistryModel } from './registry.js';
