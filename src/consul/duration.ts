/**
 * Go durations, as Consul's `wait` query parameter and a check's `TTL` carry them
 * (Go's time.ParseDuration): an optional sign, then one or more decimal numbers each with a
 * unit, `ns`, `us` (or `µs`, `μs`), `ms`, `s`, `m`, `h`: `100ms`, `30s`, `1m30s`, `1.5h`,
 * `120000ms`. A bare `0` is zero; any other number without a unit is refused, as Go does.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 MICRO SIGN
  μs: 1e-3, // U+03BC GREEK SMALL LETTER MU
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds (possibly fractional, possibly negative), or null when `text` is not a Go duration. */
export function parseGoDuration(text: string): number | null {
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s.length === 0) return null;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (m === null || m.index !== at) return null;
    const digits = m[1]!;
    // "." alone, or a unit with no number before it ("ms"), is not a number.
    if (digits === '' || digits === '.') return null;
    total += Number(digits) * UNIT_MS[m[2]!]!;
  }
  return Number.isFinite(total) ? sign * total : null;
}

/** `90000` → `1m30s`, `1500` → `1.5s`, `250` → `250ms`: how Consul shows a duration. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 0) return `-${formatGoDuration(-ms)}`;
  if (ms < 1000) return `${trim(ms)}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${trim(s)}s`;
}

function trim(n: number): string {
  return String(Number(n.toFixed(6)));
}
