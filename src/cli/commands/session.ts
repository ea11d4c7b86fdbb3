/** `rollcall session open | keepalive | close`: sessions by hand (scripts, debugging). */
import { type Command, withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { duration, GLOBAL_HELP, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { jsonOut } from './output.js';

export const session: Command = {
  name: 'session',
  summary: 'open, keep alive or close a session',
  help: `Usage: rollcall session open --ttl DURATION
       rollcall session keepalive ID
       rollcall session close ID

Sessions make instances ephemeral: instances registered under a session id ('rollcall
register --session ID') go away when the session expires (no keepalive for its TTL) or is closed.
'rollcall register --ttl' does all of this for you.

  open        opens a session and prints its id
  keepalive   extends a session by its TTL; exit 3 if it has expired or was closed
  close       closes a session and removes its instances

Options:
  --ttl DURATION        session TTL for open, e.g. 10s (1s..24h)

${GLOBAL_HELP}

Examples:
  id=$(rollcall session open --ttl 30s)
  rollcall register -n prod -s orders --id o1 --address 10.0.0.2 --port 9000 --session "$id"
  rollcall session keepalive "$id"
  rollcall session close "$id" --json
`,
  async run(argv, io) {
    const { values, positionals, globals } = parse(argv, { ttl: { type: 'string' } }, true);
    if (globals.help) return help(io, this);
    const [sub, id, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    const needId = (): string => {
      if (id === undefined) throw new UsageError(`session ${sub ?? ''} needs a session id`);
      return id;
    };
    switch (sub) {
      case 'open': {
        if (values.ttl === undefined) throw new UsageError('session open needs --ttl');
        const ttlMs = duration(values.ttl, '--ttl');
        return withClient(io, globals, async (client) => {
          const s = await client.openSession(ttlMs);
          if (globals.json) jsonOut(io, s);
          else io.out(`${s.id}\n`);
          return EXIT.OK;
        });
      }
      case 'keepalive': {
        const sid = needId();
        return withClient(io, globals, async (client) => {
          const r = await client.keepalive(sid);
          if (globals.json) jsonOut(io, { id: sid, result: r });
          else
            io.out(
              r === 'ok'
                ? `session ${sid} kept alive\n`
                : r === 'expiring'
                  ? `session ${sid} is expiring; open a new one\n`
                  : '',
            );
          if (r === 'not-found') {
            if (!globals.json) io.err(`rollcall: no session ${sid} (expired or closed)\n`);
            return EXIT.NOT_FOUND;
          }
          return r === 'ok' ? EXIT.OK : EXIT.NOT_FOUND;
        });
      }
      case 'close': {
        const sid = needId();
        return withClient(io, globals, async (client) => {
          const r = await client.closeSession(sid);
          if (globals.json) jsonOut(io, r);
          else io.out(`closed session ${sid}: ${r.deleted} instance(s) removed (revision ${r.revision})\n`);
          return EXIT.OK;
        });
      }
      default:
        throw new UsageError(
          sub === undefined
            ? 'session needs a subcommand: open, keepalive or close'
            : `unknown session subcommand ${JSON.stringify(sub)}`,
        );
    }
  },
};
