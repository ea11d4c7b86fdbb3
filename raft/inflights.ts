/**
 * The bounded window of append messages sent to one follower and not yet acknowledged,
 * by count and by bytes. A ring buffer: pipelining allocates nothing per message.
 */
export class Inflights {
  private readonly indexes: Float64Array;
  private readonly sizes: Float64Array;
  private start = 0;
  private count = 0;
  private bytes = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {
    this.indexes = new Float64Array(maxCount);
    this.sizes = new Float64Array(maxCount);
  }

  /** Records an append whose last entry is `index`. Invariant: indexes are added in increasing order. */
  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('inflights: add to a full window');
    const slot = (this.start + this.count) % this.maxCount;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every message whose last index is ≤ `index` (they were acknowledged). */
  freeLE(index: number): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.maxCount;
      this.count--;
    }
    if (this.count === 0) {
      this.start = 0;
      this.bytes = 0;
    }
  }

  /** Frees the oldest message: a heartbeat response proves the follower is alive, so let one more through. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  size(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
