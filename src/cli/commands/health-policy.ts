/**
 * `rollcall health policy [get] | set FILE`: read and replace the admin-set health policy
 * (docs/health.md). Reached through `rollcall health policy ...` (cluster.ts).
 */
import { withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { type Globals, integer, UsageError } from './flags.js';
import { readJsonDocument } from './json-document.js';
import { type Io, jsonOut } from './output.js';

export const POLICY_OPTIONS = {
  namespace: { type: 'string' },
  service: { type: 'string' },
  'if-revision': { type: 'string' },
} as const;

export const POLICY_HELP = `       rollcall health policy [get] [--namespace NS --service SVC]
       rollcall health policy set FILE [--if-revision N]

  policy get   the stored health policy, its revision and the built-in defaults; with
               --namespace and --service, also what that service resolves to
  policy set   replaces the policy with the JSON document in FILE ('-': stdin), through
               the log; refused whole, naming the field, when any part is wrong

Options (policy):
  --namespace NS, --service SVC   show what this service resolves to (get)
  --if-revision N                 compare-and-set: only if the stored policy is still at
                                  revision N (0: only if none is stored) (set)`;

export async function healthPolicy(
  io: Io,
  globals: Globals,
  args: readonly string[],
  values: { namespace?: string; service?: string; 'if-revision'?: string },
): Promise<number> {
  const [sub = 'get', file, ...extra] = args;
  if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
  switch (sub) {
    case 'get': {
      if (file !== undefined) throw new UsageError(`unexpected ${JSON.stringify(file)}`);
      if ((values.namespace === undefined) !== (values.service === undefined))
        throw new UsageError('give --namespace and --service together');
      return withClient(io, globals, async (client) => {
        const p = await client.healthPolicy({
          ...(values.namespace ? { namespace: values.namespace } : {}),
          ...(values.service ? { service: values.service } : {}),
        });
        if (globals.json) jsonOut(io, p);
        else {
          io.out(
            p.policyRevision === 0
              ? 'no policy stored: the built-in defaults apply\n'
              : `policy stored at revision ${p.policyRevision}:\n${JSON.stringify(p.policy, null, 2)}\n`,
          );
          if (p.resolved)
            io.out(`${values.namespace}/${values.service} resolves to:\n${JSON.stringify(p.resolved, null, 2)}\n`);
        }
        return EXIT.OK;
      });
    }
    case 'set': {
      if (file === undefined) throw new UsageError('health policy set needs a FILE (or - for stdin)');
      const expectedRevision = integer(values['if-revision'], 'if-revision', 0, Number.MAX_SAFE_INTEGER);
      const policy = await readJsonDocument(file, 'the policy document');
      return withClient(io, globals, async (client) => {
        const r = await client.setHealthPolicy(policy, expectedRevision === undefined ? {} : { expectedRevision });
        if (globals.json) jsonOut(io, r);
        else
          io.out(
            r.changed
              ? `policy stored at revision ${r.policyRevision}\n`
              : `unchanged: the same policy is stored at revision ${r.policyRevision}\n`,
          );
        return EXIT.OK;
      });
    }
    default:
      throw new UsageError(`unknown health policy subcommand ${JSON.stringify(sub)} (get, set)`);
  }
}
