/** The JSON document a `set` command is given, from a file or standard input. */
import { readFile } from 'node:fs/promises';
import { UsageError } from './flags.js';

/**
 * Reads a JSON object from `file` (`-`: standard input) for a `set` command. The server
 * checks the document itself; this only refuses what cannot be `what` at all (UsageError).
 */
export async function readJsonDocument(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new UsageError(`${file} must hold a JSON object (${what})`);
  return doc as Record<string, unknown>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
