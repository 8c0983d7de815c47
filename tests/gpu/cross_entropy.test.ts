// cross_entropy (softmax fused) in headless Chromium (WebGPU), forward and backward, against the float64
// reference, on fresh random inputs with NaN-poisoned outputs; the all-ignored mean (NaN, as PyTorch) and
// the refusal of out-of-range targets; and every case again through Dawn in Node with a real GPU's launch layout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { GPU_PER_THREAD, rowTuning } from '../../client/ops/softmax.ts';
import { checkOp, spec } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { readSafetensors, writeSafetensors } from '../../shared/safetensors.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

function file(target: number[], gradOut?: number) {
  const rng = new Rng(7);
  const t = {
    input: { shape: [target.length, 5], data: rng.normals(target.length * 5) },
    target: { shape: [target.length], data: Int32Array.from(target) },
    ...(gradOut === undefined ? {} : { grad_out: { shape: [], data: Float32Array.of(gradOut) } }),
  };
  return writeSafetensors(t);
}

describe('cross_entropy', () => {
  it.each(casesOf('cross_entropy'))('%s', async (c) => {
    const r = await check(host, 'cross_entropy', c);
    expect(Object.keys(r.errors)).toEqual(expect.arrayContaining(['out', 'lse', 'grad_logits']));
    expect(r.ok).toBe(true);
  });

  it('gives NaN (0/0) for a mean over only ignored rows, and zero grads', async () => {
    const out = readSafetensors(await host.runOpFile('cross_entropy', file([-1, -1, -1], 1.5), true, {})).tensors;
    expect(out.out.shape).toEqual([]);
    expect(out.out.data[0]).toBeNaN();
    expect([...out.lse.data].every(Number.isFinite)).toBe(true);
    expect([...out.grad_input.data]).toEqual(new Array(15).fill(0));
  });

  it("gives 0 for a sum over only ignored rows", async () => {
    const out = readSafetensors(await host.runOpFile('cross_entropy', file([-100, -100], 1), true, { ignore_index: -100, reduction: 'sum' })).tensors;
    expect(out.out.data[0]).toBe(0);
    expect([...out.grad_input.data]).toEqual(new Array(10).fill(0));
  });

  it('refuses an out-of-range target, naming its value and position', async () => {
    await expect(host.runOpFile('cross_entropy', file([0, 4, 5, -1]), false, {})).rejects.toThrow(
      /cross_entropy: target value 5 at index 2 is out of range: class indices must be in \[0, 5\) or equal ignore_index \(-1\)/,
    );
  });
});

// The row kernels' launch layout differs by adapter (rowLaunch in client/ops/softmax.ts): SwiftShader gets few
// threads per row, a GPU more. This runs the GPU's layout here, through Dawn, so both layouts are checked.
describe('cross_entropy with the GPU row layout (Dawn)', () => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
    rowTuning.perThread = GPU_PER_THREAD;
  });
  afterAll(() => {
    rowTuning.perThread = null;
    g?.destroy();
  });
  it.each(spec('cross_entropy').cases.filter((c) => !c.large).map((c) => c.name))('%s', async (c) => {
    const seed = freshSeed();
    const r = await checkOp(g, 'cross_entropy', c, seed);
    if (!r.ok) console.error(`cross_entropy / ${c} (GPU layout, Dawn) failed with seed ${seed}:`, r.errors);
    expect(r.ok).toBe(true);
  });
});
