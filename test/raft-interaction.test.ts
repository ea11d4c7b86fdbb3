/**
 * Data-driven interaction tests of the Raft core, in the style of etcd-io/raft's: each
 * file in test/raft/testdata/ is a transcript of commands (add-nodes, campaign, tick,
 * stabilize, raft-state, ...; see raft/sim/interaction.ts) and the output each one must
 * print. A fresh InteractionEnv runs each file.
 *
 * When the core's behaviour changes on purpose, regenerate the transcripts and read the diff:
 *
 *   REWRITE=1 npx vitest run test/raft-interaction.test.ts
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseDirective, runDataDriven } from '../raft/sim/datadriven.js';
import { InteractionEnv } from '../raft/sim/interaction.js';

const dir = path.resolve(import.meta.dirname, 'raft/testdata');
const rewrite = process.env['REWRITE'] === '1';
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.txt'))
  .sort();

describe('Raft interaction transcripts (test/raft/testdata)', () => {
  it('has transcripts', () => {
    expect(files.length).toBeGreaterThan(0);
  });
  for (const file of files) {
    it(file, () => {
      const full = path.join(dir, file);
      const text = readFileSync(full, 'utf8');
      const env = new InteractionEnv();
      const result = runDataDriven(text, `test/raft/testdata/${file}`, (d) => env.handle(d));
      if (rewrite) {
        if (result.actual !== text) writeFileSync(full, result.actual);
        return;
      }
      const first = result.mismatches[0];
      const hint = first
        ? `${result.mismatches.length} block(s) differ, first at ${first.pos} (${first.cmd}); if the change is intended: REWRITE=1 npx vitest run test/raft-interaction.test.ts`
        : '';
      expect(result.actual, hint).toBe(text);
    });
  }
});

describe('the data-driven format', () => {
  it('parses bare arguments, values and lists', () => {
    expect(parseDirective('add-nodes 3 voters=(1,2,3) learners=(4 5) empty=() index=2', 'f:1')).toEqual({
      cmd: 'add-nodes',
      args: [
        { key: '3', vals: [] },
        { key: 'voters', vals: ['1', '2', '3'] },
        { key: 'learners', vals: ['4', '5'] },
        { key: 'empty', vals: [] },
        { key: 'index', vals: ['2'] },
      ],
    });
  });

  it('keeps comments, input lines and blank lines, and fences output that holds a blank line', () => {
    const text = '# head\n\necho a\ninput line\n----\nold\n\n# tail\n';
    const outputs = ['x\n\ny'];
    const r = runDataDriven(text, 'f', (d) => {
      expect(d.input).toBe('input line');
      return outputs.shift()!;
    });
    expect(r.actual).toBe('# head\n\necho a\ninput line\n----\n----\nx\n\ny\n----\n----\n\n# tail\n');
    expect(r.mismatches).toHaveLength(1);
    // The rewritten file reads back as what was written.
    const again = runDataDriven(r.actual, 'f', () => 'x\n\ny');
    expect(again.mismatches).toHaveLength(0);
    expect(again.actual).toBe(r.actual);
  });

  it('names the file and line of a command that fails', () => {
    expect(() =>
      runDataDriven('\nboom\n----\n', 'f.txt', () => {
        throw new Error('bad');
      }),
    ).toThrow('f.txt:2: boom: bad');
  });
});
