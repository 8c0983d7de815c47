// Fuzz against a live coordinator (the short version; `npm run bench -- reliability` sends 20,000 frames to a
// coordinator in a child process): random bytes, mutated packets of every event, wrong packet shapes, deep
// nesting, huge size claims, msgpackr extensions, random acks and namespaces as raw frames, and schema-level
// events of every kind, from 8 connections at once while an honest worker trains the run. After every batch
// of frames the health route must answer; nothing may throw out of the coordinator (an uncaught exception fails
// this file); memory growth stays bounded; training goes on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import type { SwarmRun } from '../../coordinator/swarm/run.ts';
import { runFuzz, type FuzzResult } from '../../bench/reliability/fuzz.ts';
import { SimWorker } from '../../bench/reliability/sim.ts';
import { freshSeed } from '../../shared/rng.ts';
import { startCoordinator, tinyRun } from '../swarm/helpers.ts';

const seed = freshSeed();
const FRAMES = Number(process.env.FUZZ_FRAMES ?? 3000);
const uncaught: Error[] = [];
const onUncaught = (e: Error) => uncaught.push(e);
let coord: Coordinator;
let run: SwarmRun;
let worker: SimWorker;
let r: FuzzResult;

const MiB = 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  coord = await startCoordinator();
  run = await coord.addRun(tinyRun({ train: { max_steps: 100_000 }, swarm: { lease_timeout_s: 2 } }), { id: 'fuzz' });
  worker = new SimWorker({ url: coord.url, runId: run.id, name: 'honest', computeMs: 20 }).start();
  r = await runFuzz(
    {
      url: coord.url,
      runId: run.id,
      params: run.layout.size,
      memory: async () => {
        gc?.();
        const m = process.memoryUsage();
        return { rss: m.rss, heapUsed: m.heapUsed };
      },
      alive: () => uncaught.length === 0,
      steps: async () => run.version,
      workerRows: async () => run.workers.size,
    },
    { frames: FRAMES, seed, lanes: 8, batch: 500, log: console.log },
  );
}, 300_000);
afterAll(async () => {
  await worker?.close();
  await coord?.close();
  process.off('uncaughtException', onUncaught);
});

describe(`fuzz, ${FRAMES} frames (seed ${seed})`, () => {
  it('the coordinator never throws and answers its health route after every batch', () => {
    console.log(`${r.frames} frames in ${r.seconds.toFixed(1)} s over ${r.connections} connections (${r.closedByCoordinator} closed by the coordinator); kinds ${JSON.stringify(r.byKind)}; replies ${JSON.stringify(r.replies)}`);
    expect(uncaught.map((e) => e.stack)).toEqual([]);
    expect(r.crashed).toBe(false);
    expect(r.frames).toBe(FRAMES);
    expect(r.healthChecks).toBe(FRAMES / 500);
    expect(r.healthFailures).toBe(0);
    // every kind of frame was tried, and malformed ones closed their connection
    for (const k of ['random-bytes', 'text', 'mutated-packet', 'frame-layout', 'wrong-packet', 'deep-nesting', 'huge-claims', 'extensions', 'ack', 'namespace', 'schema']) expect(r.byKind[k], k).toBeGreaterThan(0);
    expect(r.closedByCoordinator).toBeGreaterThan(FRAMES / 10);
    expect(r.replies['bad-message']).toBeGreaterThan(0);
  });

  it('memory stays bounded', () => {
    const grew = { rss: (r.memAfter.rss - r.memBefore.rss) / MiB, heap: (r.memAfter.heapUsed - r.memBefore.heapUsed) / MiB };
    console.log(`memory: rss ${(r.memBefore.rss / MiB).toFixed(0)} → ${(r.memAfter.rss / MiB).toFixed(0)} MiB (peak ${(r.memPeak.rss / MiB).toFixed(0)}), heap ${(r.memBefore.heapUsed / MiB).toFixed(0)} → ${(r.memAfter.heapUsed / MiB).toFixed(0)} MiB; the run's workers table ${r.workerRowsBefore} → ${r.workerRowsAfter} rows`);
    expect(grew.rss).toBeLessThan(200);
    expect(grew.heap).toBeLessThan(100);
  });

  it('training went on under the fuzz, and the honest worker was never refused', () => {
    console.log(`steps ${r.stepsBefore} → ${r.stepsAfter}`);
    expect(r.stepsAfter).toBeGreaterThan(r.stepsBefore);
    expect(worker.accepted).toBeGreaterThan(0);
    expect(Object.keys(worker.codes)).toEqual([]);
  });
});
