/**
 * A keepalive sent to a node that holds it without answering (its event loop held, a
 * follower cut off from the leader) used to wait there for a whole attempt (2.5 s by
 * default), longer than a short TTL's margin: the session could expire while other nodes
 * would have delivered the keepalive at once. Each keepalive attempt now gets at most a third
 * of the call's deadline (a registration's deadline is its TTL), then the next node is tried.
 */
import { describe, expect, it, vi } from 'vitest';
import { RollcallClient } from '../src/client/index.js';
import { seeded } from './client-helpers.js';
import { json, scriptedPerTest } from './scripted-http-node.js';

const scripted = scriptedPerTest();
const fake = scripted.node;

describe('keepalive', () => {
  it('passes over a node that holds it within a third of its deadline, not a whole attempt', async () => {
    const held = await fake('n1');
    held.handler = () => {}; // never answers: its event loop is held
    const n2 = await fake('n2');
    n2.handler = (_req, res) => json(res, 200, {});
    // The default attempt deadline (2.5 s) is longer than this keepalive's whole deadline.
    const c = scripted.client(new RollcallClient({ endpoints: [held.url, n2.url], random: seeded(1) }));
    // The deadlines run on fake timers (the sockets are real): "within" does not depend on load.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const kept = c.keepalive('s-1', 1500);
    while (held.seen.length === 0) await new Promise((r) => setImmediate(r));
    vi.advanceTimersByTime(499);
    await new Promise((r) => setImmediate(r));
    expect(n2.seen).toHaveLength(0);
    vi.advanceTimersByTime(1);
    for (let i = 0; i < 1000 && n2.seen.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(n2.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['PUT /v1/sessions/s-1/keepalive']);
    expect(await kept).toBe('ok');
  });
});
