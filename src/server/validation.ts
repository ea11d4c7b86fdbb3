/**
 * Request validation: JSON bodies are checked strictly (a string is not a number, a
 * scalar is not a list: `"port": "80"` or `"tags": "a"` is a 400 naming the field), while
 * path and query parameters, which arrive as text, are coerced to the types their schema
 * names (`?index=12` is the integer 12, `?includeDisabled=true` a boolean). Fastify's
 * default compiler coerces every part alike, so this installs two Ajv instances.
 */
import { Ajv, type Options } from 'ajv';
import type { FastifyInstance } from 'fastify';

const BASE: Options = {
  useDefaults: true,
  removeAdditional: false,
  // Never true: with all errors collected, a crafted body can cost a lot of CPU.
  allErrors: false,
  addUsedSchema: false,
  strict: false,
};

export function installValidation(app: FastifyInstance): void {
  const body = new Ajv({ ...BASE, coerceTypes: false });
  const text = new Ajv({ ...BASE, coerceTypes: 'array' });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema));
}
