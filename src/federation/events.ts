/**
 * Counters and the event queue the host drains. Both are plain state the other modules
 * write into; the engine hands out copies.
 */
import type { FederationEvent, RefusalReason } from './types.js';

export interface Counters {
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  refused: Record<RefusalReason, number>;
  probes: number;
  indirectProbes: number;
  suspicions: number;
  refutations: number;
  ownRestamps: number;
  syncs: number;
  eventsDropped: number;
}

export function newCounters(): Counters {
  return {
    messagesSent: 0,
    bytesSent: 0,
    messagesReceived: 0,
    bytesReceived: 0,
    refused: {
      malformed: 0,
      'too-large': 0,
      'unsupported-version': 0,
      'bad-mac': 0,
      'forged-datacenter': 0,
      'wrong-recipient': 0,
      'from-self': 0,
      stale: 0,
      replay: 0,
    },
    probes: 0,
    indirectProbes: 0,
    suspicions: 0,
    refutations: 0,
    ownRestamps: 0,
    syncs: 0,
    eventsDropped: 0,
  };
}

/** A bounded FIFO: a host that never drains loses the oldest events (counted), not memory. */
export class EventQueue {
  private events: FederationEvent[] = [];

  constructor(
    private readonly max: number,
    private readonly counters: Counters,
  ) {}

  push(event: FederationEvent): void {
    this.events.push(event);
    if (this.events.length > this.max) {
      this.events.shift();
      this.counters.eventsDropped++;
    }
  }

  drain(): FederationEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }
}
