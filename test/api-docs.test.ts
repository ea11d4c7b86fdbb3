/**
 * docs/api.md, the OpenAPI document and the code are kept in step: every route is
 * documented in both, every error code and metric in the guide, every parameter and body
 * field of every route named in it.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CATALOGUE } from '../src/server/errors.js';
import { type TestApp, testApp } from './api-helpers.js';

const guide = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');
let t: TestApp;
let doc: any;

beforeAll(async () => {
  t = await testApp();
  doc = (await t.req({ method: 'GET', url: '/openapi.json' })).body;
});
afterAll(async () => {
  await t?.close();
});

const operations = () =>
  Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method: method.toUpperCase(), op })),
  );

describe('API description', () => {
  it('documents every route the server registers', () => {
    expect(t.app.openapi.undocumentedRoutes()).toEqual([]);
    expect(doc.openapi).toBe('3.1.0');
    expect(operations().length).toBe(t.app.openapi.routeList().length);
    const ids = operations().map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('names every route in docs/api.md', () => {
    const missing = operations()
      .map((o) => `\`${o.method} ${o.path}\``)
      .filter((s) => !guide.includes(s));
    expect(missing).toEqual([]);
  });

  it('names every parameter and body field of every route in docs/api.md', () => {
    const missing: string[] = [];
    for (const { method, path, op } of operations()) {
      for (const p of op.parameters ?? []) {
        // Header names are case-insensitive (the guide writes If-Match, Last-Event-ID).
        const text = p.in === 'header' ? guide.toLowerCase() : guide;
        if (![`\`${p.name}\``, `\`${p.name}=`, `{${p.name}}`, `\`${p.name}:`].some((s) => text.includes(s)))
          missing.push(`${method} ${path}: ${p.in} ${p.name}`);
      }
      const body = op.requestBody?.content?.['application/json']?.schema;
      for (const field of Object.keys(body?.properties ?? {}))
        if (!guide.includes(`\`${field}\``) && !guide.includes(`"${field}"`))
          missing.push(`${method} ${path}: body ${field}`);
    }
    expect(missing).toEqual([]);
  });

  it('lists every error code with its status in docs/api.md, and only those', () => {
    for (const [code, { status }] of Object.entries(ERROR_CATALOGUE))
      expect(guide).toContain(`| \`${code}\` | ${status} |`);
    const documented = [...guide.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CATALOGUE).sort());
    // Every code a route documents is in the catalogue (the schema enum is the catalogue).
    expect(doc.components.schemas.Error.properties.error.properties.code.enum.sort()).toEqual(
      Object.keys(ERROR_CATALOGUE).sort(),
    );
  });

  it('describes every metric in docs/api.md', async () => {
    await t.req({ method: 'GET', url: '/healthz' });
    const text = (await t.req({ method: 'GET', url: '/metrics' })).text;
    const families = [...text.matchAll(/^# TYPE ([a-z_]+) /gm)].map((m) => m[1]!);
    expect(families.length).toBeGreaterThan(20);
    expect(families.filter((f) => !guide.includes(`\`${f}\``) && !guide.includes(`\`${f}{`))).toEqual([]);
  });
});
