/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and says where the time went: self
 * time per function, inclusive time per function, and self time per area (our code by
 * directory, each npm package, Node internals, GC, idle). Pure: takes the parsed JSON.
 */

export interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
    readonly columnNumber?: number;
  };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

export interface HotSpot {
  readonly key: string;
  readonly ms: number;
  readonly share: number;
}

export interface ProfileSummary {
  /** Wall time covered by the profile. */
  readonly totalMs: number;
  /** Time not idle. */
  readonly busyMs: number;
  readonly self: readonly HotSpot[];
  readonly inclusive: readonly HotSpot[];
  readonly areas: readonly HotSpot[];
}

/** A short, stable name for a script URL: `src/node/node.ts`-like for ours, `pkg:name` for packages. */
export function areaOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName === '(garbage collector)') return 'gc';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'program (native, unattributed)';
    return 'native';
  }
  if (url.startsWith('node:')) return 'node internals';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    const pkg = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return `pkg:${pkg}`;
  }
  const dist = url.indexOf('/dist/');
  if (dist >= 0) {
    const rel = url.slice(dist + '/dist/'.length).split('/');
    return rel.slice(0, Math.min(2, rel.length - 1)).join('/') || rel[0]!;
  }
  return url.replace(/^file:\/\//, '');
}

function frameKey(n: CpuProfileNode): string {
  const f = n.callFrame;
  const name = f.functionName || '(anonymous)';
  if (!f.url) return name;
  const dist = f.url.indexOf('/dist/');
  const nm = f.url.lastIndexOf('/node_modules/');
  const file = nm >= 0 ? f.url.slice(nm + 14) : dist >= 0 ? f.url.slice(dist + 6) : f.url.replace(/^file:\/\//, '');
  return `${name} ${file}:${f.lineNumber + 1}`;
}

/** Self time per node id, from samples and time deltas (falls back to hit counts). */
function selfTimes(p: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  if (p.samples && p.timeDeltas && p.samples.length === p.timeDeltas.length) {
    // timeDeltas[i] is the time before sample i; attribute the interval after it to it.
    for (let i = 0; i < p.samples.length; i++) {
      const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
      const id = p.samples[i]!;
      self.set(id, (self.get(id) ?? 0) + dt);
    }
    return self;
  }
  const total = (p.endTime - p.startTime) / 1000;
  const hits = p.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
  for (const n of p.nodes) self.set(n.id, ((n.hitCount ?? 0) / hits) * total);
  return self;
}

export function summarizeProfile(p: CpuProfile, top = 25): ProfileSummary {
  const self = selfTimes(p);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const totalMs = [...self.values()].reduce((a, b) => a + b, 0);
  let idleMs = 0;
  const selfBy = new Map<string, number>();
  const areaBy = new Map<string, number>();
  for (const n of p.nodes) {
    const ms = self.get(n.id) ?? 0;
    if (ms === 0) continue;
    const area = areaOf(n.callFrame.url, n.callFrame.functionName);
    if (area === 'idle') {
      idleMs += ms;
      continue;
    }
    selfBy.set(frameKey(n), (selfBy.get(frameKey(n)) ?? 0) + ms);
    areaBy.set(area, (areaBy.get(area) ?? 0) + ms);
  }
  const busyMs = totalMs - idleMs;

  // Inclusive: each sample's time counts once for every distinct function on its stack.
  const inclBy = new Map<string, number>();
  for (const n of p.nodes) {
    const ms = self.get(n.id) ?? 0;
    if (ms === 0 || areaOf(n.callFrame.url, n.callFrame.functionName) === 'idle') continue;
    const seen = new Set<string>();
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      const node = byId.get(id)!;
      if (node.callFrame.functionName === '(root)') break;
      const k = frameKey(node);
      if (seen.has(k)) continue;
      seen.add(k);
      inclBy.set(k, (inclBy.get(k) ?? 0) + ms);
    }
  }

  const rank = (m: Map<string, number>, n: number): HotSpot[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([key, ms]) => ({ key, ms, share: busyMs > 0 ? ms / busyMs : 0 }));
  return { totalMs, busyMs, self: rank(selfBy, top), inclusive: rank(inclBy, top), areas: rank(areaBy, 40) };
}

export function renderProfileSummary(title: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1).padStart(5)}%`;
  const lines = [
    `## ${title}`,
    '',
    `profiled ${(s.totalMs / 1000).toFixed(1)} s, busy ${(s.busyMs / 1000).toFixed(1)} s (${pct(s.totalMs > 0 ? s.busyMs / s.totalMs : 0).trim()} of one core)`,
    '',
  ];
  lines.push('self time by area (share of busy time):');
  for (const h of s.areas) lines.push(`  ${pct(h.share)}  ${h.key}`);
  lines.push('', 'top self time:');
  for (const h of s.self) lines.push(`  ${pct(h.share)}  ${h.key}`);
  lines.push('', 'top inclusive time:');
  for (const h of s.inclusive) lines.push(`  ${pct(h.share)}  ${h.key}`);
  return lines.join('\n');
}
