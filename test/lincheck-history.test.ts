import { describe, expect, it } from 'vitest';
import {
  checkHistory,
  type HistoryEvent,
  HistoryParseError,
  pairOperations,
  parseHistory,
} from '../src/lincheck/index.js';

const lines = (...events: object[]): string => events.map((e) => JSON.stringify(e)).join('\n');

function parseError(text: string, model?: 'register' | 'registry'): HistoryParseError {
  try {
    parseHistory(text, model === undefined ? {} : { model });
  } catch (err) {
    expect(err).toBeInstanceOf(HistoryParseError);
    return err as HistoryParseError;
  }
  throw new Error('expected a HistoryParseError');
}

describe('parseHistory', () => {
  it('parses JSON lines, skipping blank lines', () => {
    const text = `${lines({ process: 0, type: 'invoke', f: 'write', key: 'k', value: 1 })}\n\n  \n${lines({
      process: 0,
      type: 'ok',
      f: 'write',
      key: 'k',
      value: 1,
      time: 12,
    })}\n`;
    const events = parseHistory(text);
    expect(events).toHaveLength(2);
    expect(events[1]).toMatchObject({ type: 'ok', time: 12 });
  });

  it('names the line of invalid JSON', () => {
    const e = parseError(
      `${lines({ process: 0, type: 'invoke', f: 'read', key: 'k', value: null })}\n{"process": 0, "type": "ok",`,
    );
    expect(e.line).toBe(2);
    expect(e.problem).toMatch(/invalid JSON/);
    expect(e.message).toMatch(/^line 2: /);
  });

  it.each([
    [{ type: 'invoke', f: 'read' }, /"process"/],
    [{ process: 1.5, type: 'invoke', f: 'read' }, /"process"/],
    [{ process: 0, type: 'start', f: 'read' }, /"type"/],
    [{ process: 0, type: 'invoke' }, /"f"/],
    [{ process: 0, type: 'invoke', f: 'read', key: { a: 1 } }, /"key"/],
    [{ process: 0, type: 'invoke', f: 'read', time: 'noon' }, /"time"/],
    [[1, 2], /JSON object/],
  ])('rejects a bad envelope %j', (event, problem) => {
    const e = parseError(`\n${JSON.stringify(event)}`);
    expect(e.line).toBe(2);
    expect(e.problem).toMatch(problem);
  });

  it('rejects a completion without invocation', () => {
    const e = parseError(lines({ process: 3, type: 'ok', f: 'read', key: 'k', value: 1 }));
    expect(e.line).toBe(1);
    expect(e.problem).toMatch(/no pending invocation/);
  });

  it('rejects a second invoke while the first is pending', () => {
    const e = parseError(
      lines(
        { process: 0, type: 'invoke', f: 'read', key: 'k', value: null },
        { process: 0, type: 'invoke', f: 'write', key: 'k', value: 2 },
      ),
    );
    expect(e.line).toBe(2);
    expect(e.problem).toMatch(/line 1 has not completed/);
  });

  it('rejects completions that do not match their invocation', () => {
    const invoke = { process: 0, type: 'invoke', f: 'write', key: 'k', value: 1 };
    expect(parseError(lines(invoke, { process: 0, type: 'ok', f: 'read', key: 'k', value: 1 })).problem).toMatch(/"f"/);
    expect(parseError(lines(invoke, { process: 0, type: 'ok', f: 'write', key: 'j', value: 1 })).problem).toMatch(
      /"key"/,
    );
  });

  it('lets a process invoke again after info', () => {
    const events = parseHistory(
      lines(
        { process: 0, type: 'invoke', f: 'write', key: 'k', value: 1 },
        { process: 0, type: 'info', f: 'write', key: 'k', value: 1 },
        { process: 0, type: 'invoke', f: 'read', key: 'k', value: null },
        { process: 0, type: 'ok', f: 'read', key: 'k', value: 1 },
      ),
    );
    const ops = pairOperations(events);
    expect(ops.map((o) => [o.f, o.outcome, o.invokeIndex, o.returnIndex])).toEqual([
      ['write', 'info', 0, 1],
      ['read', 'ok', 2, 3],
    ]);
  });

  it('pairs operations and marks missing completions pending', () => {
    const ops = pairOperations([
      { process: 0, type: 'invoke', f: 'write', key: 'k', value: 1 },
      { process: 1, type: 'invoke', f: 'cas', key: 'k', value: [1, 2] },
      { process: 1, type: 'fail', f: 'cas', key: 'k', value: [1, 2] },
      { process: 2, type: 'invoke', f: 'read' },
      { process: 2, type: 'ok', f: 'read', value: null },
    ]);
    expect(ops).toMatchObject([
      { id: 0, f: 'write', outcome: 'pending', returnIndex: null, input: 1 },
      { id: 1, f: 'cas', outcome: 'fail', returnIndex: 2 },
      { id: 2, f: 'read', key: null, outcome: 'ok', output: null, input: null },
    ]);
  });

  it('applies the register model rules when asked', () => {
    const cas = parseError(lines({ process: 0, type: 'invoke', f: 'cas', key: 'k', value: 3 }), 'register');
    expect(cas.problem).toMatch(/\[expected, new\]/);
    const f = parseError(`\n\n${lines({ process: 0, type: 'invoke', f: 'append', key: 'k', value: 3 })}`, 'register');
    expect(f.line).toBe(3);
    expect(f.problem).toMatch(/no operation "append"/);
    const read = parseError(
      lines({ process: 0, type: 'invoke', f: 'read', key: 'k' }, { process: 0, type: 'ok', f: 'read', key: 'k' }),
      'register',
    );
    expect(read.line).toBe(2);
    expect(read.problem).toMatch(/"value" read/);
    expect(parseError(lines({ process: 0, type: 'invoke', f: 'write', key: 'k' }), 'register').problem).toMatch(
      /value/,
    );
  });

  it('applies the registry model rules when asked', () => {
    const instance = { address: '10.0.0.1', port: 80, weight: 1, metadata: {} };
    const reg = (key: unknown, value: unknown): string =>
      lines({ process: 0, type: 'invoke', f: 'register', key, value });
    expect(parseError(reg('svc/only', instance), 'registry').problem).toMatch(/namespace\/service\/id/);
    expect(parseError(reg('ns/svc/1', { ...instance, port: 'http' }), 'registry').problem).toMatch(/port/);
    expect(parseError(reg('ns/svc/1', { address: 'a', port: 1, weight: 1 }), 'registry').problem).toMatch(/metadata/);
    const update = lines({ process: 0, type: 'invoke', f: 'update', key: 'ns/svc/1', value: { instance } });
    expect(parseError(update, 'registry').problem).toMatch(/expected/);
    const badGet = lines(
      { process: 0, type: 'invoke', f: 'get', key: 'ns/svc/1', value: null },
      { process: 0, type: 'ok', f: 'get', key: 'ns/svc/1', value: instance },
    );
    const e = parseError(badGet, 'registry');
    expect(e.line).toBe(2);
    expect(e.problem).toMatch(/version/);
  });

  it('without a model, model rules are checked by checkHistory, naming the file line', () => {
    const text = `\n\n${lines({ process: 0, type: 'invoke', f: 'cas', key: 'k', value: 'x' })}`;
    const events = parseHistory(text);
    expect(() => checkHistory(events)).toThrow(/^line 3: /);
  });

  it('checkHistory on a plain events array names the 1-based position', () => {
    const events: HistoryEvent[] = [
      { process: 0, type: 'invoke', f: 'read', key: 'k', value: null },
      { process: 1, type: 'ok', f: 'read', key: 'k', value: null },
    ];
    try {
      checkHistory(events);
      throw new Error('expected an error');
    } catch (err) {
      expect(err).toBeInstanceOf(HistoryParseError);
      expect((err as HistoryParseError).line).toBe(2);
    }
  });
});
