/** `rollcall cluster status | versions | add | remove | transfer`, and `rollcall health [policy ...]`. */
import type { ClusterStatus } from '../../client/index.js';
import { type Command, withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { GLOBAL_HELP, parse, UsageError } from './flags.js';
import { healthPolicy, POLICY_HELP, POLICY_OPTIONS } from './health-policy.js';
import { help } from './instances.js';
import { ago, jsonOut, table } from './output.js';

function statusTable(st: ClusterStatus): string {
  const rows = st.members.map((m) => [
    m.id + (m.id === st.leader ? '*' : ''),
    m.role,
    m.voter ? 'voter' : 'learner',
    m.term === null ? '-' : String(m.term),
    m.commitIndex === null ? '-' : String(m.commitIndex),
    m.appliedIndex === null ? '-' : String(m.appliedIndex),
    m.lag === null ? '-' : String(m.lag),
    m.id === st.node ? 'self' : m.connected === undefined ? '-' : m.connected ? 'yes' : 'NO',
    m.id === st.node ? '-' : ago(m.lastContactMs),
    m.http ?? '-',
  ]);
  const cluster = st.clusterId === undefined ? '' : `, cluster id ${st.clusterId ?? 'none'}`;
  const head = `leader ${st.leader ?? 'NONE'}${st.term === undefined ? '' : `, term ${st.term}`}${st.revision === undefined ? '' : `, revision ${st.revision}`}${cluster} (as seen by ${st.node ?? '?'})\n`;
  return head + table(['ID', 'ROLE', 'VOTE', 'TERM', 'COMMIT', 'APPLIED', 'LAG', 'CONNECTED', 'CONTACT', 'HTTP'], rows);
}

/**
 * `rollcall cluster versions --json`: a contract (docs/cli.md). `members[].stateMachineVersion`
 * is null for a member the answering node has never heard from.
 */
export interface VersionsReport {
  readonly node: string | null;
  readonly clusterVersion: number;
  readonly supportedVersion: number;
  /** A raise is due: every member supports more than the cluster runs (the leader proposes it). */
  readonly upgradePending: boolean;
  readonly members: readonly { readonly id: string; readonly stateMachineVersion: number | null }[];
}

export function versionsReport(st: ClusterStatus): VersionsReport {
  // A server from before cluster versions runs version 1 and reports nothing.
  const clusterVersion = st.clusterVersion ?? 1;
  const supportedVersion = st.supportedVersion ?? 1;
  return {
    node: st.node,
    clusterVersion,
    supportedVersion,
    upgradePending: supportedVersion > clusterVersion,
    members: st.members.map((m) => ({
      id: m.id,
      stateMachineVersion: m.stateMachineVersion === undefined ? 1 : m.stateMachineVersion,
    })),
  };
}

function versionsTable(r: VersionsReport): string {
  const head = `cluster version ${r.clusterVersion}; every member supports ${r.supportedVersion}${r.upgradePending ? ' (the leader raises it shortly)' : ''} (as seen by ${r.node ?? '?'})\n`;
  return (
    head +
    table(
      ['ID', 'BUILD'],
      r.members.map((m) => [m.id, m.stateMachineVersion === null ? '?' : String(m.stateMachineVersion)]),
    )
  );
}

export const cluster: Command = {
  name: 'cluster',
  summary: 'cluster status, add or remove a member, transfer leadership',
  help: `Usage: rollcall cluster status
       rollcall cluster versions
       rollcall cluster add --id ID --peer-address HOST:PORT
       rollcall cluster remove ID
       rollcall cluster transfer [--to ID]

  status     every member's role, term, commit and applied index, lag and last contact
             (as the answering node sees them; * marks the leader)
  versions   the state-machine version the cluster runs at, and the one each member's build
             implements (docs/operations.md, "Upgrades")
  add        adds a member: it joins as a learner and is promoted to voter once caught up.
             Start the new node first with 'rollcall server --join ...'
  remove     removes a member
  transfer   moves leadership to --to, or to the voter the leader picks (active, most caught up)

Options:
  --id ID                   the new member's node id (add)
  --peer-address HOST:PORT  the new member's peer (Raft) address (add)
  --to ID                   the new leader (transfer)

${GLOBAL_HELP}

Examples:
  rollcall cluster status
  rollcall cluster versions --json
  rollcall cluster add --id n4 --peer-address 127.0.0.1:7104
  rollcall cluster remove n4 --json
  rollcall cluster transfer --to n2
`,
  async run(argv, io) {
    const { values, positionals, globals } = parse(
      argv,
      { id: { type: 'string' }, 'peer-address': { type: 'string' }, to: { type: 'string' } },
      true,
    );
    if (globals.help) return help(io, this);
    const [sub, arg, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    switch (sub) {
      case 'status':
      case undefined:
        return withClient(io, globals, async (client) => {
          const st = await client.clusterStatus();
          if (globals.json) jsonOut(io, st);
          else io.out(statusTable(st));
          return EXIT.OK;
        });
      case 'versions':
        if (arg !== undefined) throw new UsageError(`unexpected ${JSON.stringify(arg)}`);
        return withClient(io, globals, async (client) => {
          const report = versionsReport(await client.clusterStatus());
          if (globals.json) jsonOut(io, report);
          else io.out(versionsTable(report));
          return EXIT.OK;
        });
      case 'add': {
        const id = values.id ?? arg;
        const peerAddress = values['peer-address'];
        if (id === undefined || peerAddress === undefined)
          throw new UsageError('cluster add needs --id and --peer-address');
        return withClient(io, globals, async (client) => {
          const r = await client.addMember({ id, peerAddress });
          if (globals.json) jsonOut(io, r);
          else io.out(`added ${id} (${peerAddress}) as a learner; it becomes a voter once caught up\n`);
          return EXIT.OK;
        });
      }
      case 'remove': {
        const id = values.id ?? arg;
        if (id === undefined) throw new UsageError('cluster remove needs a member id');
        return withClient(io, globals, async (client) => {
          const r = await client.removeMember(id);
          if (globals.json) jsonOut(io, r);
          else io.out(`removed ${id}\n`);
          return EXIT.OK;
        });
      }
      case 'transfer': {
        const to = values.to ?? arg;
        return withClient(io, globals, async (client) => {
          const r = await client.transferLeader(to);
          if (globals.json) jsonOut(io, r);
          else io.out(`leadership transferred to ${String(r.leader ?? to ?? '?')}\n`);
          return EXIT.OK;
        });
      }
      default:
        throw new UsageError(
          `unknown cluster subcommand ${JSON.stringify(sub)} (status, versions, add, remove, transfer)`,
        );
    }
  },
};

export const health: Command = {
  name: 'health',
  summary: 'check every node and the leader (exit 0 healthy, 8 degraded, 4 unavailable); health policy',
  help: `Usage: rollcall health
${POLICY_HELP}

Probes every endpoint (/healthz) and reads the cluster status. Exit 0 when every node
answers, a leader is known and every member is connected; 8 when the cluster works (a
leader is known) but something is wrong; 4 when there is no leader or no node answers.

${GLOBAL_HELP}

Examples:
  rollcall health
  rollcall health --endpoints http://10.0.0.1:8101,http://10.0.0.2:8101 --json
  until rollcall health >/dev/null; do sleep 1; done
  rollcall health policy get --namespace prod --service orders
  rollcall health policy set policy.json --if-revision 57
`,
  async run(argv, io) {
    const { globals, positionals, values } = parse(argv, POLICY_OPTIONS, true);
    if (globals.help) return help(io, this);
    const [sub, ...rest] = positionals;
    if (sub === 'policy') return healthPolicy(io, globals, rest, values);
    if (sub !== undefined) throw new UsageError(`unknown health subcommand ${JSON.stringify(sub)} (policy)`);
    const misplaced = Object.keys(POLICY_OPTIONS).find((k) => values[k as keyof typeof POLICY_OPTIONS] !== undefined);
    if (misplaced !== undefined) throw new UsageError(`--${misplaced} belongs to 'health policy'`);
    return withClient(io, globals, async (client) => {
      const h = await client.health(Math.min(2000, globals.timeoutMs));
      const code = h.healthy ? EXIT.OK : h.available ? EXIT.DEGRADED : EXIT.UNAVAILABLE;
      if (globals.json) {
        jsonOut(io, { status: h.healthy ? 'healthy' : h.available ? 'degraded' : 'unavailable', ...h });
        return code;
      }
      io.out(
        table(
          ['NODE', 'ID', 'STATUS', 'LATENCY'],
          h.nodes.map((n) => [
            n.url,
            n.id ?? '-',
            n.ok ? 'ok' : `DOWN (${n.error ?? '?'})`,
            n.latencyMs === null ? '-' : `${n.latencyMs}ms`,
          ]),
        ),
      );
      io.out(`leader: ${h.leader ?? 'NONE'}\n`);
      for (const p of h.problems) io.out(`problem: ${p}\n`);
      io.out(`${h.healthy ? 'healthy' : h.available ? 'degraded' : 'unavailable'}\n`);
      return code;
    });
  },
};
