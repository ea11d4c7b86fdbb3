/**
 * The Raft core is a pure library: no I/O, no clocks, no global randomness, nothing
 * from src/. This test reads every file under raft/ and fails on a forbidden import
 * or global, so the rule cannot erode unnoticed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../raft');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const FORBIDDEN: [RegExp, string][] = [
  [/from ['"]node:/, 'a Node.js built-in module'],
  [/from ['"](fs|net|os|child_process|crypto|http|https|dgram|timers)['"]/, 'an I/O module'],
  [/from ['"]\.\.\/(\.\.\/)?src\//, 'code from src/'],
  [/\bDate\.now\(|\bnew Date\(/, 'the wall clock'],
  [/\bMath\.random\(/, 'global randomness'],
  [/\bprocess\./, 'the process'],
  [/\bset(Timeout|Interval|Immediate)\(/, 'timers'],
  [/\bperformance\.now\(/, 'a clock'],
];

describe('raft/ purity', () => {
  const all = files(root);
  it('has files to check', () => {
    expect(all.length).toBeGreaterThan(10);
  });
  for (const file of all) {
    it(`${path.relative(root, file)} does no I/O, reads no clock and draws no global randomness`, () => {
      const code = readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => !line.trim().startsWith('*') && !line.trim().startsWith('//'))
        .join('\n');
      for (const [pattern, what] of FORBIDDEN) {
        expect(pattern.test(code), `${path.relative(root, file)} uses ${what} (${pattern})`).toBe(false);
      }
    });
  }
});
