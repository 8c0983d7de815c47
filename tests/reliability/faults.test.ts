// Faults of honest volunteers against a live coordinator (the short version of `npm run bench -- reliability`):
// dying before, during (half a websocket frame sent) and right after an upload, a network cut with socket.io's own
// reconnect and a resync, a slow volunteer whose lease times out. Each runs beside 4 healthy simulated workers
// (real gradients from the reference model); after each, every batch was applied exactly once
// (SwarmRun.applied = {i → ⌊i/A⌋}) and the run finished. The coordinator killed with SIGKILL is
// tests/e2e/restart.test.ts; a GPU lost in the browser is tests/e2e/volunteer-page.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { FAULTS, runFault, type FaultOptions, type FaultResult } from '../../bench/reliability/faults.ts';
import { freshSeed } from '../../shared/rng.ts';
import { startCoordinator, tinyRun } from '../swarm/helpers.ts';

const seed = freshSeed();
const K = 8;
let coord: Coordinator;
const results = new Map<string, FaultResult>();

beforeAll(async () => {
  coord = await startCoordinator();
  const o: FaultOptions = { coord, config: (over) => tinyRun(over), steps: K, honest: 4, computeMs: 100, seed, timeoutMs: 40_000, log: console.log };
  for (const f of FAULTS) results.set(f.name, await runFault(o, f));
}, 300_000);
afterAll(async () => coord?.close());

describe(`faults beside 4 healthy workers (seed ${seed})`, () => {
  it.each(FAULTS.map((f) => f.name))('%s: no batch lost or applied twice, training continues to the end', (name) => {
    const r = results.get(name)!;
    expect(r.finished, `${name} finished (${r.steps}/${K})`).toBe(true);
    expect(r.steps).toBe(K);
    expect(r.accounting).toBeUndefined();
    expect(r.health.failures).toBe(0);
    expect(r.observed['fault did not finish']).toBeUndefined();
  });

  it('a volunteer dying before or mid-upload: its lease is released at once, nothing is credited to it', () => {
    for (const name of ['dies-before-upload', 'dies-mid-upload']) {
      const o = results.get(name)!.observed;
      expect(o.deaths, name).toBe(3);
      expect(o.released, name).toBe(true);
      expect(o.maxReleaseMs as number, name).toBeLessThan(3000);
      expect(o.creditedToDead, name).toBe(0);
    }
  });

  it('closed right after the emit: each answer is either counted once or its lease released', () => {
    const o = results.get('closed-right-after-emit')!.observed;
    expect(o.deaths).toBe(3);
    expect(o.released).toBe(true);
    expect((o.counted as number) + (o.releasedUncounted as number)).toBe(3);
  });

  it('dying after the upload: the answer counts once (credited to the dead worker)', () => {
    const r = results.get('dies-after-upload')!;
    expect(r.observed.deaths).toBe(3);
    expect(r.observed.creditedToDead).toBe(3);
    expect(r.notes).toEqual([]);
  });

  it('a network cut: socket.io reconnects, the worker resyncs (hello, join, weights) and goes on; the answer it held is refused as expired', () => {
    const r = results.get('network-cut')!;
    expect(r.observed.cuts).toBe(4);
    expect(r.observed.sessions).toBe(5);
    expect(r.observed.lateExpired).toBe(3);
    expect(r.observed.lateAccepted).toBe(0);
    expect(r.observed.acceptedAfterCuts as number).toBeGreaterThan(0);
    expect(r.codes.expired).toBe(3);
  });

  it('slow volunteers: the batch goes to another worker (a backup lease or the timeout) and the late answer is refused', () => {
    const r = results.get('slow-volunteers')!;
    expect(r.observed.slowLeases).toBe(2);
    expect(r.observed.lateExpired).toBe(2);
    expect(r.observed.lateAccepted).toBe(0);
  });
});
