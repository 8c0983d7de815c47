// adamw in headless Chromium (WebGPU) against the float64 reference on fresh random inputs, every case;
// then, in Node (Dawn), what the op table cannot show: segments (offset, count) leave the rest untouched,
// gradScale scales the gradient, many steps in a row stay on the reference, and bad input is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { adamw } from '../../client/ops/adamw.ts';
import { runOp } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { relError } from '../../shared/ops.ts';
import { adamwStep, type AdamWHyper } from '../../shared/reference/adamw.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe.each(['adamw'])('%s', (op) => {
  it.each(casesOf(op))('%s', async (c) => {
    const r = await check(host, op, c);
    expect(Object.keys(r.errors).sort()).toEqual(['exp_avg', 'exp_avg_sq', 'param']);
    expect(r.ok).toBe(true);
  });
});

describe('adamw in Node (Dawn)', () => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
  });
  afterAll(() => g?.destroy());

  const hyper: AdamWHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 };

  it('updates only [offset, offset + count), with the gradient scaled by gradScale', async () => {
    const rng = new Rng(freshSeed());
    const n = 1000;
    const [offset, count, scale] = [137, 555, 0.25];
    const host = [rng.normals(n), rng.normals(n), rng.normals(n, 0.1), rng.normals(n, 0.1).map((x) => x * x)];
    const [p, gr, m, v] = host.map((d) => g.upload({ shape: [n], data: d }));
    adamw(g, p, gr, m, v, { ...hyper, step: 7, gradScale: scale, offset, count });
    const got = await Promise.all([p, m, v].map((t) => g.read(t)));
    const want = host.map((d) => Float64Array.from(d));
    const seg = (a: Float64Array) => a.subarray(offset, offset + count);
    const [wp, wg, wm, wv] = want;
    adamwStep(seg(wp), seg(wg).map((x) => x * scale), seg(wm), seg(wv), { ...hyper, step: 7 });
    [wp, wm, wv].forEach((w, k) => {
      for (let i = 0; i < n; i++) if (i < offset || i >= offset + count) expect(got[k][i], `element ${i} outside the segment`).toBe(host[[0, 2, 3][k]][i]);
      expect(relError(got[k].subarray(offset, offset + count), seg(w))).toBeLessThan(1e-6);
    });
    g.release(p, gr, m, v);
  });

  it('stays on the reference over 50 steps from a fresh state', async () => {
    const rng = new Rng(freshSeed());
    const n = 4099;
    const want = [Float64Array.from(rng.normals(n)), new Float64Array(n), new Float64Array(n)];
    const [p, m, v] = want.map((d) => g.upload({ shape: [n], data: Float32Array.from(d) }));
    for (let step = 1; step <= 50; step++) {
      const grad = rng.normals(n, 0.1);
      const gr = g.upload({ shape: [n], data: grad });
      adamw(g, p, gr, m, v, { ...hyper, step });
      adamwStep(want[0], Float64Array.from(grad), want[1], want[2], { ...hyper, step });
      g.release(gr);
    }
    const got = await Promise.all([p, m, v].map((t) => g.read(t)));
    got.forEach((x, k) => expect(relError(x, want[k]), ['param', 'exp_avg', 'exp_avg_sq'][k]).toBeLessThan(1e-5));
    g.release(p, m, v);
  });

  it('refuses bad segments, shapes and hyperparameters with clear messages', async () => {
    const [a, b] = [g.tensor([10]), g.tensor([11])];
    expect(() => adamw(g, a, a, a, a, { ...hyper, offset: 4, count: 7 })).toThrow(/segment offset 4, count 7 does not lie within the 10 elements/);
    expect(() => adamw(g, a, b, a, a, hyper)).toThrow(/adamw: grad has shape \(11\) but param has shape \(10\)/);
    expect(() => adamw(g, a, a, a, a, { ...hyper, step: 0 })).toThrow(/step 0 must be an integer >= 1/);
    expect(() => adamw(g, a, a, a, a, { ...hyper, beta2: 1 })).toThrow(/invalid beta2 1/);
    g.release(a, b);
    const t = (n: number) => ({ shape: [n], data: new Float32Array(n) });
    await expect(runOp(g, 'adamw', { params: t(3), grads: t(3), exp_avgs: t(3), exp_avg_sqs: t(4) })).rejects.toThrow(/exp_avg_sq has shape \(4\) but param has shape \(3\)/);
    await expect(runOp(g, 'adamw', { param: t(3), grad: t(3), exp_avg: t(3), exp_avg_sq: t(3) }, { betas: 0.9 })).rejects.toThrow(/betas must be a pair/);
    await expect(runOp(g, 'adamw', { param: t(3), grad: t(3), exp_avg: t(3), exp_avg_sq: t(3) }, { lr: -1 })).rejects.toThrow(/invalid learning rate -1/);
  });
});
