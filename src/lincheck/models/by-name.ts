/** The built-in models, by name. */
import type { AnyModel } from './model.js';
import { createRegisterModel } from './register.js';
import { createRegistryModel } from './registry.js';

export const MODEL_NAMES = ['register', 'registry'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export function isModelName(s: string): s is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(s);
}

/** A fresh model instance (instances intern values, so use one per check). */
export function createModel(name: ModelName): AnyModel {
  return name === 'registry' ? createRegistryModel() : createRegisterModel();
}
