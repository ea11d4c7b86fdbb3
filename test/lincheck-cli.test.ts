import { describe, expect, it } from 'vitest';
import { runCli } from '../src/lincheck/index.js';

const jsonl = (...events: object[]): string => `${events.map((e) => JSON.stringify(e)).join('\n')}\n`;

const GOOD = jsonl(
  { process: 0, type: 'invoke', f: 'write', key: 'k', value: 1, time: 1 },
  { process: 0, type: 'ok', f: 'write', key: 'k', value: 1, time: 2 },
  { process: 1, type: 'invoke', f: 'read', key: 'k', value: null, time: 3 },
  { process: 1, type: 'ok', f: 'read', key: 'k', value: 1, time: 4 },
);
const BAD = jsonl(
  { process: 0, type: 'invoke', f: 'write', key: 'k', value: 1 },
  { process: 0, type: 'ok', f: 'write', key: 'k', value: 1 },
  { process: 1, type: 'invoke', f: 'read', key: 'k', value: null },
  { process: 1, type: 'ok', f: 'read', key: 'k', value: 2 },
);
const REGISTRY = jsonl(
  {
    process: 0,
    type: 'invoke',
    f: 'register',
    key: 'ns/svc/1',
    value: { address: 'a', port: 1, weight: 1, metadata: {} },
  },
  { process: 0, type: 'ok', f: 'register', key: 'ns/svc/1', value: 1 },
);

const files: Record<string, string> = {
  'good.jsonl': GOOD,
  'bad.jsonl': BAD,
  'registry.jsonl': REGISTRY,
  'empty.jsonl': '',
};
const readFile = (path: string): string => {
  const text = files[path];
  if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${path}'`);
  return text;
};
const run = (...argv: string[]): { exitCode: number; out: Record<string, unknown>; line: string } => {
  const { exitCode, line } = runCli(argv, readFile);
  return { exitCode, line, out: JSON.parse(line) as Record<string, unknown> };
};

describe('check-history CLI (runCli)', () => {
  it('exits 0 and prints one JSON line for a linearizable history', () => {
    const r = run('good.jsonl');
    expect(r.exitCode).toBe(0);
    expect(r.line).not.toContain('\n');
    expect(r.out).toMatchObject({ linearizable: true, ops: 2, keys: 1, model: 'register' });
    expect(typeof r.out['elapsedMs']).toBe('number');
  });

  it('exits 1 with the failure for a non-linearizable history', () => {
    const r = run('bad.jsonl');
    expect(r.exitCode).toBe(1);
    expect(r.out).toMatchObject({
      linearizable: false,
      ops: 2,
      keys: 1,
      failure: { key: 'k', stuck: { f: 'read', returnLine: 4 } },
    });
  });

  it('an empty file is a linearizable empty history', () => {
    expect(run('empty.jsonl')).toMatchObject({ exitCode: 0, out: { linearizable: true, ops: 0, keys: 0 } });
  });

  it('--model registry (both spellings)', () => {
    expect(run('registry.jsonl', '--model', 'registry')).toMatchObject({ exitCode: 0, out: { model: 'registry' } });
    expect(run('--model=registry', 'registry.jsonl')).toMatchObject({ exitCode: 0, out: { model: 'registry' } });
    // The default model cannot read a registry history: that is bad input, naming the line.
    expect(run('registry.jsonl')).toMatchObject({ exitCode: 2, out: { line: 1 } });
  });

  it('exits 2 naming the line of a bad history line', () => {
    files['broken.jsonl'] = `${GOOD}\n{"process": 2, "type": "ok", "f": "read", "key": "k", "value": 1}\n`;
    const r = run('broken.jsonl');
    expect(r.exitCode).toBe(2);
    expect(r.out['line']).toBe(6);
    expect(r.out['error']).toMatch(/^line 6: .*no pending invocation/);
    files['garbage.jsonl'] = '{"process": 0, "type": "invoke", "f": "read", "key": "k"}\nnot json\n';
    expect(run('garbage.jsonl')).toMatchObject({ exitCode: 2, out: { line: 2 } });
  });

  it('exits 2 when the file cannot be read', () => {
    const r = run('missing.jsonl');
    expect(r.exitCode).toBe(2);
    expect(r.out['error']).toMatch(/cannot read missing\.jsonl: ENOENT/);
  });

  it.each([
    [[]],
    [['good.jsonl', 'bad.jsonl']],
    [['good.jsonl', '--model', 'queue']],
    [['good.jsonl', '--model']],
    [['--verbose', 'good.jsonl']],
    [['good.jsonl', '--timeout-ms', 'soon']],
  ])('exits 2 with usage on bad arguments %j', (argv) => {
    const r = run(...argv);
    expect(r.exitCode).toBe(2);
    expect(r.out['error']).toMatch(/usage: check-history FILE\.jsonl/);
  });

  it('accepts --timeout-ms', () => {
    expect(run('good.jsonl', '--timeout-ms', '5000')).toMatchObject({ exitCode: 0, out: { linearizable: true } });
  });
});
