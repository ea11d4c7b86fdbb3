/**
 * `rollcall rules [get] | set FILE`: read and replace the admin-set access rules and
 * environment label (docs/api.md "Access rules"), the way `rollcall health policy` does the
 * health policy (health-policy.ts).
 */
import type { AccessRule, AccessRulesDoc } from '../../client/index.js';
import { type Command, withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { GLOBAL_HELP, integer, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { readJsonDocument } from './json-document.js';
import { jsonOut } from './output.js';

const RULES_OPTIONS = {
  'if-revision': { type: 'string' },
} as const;

export const rules: Command = {
  name: 'rules',
  summary: 'read or replace the access rules and environment label (admin)',
  help: `Usage: rollcall rules [get]
       rollcall rules set FILE [--if-revision N]

  get   the access rules in force: the environment label, requireEnvironment, the allow
        and deny rules one per line, and the revision that stored them (0: never set,
        the defaults apply)
  set   replaces the rules with the JSON document in FILE ('-': stdin), through the log;
        fields left out take their defaults; refused whole, naming the field, when any
        part is wrong. Registrations are judged by the rules in force when they are
        applied (docs/api.md "Access rules")

Options:
  --if-revision N   compare-and-set: only if the stored rules are still at revision N
                    (0: only if none are stored) (set)

${GLOBAL_HELP}

Examples:
  rollcall rules
  rollcall rules get --json
  rollcall rules set rules.json --if-revision 57
  echo '{"environment":"prod","deny":[{"name":"quarantine","cidr":"10.66.0.0/16"}]}' | rollcall rules set -
`,
  async run(argv, io) {
    const { values, positionals, globals } = parse(argv, RULES_OPTIONS, true);
    if (globals.help) return help(io, this);
    const [sub = 'get', file, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    switch (sub) {
      case 'get': {
        if (file !== undefined) throw new UsageError(`unexpected ${JSON.stringify(file)}`);
        if (values['if-revision'] !== undefined) throw new UsageError(`--if-revision belongs to 'rules set'`);
        return withClient(io, globals, async (client) => {
          const r = await client.accessRules();
          if (globals.json) jsonOut(io, r);
          else
            io.out(
              (r.rulesRevision === 0
                ? 'no rules stored: the defaults apply\n'
                : `rules stored at revision ${r.rulesRevision}:\n`) + describeRules(r.rules),
            );
          return EXIT.OK;
        });
      }
      case 'set': {
        if (file === undefined) throw new UsageError('rules set needs a FILE (or - for stdin)');
        const expectedRevision = integer(values['if-revision'], 'if-revision', 0, Number.MAX_SAFE_INTEGER);
        const doc = await readJsonDocument(file, 'the rules document');
        return withClient(io, globals, async (client) => {
          const r = await client.setAccessRules(doc, expectedRevision === undefined ? {} : { expectedRevision });
          if (globals.json) jsonOut(io, r);
          else io.out(`rules stored at revision ${r.rulesRevision}:\n${describeRules(r.rules)}`);
          return EXIT.OK;
        });
      }
      default:
        throw new UsageError(`unknown rules subcommand ${JSON.stringify(sub)} (get, set)`);
    }
  },
};

/** The human listing: the environment label, requireEnvironment, then one line per rule. */
export function describeRules(doc: AccessRulesDoc): string {
  const lines = [`environment: ${doc.environment ?? '-'}`, `requireEnvironment: ${String(doc.requireEnvironment)}`];
  const list = (kind: 'allow' | 'deny', rules: readonly AccessRule[]) => {
    if (rules.length === 0) lines.push(`${kind}: (none)`);
    for (const [i, r] of rules.entries()) {
      lines.push(`${kind}[${i}]${r.name === undefined ? '' : ` (${r.name})`}: ${describeRule(r)}`);
    }
  };
  list('allow', doc.allow);
  list('deny', doc.deny);
  return `${lines.join('\n')}\n`;
}

function describeRule(r: AccessRule): string {
  return (['namespace', 'service', 'cidr'] as const)
    .filter((k) => r[k] !== undefined)
    .map((k) => `${k}=${r[k]!}`)
    .join(' ');
}
