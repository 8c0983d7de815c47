// The swarm end to end on real kernels: a coordinator, two headless Chromium volunteers (the vite-built volunteer
// page, SwiftShader's WebGPU) and one Node worker (Dawn) train a tiny GPT together.
//  - Synchronous training is exactly synchronous: after K steps the weights equal, to fp rounding, a single worker
//    (client/train/trainer.ts) that took the same batches in the same order (grad_accum_steps = target / B).
//  - Churn: a volunteer whose renderer crashes mid-run costs only its leases (they go to the others, the run
//    finishes, every batch is applied exactly once, in its own step); a late joiner starts from the current weights.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { io } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS, chromiumPath } from '../../client/host/browser.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { train } from '../../client/train/trainer.ts';
import { Worker, type WorkerSocket } from '../../client/worker/loop.ts';
import { buildVolunteerPage } from '../../coordinator/volunteer-build.ts';
import type { Coordinator } from '../../coordinator/swarm/server.ts';
import { parser } from '../../shared/codec.ts';
import { encodeCorpus } from '../../shared/data/dataset.ts';
import { relError } from '../../shared/ops.ts';
import { readFileSync } from 'node:fs';
import { ROOT, smallCorpus, startCoordinator, tinyRun, until } from '../swarm/helpers.ts';

let coord: Coordinator;
let browser: Browser;
let gpu: Gpu;

beforeAll(async () => {
  const staticDir = await buildVolunteerPage(ROOT);
  coord = await startCoordinator({ staticDir });
  browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: CHROMIUM_FLAGS });
  gpu = await openNodeGpu();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await coord?.close();
  gpu?.destroy();
});

function nodeWorker(): { worker: Worker; done: Promise<void>; socket: WorkerSocket } {
  const socket = io(coord.url, { parser, transports: ['websocket'] }) as WorkerSocket;
  const worker = new Worker({
    gpu,
    socket,
    hello: { kind: 'node', name: 'test-node', adapter: gpu.adapterName },
    coordinatorUrl: coord.url,
  });
  const done = worker.run().catch(() => {});
  return { worker, done, socket };
}

async function volunteerPage() {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(coord.url);
  return { page, errors };
}

describe('swarm end to end', () => {
  it('two browsers and a Node worker train a tiny GPT; the weights equal a single worker on the same batches', async () => {
    const K = 5;
    const A = 6; // batches per step
    const config = tinyRun({ swarm: { target_batch_size: 4 * A, batches_per_lease: 1 }, train: { max_steps: K, eval_interval: 0 } });
    const run = await coord.addRun(config, { id: 'exact' });
    run.setStatus('paused', 'waiting for the three workers');
    const pages = [await volunteerPage(), await volunteerPage()];
    const node = nodeWorker();
    await until(() => run.connectedWorkers === 3, 90_000, 'three workers to join');
    run.setStatus('running', 'all here');
    await until(() => run.status === 'done', 150_000, `the run to finish (at step ${run.version})`);
    node.worker.stop();
    await Promise.all(pages.map((p) => p.page.close()));
    await node.done;
    for (const p of pages) expect(p.errors).toEqual([]);

    const kinds = [...run.workers.values()].map((w) => [w.kind, w.samples > 0] as const);
    expect(kinds.sort()).toEqual([['browser', true], ['browser', true], ['node', true]]);
    const losses = run.history.map((h) => h.loss);
    expect(losses).toHaveLength(K);
    expect(losses[K - 1]).toBeLessThan(losses[0] - 0.2);
    expect([...run.applied.entries()].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: K * A }, (_, i) => [i, Math.floor(i / A)]));

    // the single worker: same config with grad_accum_steps = A, on the Node GPU
    const { tokenizer, dataset } = encodeCorpus(readFileSync(smallCorpus(), 'utf8'));
    let single: Float32Array | undefined;
    const singleLosses: number[] = [];
    await train({
      gpu,
      config: { ...config, optim: { ...config.optim, grad_accum_steps: A }, train: { ...config.train, out_dir: mkdtempSync(join(tmpdir(), 'gs-single-')) } },
      dataset,
      tokenizer,
      onStep: (r) => singleLosses.push(r.loss),
      saveCheckpoint: async (ck) => {
        single = Float32Array.from(ck.params);
        return 'memory';
      },
    });
    expect(single).toBeDefined();
    for (let s = 0; s < K; s++) expect(Math.abs(losses[s] - singleLosses[s])).toBeLessThan(1e-4);
    const err = relError(run.params, single!);
    console.log(`swarm vs single worker after ${K} steps: normwise relative error ${err.toExponential(2)}; losses ${losses.map((l) => l.toFixed(4)).join(' ')}`);
    expect(err).toBeLessThan(1e-4);
  }, 300_000);

  it('a volunteer that crashes mid-run costs only its leases; a late joiner trains from the current weights', async () => {
    const K = 6;
    const A = 4;
    const run = await coord.addRun(tinyRun({ swarm: { target_batch_size: 4 * A, lease_timeout_s: 60 }, train: { max_steps: K, eval_interval: 0, seed: 11 } }), { id: 'churn' });
    run.setStatus('paused', 'waiting for the workers');
    const victim = await volunteerPage();
    const node = nodeWorker();
    await until(() => run.connectedWorkers === 2, 90_000, 'two workers to join');
    run.setStatus('running', 'go');
    // crash the victim's renderer while it holds a lease (no goodbye: the socket just dies)
    await until(() => run.version >= 1 && [...run.workers.values()].some((w) => w.kind === 'browser' && w.samples > 0), 60_000, 'the browser to contribute');
    const victimId = [...run.workers.values()].find((w) => w.kind === 'browser')!.workerId;
    await until(() => run.leasesOf(victimId) > 0, 30_000, 'the browser to hold a lease');
    await victim.page.goto('chrome://crash').catch(() => {});
    await until(() => !run.workers.get(victimId)!.connected, 30_000, 'the coordinator to notice the crash');
    expect(run.leasesOf(victimId)).toBe(0); // released at the disconnect, not after the 60 s lease timeout
    // the Node worker leaves too, so a late joiner must carry the run from the version it finds to the end
    node.worker.stop();
    node.socket.close();
    await until(() => run.connectedWorkers === 0, 30_000, 'the Node worker to leave');
    const versionAtJoin = run.version;
    const appliedAtJoin = run.applied.size;
    const late = await volunteerPage();
    await until(() => run.status === 'done', 150_000, `the run to finish (at step ${run.version})`);
    await late.page.close();
    await node.done;
    const browsers = [...run.workers.values()].filter((w) => w.kind === 'browser');
    expect(browsers).toHaveLength(2);
    const lateStats = browsers.find((w) => w.workerId !== victimId)!;
    expect(lateStats.samples).toBe((K * A - appliedAtJoin) * 4); // every batch left when it joined was its own
    // every batch of every step applied once, in its own step, whatever the crash took with it
    expect([...run.applied.entries()].sort((a, b) => a[0] - b[0])).toEqual(Array.from({ length: K * A }, (_, i) => [i, Math.floor(i / A)]));
    expect(run.history.reduce((a, h) => a + h.samples, 0)).toBe(K * A * 4);
    console.log(`churn: victim ${victimId} contributed ${run.workers.get(victimId)!.samples} samples before the crash; the late joiner joined at version ${versionAtJoin} and contributed ${lateStats.samples}`);
    expect(versionAtJoin).toBeGreaterThan(0);
  }, 300_000);
});
