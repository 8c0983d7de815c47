// layer_norm over the last dim in headless Chromium (WebGPU), forward and backward (dx, dweight, dbias),
// against the float64 reference, on fresh random inputs with NaN-poisoned outputs; and normalized_shape
// checking. Through Dawn in Node: the direct API's accumulate option, bitwise-deterministic dw, db, and
// every case again with the launch layout a real GPU gets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { GPU_PER_THREAD, rowTuning } from '../../client/ops/softmax.ts';
import { checkOp, spec } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { layerNorm, layerNormBackward } from '../../client/ops/layer_norm.ts';
import { writeSafetensors } from '../../shared/safetensors.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe('layer_norm', () => {
  it.each(casesOf('layer_norm'))('%s', async (c) => {
    const r = await check(host, 'layer_norm', c);
    expect(Object.keys(r.errors)).toEqual(expect.arrayContaining(['out', 'mean', 'rstd', 'grad_x']));
    if (!c.includes('no affine')) expect(Object.keys(r.errors)).toContain('grad_weight');
    expect(r.ok).toBe(true);
  });

  it('refuses a normalized_shape other than [C]', async () => {
    const file = writeSafetensors({ input: { shape: [4, 6], data: new Rng(1).normals(24) } });
    await expect(host.runOpFile('layer_norm', file, false, { normalized_shape: [4, 6] })).rejects.toThrow(
      /layer_norm: normalized_shape \[4,6\] is not supported for x of shape \(4, 6\): only the last dim is normalized/,
    );
  });
});

describe('layer_norm direct API (Dawn)', () => {
  it('accumulates dw, db with +=, and gives bitwise the same grads on every run', async () => {
    const g = await openNodeGpu();
    try {
      const rng = new Rng(3);
      const [N, C] = [300, 70];
      const x = g.upload({ shape: [3, 100, C], data: rng.normals(N * C) });
      const w = g.upload({ shape: [C], data: rng.floats(C, 0.5, 1.5) });
      const b = g.upload({ shape: [C], data: rng.floats(C) });
      const dout = g.upload({ shape: [3, 100, C], data: rng.normals(N * C) });
      const f = layerNorm(g, x, w, b);
      const once = layerNormBackward(g, x, w, true, f.mean, f.rstd, dout);
      const dw0 = (await g.read(once.dw!)) as Float32Array;
      const db0 = (await g.read(once.db!)) as Float32Array;
      const again = layerNormBackward(g, x, w, true, f.mean, f.rstd, dout);
      expect(await g.read(again.dw!)).toEqual(dw0);
      expect(await g.read(again.db!)).toEqual(db0);
      const acc = { dw: g.upload({ shape: [C], data: new Float32Array(C).fill(1) }), db: g.upload({ shape: [C], data: new Float32Array(C).fill(-2) }), accumulate: true };
      const sum = layerNormBackward(g, x, w, true, f.mean, f.rstd, dout, acc);
      expect(sum.dw).toBe(acc.dw);
      const dw1 = await g.read(acc.dw);
      const db1 = await g.read(acc.db);
      for (let c = 0; c < C; c++) {
        expect(dw1[c]).toBe(Math.fround(dw0[c] + 1));
        expect(db1[c]).toBe(Math.fround(db0[c] - 2));
      }
      expect(() => layerNormBackward(g, x, w, true, f.mean, f.rstd, dout, { accumulate: true })).toThrow(/accumulate needs the dw/);
    } finally {
      g.destroy();
    }
  });
});

// The row kernels' launch layout differs by adapter (rowLaunch in client/ops/softmax.ts): SwiftShader gets few
// threads per row, a GPU more. This runs the GPU's layout here, through Dawn, so both layouts are checked.
describe('layer_norm with the GPU row layout (Dawn)', () => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
    rowTuning.perThread = GPU_PER_THREAD;
  });
  afterAll(() => {
    rowTuning.perThread = null;
    g?.destroy();
  });
  it.each(spec('layer_norm').cases.filter((c) => !c.large).map((c) => c.name))('%s', async (c) => {
    const seed = freshSeed();
    const r = await checkOp(g, 'layer_norm', c, seed);
    if (!r.ok) console.error(`layer_norm / ${c} (GPU layout, Dawn) failed with seed ${seed}:`, r.errors);
    expect(r.ok).toBe(true);
  });
});
