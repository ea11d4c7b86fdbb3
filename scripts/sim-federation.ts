/**
 * The federation gossip layer at scale, in the deterministic simulator (virtual time, seeded
 * lossy network, in-process): 50 datacenters × 5 nodes by default.
 *
 *   npm run build && npm run sim:federation -- [--seed N] [--datacenters 50] [--nodes 5]
 *       [--loss 0.1] [--rounds 100] [--sweep 0,0.05,0.1,0.2,0.3] [--svg docs/federation-sim.svg] [--quick]
 *
 * One full run at --loss (bootstrap by single-seed joins, steady state, a new datacenter
 * joining, a datacenter killed and revived, a partition into two halves healed), then the
 * same without the partition at each --sweep loss rate. Prints the seed and the command that
 * replays it, a markdown table for docs/federation.md, and with --svg a chart of rounds
 * against loss. Exit code 1 if a false "unreachable" verdict was reached at 10 % loss or
 * less (the goal), or a wait timed out.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { type FederationSimReport, runFederationSim } from '../src/federation/sim/index.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    datacenters: { type: 'string' },
    nodes: { type: 'string' },
    loss: { type: 'string', default: '0.1' },
    rounds: { type: 'string' },
    sweep: { type: 'string' },
    svg: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});

const seed = Number(values.seed);
const datacenters = Number(values.datacenters ?? (values.quick ? 10 : 50));
const nodes = Number(values.nodes ?? (values.quick ? 3 : 5));
const loss = Number(values.loss);
const steadyRounds = Number(values.rounds ?? (values.quick ? 40 : 100));
const sweep = (values.sweep ?? (values.quick ? '0,0.1,0.2' : '0,0.05,0.1,0.2,0.3'))
  .split(',')
  .filter((s) => s !== '')
  .map(Number);
const replay = `npm run sim:federation -- --seed ${seed} --datacenters ${datacenters} --nodes ${nodes} --loss ${loss} --rounds ${steadyRounds} --sweep ${sweep.join(',')}`;

console.log(`seed ${seed}; replay: ${replay}`);
const started = Date.now();
const progress = (msg: string): void => {
  process.stderr.write(`  [${((Date.now() - started) / 1000).toFixed(0)} s] ${msg}\n`);
};

progress(`full run: ${datacenters} datacenters × ${nodes} nodes, ${loss * 100} % loss`);
const main = runFederationSim({ seed, datacenters, nodesPerDatacenter: nodes, loss, steadyRounds });
const points: FederationSimReport[] = [];
for (const p of sweep) {
  if (p === loss) {
    points.push(main);
    continue;
  }
  progress(`sweep: ${p * 100} % loss`);
  points.push(
    runFederationSim({ seed, datacenters, nodesPerDatacenter: nodes, loss: p, steadyRounds, skipPartition: true }),
  );
}
points.sort((a, b) => a.loss - b.loss);

const fmt = (v: number | null): string => (v === null ? 'timed out' : String(v));
console.log(`\n## Full run: ${datacenters} × ${nodes} nodes, ${loss * 100} % loss, seed ${seed}\n`);
console.log('| measure | value |');
console.log('|---|---|');
const rows: [string, string][] = [
  ['rounds until every node knew every datacenter (each joined through one node)', fmt(main.bootstrapRounds)],
  ['rounds until every node knew a new datacenter', fmt(main.newDatacenterKnownRounds)],
  ['… and saw it alive', fmt(main.newDatacenterAliveRounds)],
  [
    `false unreachable verdicts (members / datacenters) over ${main.virtualRounds} rounds`,
    `${main.total.falseMemberVerdicts} / ${main.total.falseDatacenterVerdicts}`,
  ],
  ['refutations by live members (suspicions answered)', String(main.total.refutations)],
  ['bytes sent per node per round (steady state)', String(main.bytesPerNodePerRound)],
  ['messages sent per node per round', String(main.messagesPerNodePerRound)],
  ['killed datacenter: rounds until every node saw it unreachable', fmt(main.killedUnreachableRounds)],
  ['revived datacenter: rounds until every node saw it alive', fmt(main.revivedAliveRounds)],
  ['partition into halves: rounds until each side saw the other unreachable', fmt(main.partitionDetectedRounds)],
  ['partition healed: rounds until every node saw every datacenter alive', fmt(main.partitionHealedRounds)],
];
for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);

console.log(
  `\n## Against packet loss (${datacenters} × ${nodes}, seed ${seed}; rows other than ${loss * 100} % skip the partition phase)\n`,
);
console.log(
  '| loss | join all (rounds) | new DC known | killed DC unreachable | revived DC alive | false verdicts (members / DCs) | refutations | bytes/node/round |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const p of points) {
  console.log(
    `| ${p.loss * 100} % | ${fmt(p.bootstrapRounds)} | ${fmt(p.newDatacenterKnownRounds)} | ${fmt(p.killedUnreachableRounds)} | ${fmt(p.revivedAliveRounds)} | ${p.total.falseMemberVerdicts} / ${p.total.falseDatacenterVerdicts} | ${p.total.refutations} | ${p.bytesPerNodePerRound} |`,
  );
}
for (const p of points)
  for (const line of p.falseVerdictLog) console.log(`false verdict at ${p.loss * 100} % loss: ${line}`);
console.log(`\n${JSON.stringify({ seed, wallSeconds: Math.round((Date.now() - started) / 1000), main })}`);

if (values.svg) {
  writeFileSync(
    values.svg,
    renderChart(points, `${datacenters} datacenters × ${nodes} nodes · seed ${seed} · 1 round = 1 probe interval`),
  );
  progress(`wrote ${values.svg}`);
}

// The goal (issue 18): no false verdict up to 10 % loss. Above that, verdicts are reported, not failed.
const failed = points.some(
  (p) =>
    (p.loss <= 0.1 && p.total.falseMemberVerdicts + p.total.falseDatacenterVerdicts > 0) ||
    [p.bootstrapRounds, p.newDatacenterKnownRounds, p.killedUnreachableRounds, p.revivedAliveRounds].includes(null),
);
if (failed) console.log(`FAILED (seed ${seed}); replay: ${replay}`);
process.exitCode = failed ? 1 : 0;

/** Rounds against loss: one line per measured wait. Linear axes, plain SVG, no dependencies. */
function renderChart(reports: readonly FederationSimReport[], subtitle: string): string {
  const series: { label: string; color: string; value: (r: FederationSimReport) => number | null }[] = [
    { label: 'new datacenter known by every node', color: '#1f77b4', value: (r) => r.newDatacenterKnownRounds },
    {
      label: 'all datacenters known (bootstrap by single-seed joins)',
      color: '#9467bd',
      value: (r) => r.bootstrapRounds,
    },
    { label: 'killed datacenter unreachable everywhere', color: '#d62728', value: (r) => r.killedUnreachableRounds },
    { label: 'revived datacenter alive everywhere', color: '#2ca02c', value: (r) => r.revivedAliveRounds },
  ];
  const W = 900;
  const H = 440;
  const box = { left: 70, top: 70, width: 460, height: 300 };
  const xMax = Math.max(0.05, ...reports.map((r) => r.loss));
  const yMaxRaw = Math.max(1, ...reports.flatMap((r) => series.map((s) => s.value(r) ?? 0)));
  const yStep = yMaxRaw > 40 ? 10 : 5;
  const yMax = Math.ceil(yMaxRaw / yStep) * yStep;
  const x = (v: number): number => box.left + (v / xMax) * box.width;
  const y = (v: number): number => box.top + box.height - (v / yMax) * box.height;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">Federation gossip: rounds to converge and to detect, against packet loss</text>`,
  );
  out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${subtitle}</text>`);
  out.push(
    `<rect x="${box.left}" y="${box.top}" width="${box.width}" height="${box.height}" fill="none" stroke="#333"/>`,
  );
  for (let v = 0; v <= yMax; v += yStep) {
    out.push(
      `<line x1="${box.left}" y1="${y(v).toFixed(1)}" x2="${box.left + box.width}" y2="${y(v).toFixed(1)}" stroke="#e5e5e5"/>`,
    );
    out.push(`<text x="${box.left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}</text>`);
  }
  for (const r of reports) {
    out.push(
      `<line x1="${x(r.loss).toFixed(1)}" y1="${box.top}" x2="${x(r.loss).toFixed(1)}" y2="${box.top + box.height}" stroke="#f0f0f0"/>`,
    );
    out.push(
      `<text x="${x(r.loss).toFixed(1)}" y="${box.top + box.height + 16}" text-anchor="middle">${Math.round(r.loss * 100)} %</text>`,
    );
  }
  out.push(
    `<text x="${box.left + box.width / 2}" y="${box.top + box.height + 36}" text-anchor="middle">packet loss (every message, both directions)</text>`,
  );
  out.push(
    `<text x="20" y="${box.top + box.height / 2}" text-anchor="middle" transform="rotate(-90 20 ${box.top + box.height / 2})">rounds</text>`,
  );
  series.forEach((s, i) => {
    const pts = reports
      .map((r) => [r.loss, s.value(r)] as const)
      .filter((p): p is readonly [number, number] => p[1] !== null);
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(' ')}"/>`,
    );
    for (const [a, b] of pts)
      out.push(
        `<circle cx="${x(a).toFixed(1)}" cy="${y(b).toFixed(1)}" r="3.5" fill="${s.color}"><title>${b}</title></circle>`,
      );
    const ly = box.top + 10 + i * 22;
    out.push(
      `<line x1="${box.left + box.width + 16}" y1="${ly}" x2="${box.left + box.width + 36}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`,
    );
    out.push(`<text x="${box.left + box.width + 40}" y="${ly + 4}" font-size="11">${s.label}</text>`);
  });
  const verdicts = reports
    .map((r) => `${Math.round(r.loss * 100)} %: ${r.total.falseMemberVerdicts} / ${r.total.falseDatacenterVerdicts}`)
    .join(' · ');
  out.push(
    `<text x="${W / 2}" y="${H - 14}" text-anchor="middle" fill="#555">false "unreachable" verdicts against live members / datacenters — ${verdicts}</text>`,
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
