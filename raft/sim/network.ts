/**
 * The simulated network: which links are cut ({@link LinkCuts}, shared by every test
 * harness), and for the simulator per-link delay, loss, duplication (reordering follows
 * from random delays), and symmetric or asymmetric partitions.
 */
import type { NodeId } from '../messages.js';
import type { SeededRandom } from '../rand.js';

export interface LinkFaults {
  /** Delay range in virtual ms. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** Probability in [0, 1] that a message is lost. */
  readonly loss: number;
  /** Probability in [0, 1] that a message is delivered twice. */
  readonly duplicate: number;
}

export const reliableLink: LinkFaults = { minDelay: 1, maxDelay: 3, loss: 0, duplicate: 0 };

/** Directed links that drop everything. */
export class LinkCuts {
  private readonly cut = new Set<string>();

  /** Drops every message between a and b, both ways. */
  cutBoth(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}→${b}`);
    this.cut.add(`${b}→${a}`);
  }

  /** Drops messages from `from` to `to` only (asymmetric fault). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}→${to}`);
  }

  /** Cuts `id` off from each of `others`, both ways. */
  isolate(id: NodeId, others: Iterable<NodeId>): void {
    for (const other of others) if (other !== id) this.cutBoth(id, other);
  }

  /** Replaces every cut with a symmetric partition between the groups. */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.cut.clear();
    for (const a of groups)
      for (const b of groups) {
        if (a === b) continue;
        for (const x of a) for (const y of b) this.cut.add(`${x}→${y}`);
      }
  }

  heal(): void {
    this.cut.clear();
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}→${to}`);
  }
}

export class SimNetwork {
  private faults: LinkFaults = reliableLink;
  private readonly cuts = new LinkCuts();

  constructor(private readonly random: SeededRandom) {}

  setFaults(faults: LinkFaults): void {
    this.faults = faults;
  }

  /** Cuts every link between the groups (symmetric partition). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    this.cuts.partition(groups);
  }

  /** Drops messages from `from` to `to` only (asymmetric fault). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.cutOneWay(from, to);
  }

  heal(): void {
    this.cuts.heal();
    this.faults = reliableLink;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.isCut(from, to);
  }

  /** Delays (possibly none, possibly two) at which a message from→to arrives. */
  deliveries(from: NodeId, to: NodeId): number[] {
    if (this.cuts.isCut(from, to)) return [];
    const f = this.faults;
    if (f.loss > 0 && this.random.float() < f.loss) return [];
    const delay = () => f.minDelay + this.random.int(f.maxDelay - f.minDelay + 1);
    if (f.duplicate > 0 && this.random.float() < f.duplicate) return [delay(), delay()];
    return [delay()];
  }
}
