/**
 * Canonical JSON: one string per JSON value, so that deep equality of values is string
 * equality. Object keys are sorted (recursively); everything else follows JSON.stringify
 * (so `undefined` members vanish, `-0` prints as `0`, non-finite numbers print as `null`).
 */

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function sortKeys(_key: string, value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) sorted[k] = value[k];
  return sorted;
}

/** The canonical JSON text of a value (`undefined` is treated as `null`). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value === undefined ? null : value, sortKeys) ?? 'null';
}

/** Deep equality of two JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

export { isPlainObject };
