/** `rollcall watch`: print changes as they happen, resuming across node failures. */
import type { WatchEvent, WatchOptions } from '../../client/index.js';
import { type Command, makeClient, untilSignal } from './command.js';
import { EXIT, reportError } from './exit-codes.js';
import { GLOBAL_HELP, integer, parse, UsageError } from './flags.js';
import { help, where } from './instances.js';

function line(ev: WatchEvent): string {
  switch (ev.type) {
    case 'put':
    case 'delete': {
      const i = ev.instance;
      const what = ev.type === 'put' ? (ev.previous ? 'update' : 'create') : 'delete';
      return `${String(ev.revision).padStart(8)}  ${what.padEnd(6)}  ${where(i)}  ${i.address}:${i.port}  cluster=${i.cluster} health=${i.health}${i.enabled ? '' : ' disabled'}`;
    }
    case 'reset':
      return `${String(ev.revision).padStart(8)}  ${ev.reason === 'initial' ? 'state' : 'relist'}  ${ev.instances.length} instance(s): ${ev.instances.map((i) => i.id).join(', ') || '-'}`;
    case 'progress':
      return `${String(ev.revision).padStart(8)}  progress`;
  }
}

export const watch: Command = {
  name: 'watch',
  summary: 'print changes as they happen',
  help: `Usage: rollcall watch --namespace NS [--service SVC [--cluster NAME]] [options]

Prints every change, in revision order, until Ctrl-C (or --count events). The stream
resumes on another node if its node fails, with no gap and no repeat.

Options:
  -n, --namespace NS     namespace to watch
  -s, --service SVC      only this service
  --cluster NAME         only this cluster of the service
  --from-revision N      start with the changes at revision N (resume after N-1)
  --initial              first print the service's current instances (needs --service)
  --progress             also print progress (idle streams' current revision)
  --count N              exit 0 after N events

${GLOBAL_HELP}

Output: one line per event (revision, create/update/delete, instance, address); with
--json, one JSON object per line: {"type","revision","instance",...}.

Examples:
  rollcall watch --namespace prod --service orders --initial
  rollcall watch -n prod --from-revision 1200 --json | jq -c 'select(.type=="delete")'
`,
  async run(argv, io) {
    const { values, globals } = parse(argv, {
      namespace: { type: 'string', short: 'n' },
      service: { type: 'string', short: 's' },
      cluster: { type: 'string' },
      'from-revision': { type: 'string' },
      initial: { type: 'boolean' },
      progress: { type: 'boolean' },
      count: { type: 'string' },
    });
    if (globals.help) return help(io, this);
    const count = integer(values.count, 'count', 1, Number.MAX_SAFE_INTEGER);
    const from = integer(values['from-revision'], 'from-revision', 1, Number.MAX_SAFE_INTEGER);
    const options: WatchOptions = {
      ...(values.namespace === undefined ? {} : { namespace: values.namespace }),
      ...(values.service === undefined ? {} : { service: values.service }),
      ...(values.cluster === undefined ? {} : { cluster: values.cluster }),
      ...(from === undefined ? {} : { fromRevision: from }),
      ...(values.initial ? { initial: true } : {}),
      ...(values.progress ? { progress: true } : {}),
    };
    const client = makeClient(globals);
    try {
      let w;
      try {
        w = client.watch(options);
      } catch (err) {
        throw new UsageError(err instanceof Error ? err.message : String(err));
      }
      void untilSignal().then(() => w.close());
      let n = 0;
      for await (const ev of w) {
        io.out(globals.json ? `${JSON.stringify(ev)}\n` : `${line(ev)}\n`);
        if (count !== undefined && ++n >= count) break;
      }
      return EXIT.OK;
    } catch (err) {
      return reportError(io, err, globals.json);
    } finally {
      await client.close();
    }
  },
};
