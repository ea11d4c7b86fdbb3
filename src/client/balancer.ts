/**
 * A balancer: discovery, routing and a picker in one, for a consumer that calls a service.
 */

import type { DiscoverOptions, DiscoverResult } from './client.js';
import { NoInstanceError } from './errors.js';
import { createPicker, type Picked, type Picker, type PickerName } from './pickers.js';
import type { Instance } from './types.js';

export interface BalancerOptions extends Omit<DiscoverOptions, 'consistency'> {
  /** Default `round-robin`; or any object with `pick(instances)`. */
  readonly picker?: PickerName | Picker;
}

/**
 * Picks an instance of a service for each call, from the client's discovery cache.
 *
 * @example
 * ```ts
 * const orders = client.balancer({ namespace: 'prod', service: 'orders', picker: 'least-outstanding' });
 * const reply = await orders.call((i) => fetch(`http://${i.address}:${i.port}/orders/42`));
 * ```
 */
export class Balancer {
  readonly picker: Picker;

  /** @internal use `client.balancer()` */
  constructor(
    private readonly discover: (o: DiscoverOptions) => Promise<DiscoverResult>,
    private readonly options: BalancerOptions,
    random: () => number,
  ) {
    const p = options.picker ?? 'round-robin';
    this.picker = typeof p === 'string' ? createPicker(p, random) : p;
  }

  /**
   * One instance to send a call to. Call `done()` on the result when the call ends.
   * @throws NoInstanceError when the service has no instance this consumer may use
   */
  async pick(): Promise<Picked & { readonly discovery: DiscoverResult }> {
    const { picker: _picker, ...discover } = this.options;
    const discovery = await this.discover({ healthyOnly: true, ...discover });
    const picked = this.picker.pick(discovery.instances);
    if (picked === undefined) {
      throw new NoInstanceError(
        `no instance of ${this.options.namespace}/${this.options.service} to send to (${discovery.instances.length} listed, all weight 0 or none)`,
      );
    }
    return { instance: picked.instance, done: picked.done, discovery };
  }

  /** Picks an instance, runs `fn` with it, and reports the call done however it ends. */
  async call<T>(fn: (instance: Instance) => Promise<T>): Promise<T> {
    const p = await this.pick();
    try {
      return await fn(p.instance);
    } finally {
      p.done();
    }
  }
}
