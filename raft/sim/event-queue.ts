/**
 * Virtual time: a binary heap of events ordered by (time, sequence). Equal times run in
 * the order they were scheduled, so a run is a pure function of its seed and inputs.
 */
export interface SimEvent {
  readonly time: number;
  readonly seq: number;
  readonly run: () => void;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  now = 0;

  schedule(delay: number, run: () => void): void {
    const ev: SimEvent = { time: this.now + Math.max(0, delay), seq: this.seq++, run };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  /** Runs the next event; false when none is due by `until`. */
  runNext(until: number): boolean {
    const h = this.heap;
    const top = h[0];
    if (!top || top.time > until) return false;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    this.now = top.time;
    top.run();
    return true;
  }

  size(): number {
    return this.heap.length;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
