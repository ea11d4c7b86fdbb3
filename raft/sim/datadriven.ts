/**
 * Data-driven tests in the format of cockroachdb/datadriven, as etcd-io/raft uses it for
 * its interaction tests. A file is a sequence of blocks:
 *
 *     # a comment
 *     command arg key=value key=(v1,v2)
 *     optional input lines
 *     ----
 *     expected output
 *     (a blank line ends the block)
 *
 * Output that itself holds blank lines is fenced by a doubled separator:
 *
 *     command
 *     ----
 *     ----
 *     output with
 *
 *     a blank line
 *     ----
 *     ----
 *
 * {@link runDataDriven} runs every block through a handler and returns the file as it
 * would read with the actual output in place of the expected one: a test compares that
 * with the file, or writes it back to accept new output (our tests do that when `REWRITE=1`).
 * Pure string work, no I/O: the caller reads and writes the file.
 */

/** One argument: `key` alone, `key=value`, or `key=(v1,v2,...)`. */
export interface CmdArg {
  readonly key: string;
  readonly vals: readonly string[];
}

export interface TestData {
  /** `file:line` of the command, for error messages. */
  readonly pos: string;
  readonly cmd: string;
  readonly args: readonly CmdArg[];
  /** Lines between the command and the separator. */
  readonly input: string;
  readonly expected: string;
}

interface Block extends TestData {
  /** Text of the file before this block (comments, blank lines) and the block's own header. */
  readonly header: string;
}

const SEPARATOR = '----';

/** Splits `command a b=c d=(e,f)` into the command and its arguments. */
export function parseDirective(line: string, pos: string): { cmd: string; args: CmdArg[] } {
  const tokens: string[] = [];
  const re = /\S+?=\([^)]*\)|\S+/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) tokens.push(m[0]);
  const cmd = tokens.shift();
  if (cmd === undefined) throw new Error(`${pos}: empty directive`);
  const args = tokens.map((t): CmdArg => {
    const eq = t.indexOf('=');
    if (eq < 0) return { key: t, vals: [] };
    const key = t.slice(0, eq);
    const value = t.slice(eq + 1);
    if (value.startsWith('(')) {
      if (!value.endsWith(')')) throw new Error(`${pos}: unterminated list in ${t}`);
      const inner = value.slice(1, -1).trim();
      return { key, vals: inner === '' ? [] : inner.split(/[,\s]+/) };
    }
    return { key, vals: [value] };
  });
  return { cmd, args };
}

function parseBlocks(text: string, file: string): { blocks: Block[]; trailer: string } {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const blocks: Block[] = [];
  let header: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      header.push(line);
      i++;
      continue;
    }
    const lineNo = i + 1;
    const pos = `${file}:${lineNo}`;
    const { cmd, args } = parseDirective(line, pos);
    header.push(line);
    i++;
    const input: string[] = [];
    while (i < lines.length && lines[i] !== SEPARATOR) input.push(lines[i++]!);
    if (i >= lines.length) throw new Error(`${pos}: ${cmd} has no ${SEPARATOR} separator`);
    i++; // the separator
    const expected: string[] = [];
    if (lines[i] === SEPARATOR) {
      // Fenced: everything up to a doubled separator, blank lines included.
      i++;
      while (i < lines.length && !(lines[i] === SEPARATOR && lines[i + 1] === SEPARATOR)) expected.push(lines[i++]!);
      if (i >= lines.length) throw new Error(`${pos}: unterminated ${SEPARATOR}/${SEPARATOR} output`);
      i += 2;
    } else {
      while (i < lines.length && lines[i]!.trim() !== '') expected.push(lines[i++]!);
    }
    blocks.push({ pos, cmd, args, input: input.join('\n'), expected: expected.join('\n'), header: header.join('\n') });
    header = [];
  }
  return { blocks, trailer: header.join('\n') };
}

/** The block as the file holds it, with `output` as its expected output. */
function formatBlock(b: Block, output: string): string {
  const body = output.replace(/\n+$/, '');
  const fenced = body.split('\n').some((l) => l.trim() === '') && body !== '';
  const head = b.input === '' ? b.header : `${b.header}\n${b.input}`;
  if (fenced) return `${head}\n${SEPARATOR}\n${SEPARATOR}\n${body}\n${SEPARATOR}\n${SEPARATOR}\n`;
  return `${head}\n${SEPARATOR}\n${body === '' ? '' : `${body}\n`}`;
}

export interface DataDrivenResult {
  /** The file with every block's actual output; equal to the input when all passed. */
  readonly actual: string;
  /** Blocks whose output differed, in order. */
  readonly mismatches: readonly {
    readonly pos: string;
    readonly cmd: string;
    readonly expected: string;
    readonly actual: string;
  }[];
}

/**
 * Runs every block of `text` through `handle`, in order (the handler keeps state from
 * block to block). A handler that throws stops the run: errors are for broken tests and
 * broken invariants, never for expected output.
 */
export function runDataDriven(text: string, file: string, handle: (d: TestData) => string): DataDrivenResult {
  const { blocks, trailer } = parseBlocks(text, file);
  const out: string[] = [];
  const mismatches: { pos: string; cmd: string; expected: string; actual: string }[] = [];
  for (const b of blocks) {
    let actual: string;
    try {
      actual = handle(b).replace(/\n+$/, '');
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message = `${b.pos}: ${b.cmd}: ${e.message}`;
      throw e;
    }
    if (actual !== b.expected) mismatches.push({ pos: b.pos, cmd: b.cmd, expected: b.expected, actual });
    out.push(formatBlock(b, actual));
  }
  const joined = out.join('');
  return { actual: trailer === '' ? joined : `${joined}${trailer}\n`, mismatches };
}
