// softmax over the last dim in headless Chromium (WebGPU), forward and backward, against the float64
// reference, on fresh random inputs with NaN-poisoned outputs; its refusal of any dim but the last; and every
// case again through Dawn in Node with the launch layout a real GPU gets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { GPU_PER_THREAD, rowTuning } from '../../client/ops/softmax.ts';
import { checkOp, spec } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';
import { writeSafetensors } from '../../shared/safetensors.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe('softmax', () => {
  it.each(casesOf('softmax'))('%s', async (c) => {
    const r = await check(host, 'softmax', c);
    expect(Object.keys(r.errors)).toContain('grad_x');
    expect(r.ok).toBe(true);
  });

  it('refuses a dim other than the last, naming it', async () => {
    const file = writeSafetensors({ input: { shape: [4, 6], data: new Rng(1).normals(24) } });
    await expect(host.runOpFile('softmax', file, false, { dim: 0 })).rejects.toThrow(/softmax: dim=0 is not supported .*only the last dim \(dim=-1 or 1\)/);
  });
});

// The row kernels' launch layout differs by adapter (rowLaunch in client/ops/softmax.ts): SwiftShader gets few
// threads per row, a GPU more. This runs the GPU's layout here, through Dawn, so both layouts are checked.
describe('softmax with the GPU row layout (Dawn)', () => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
    rowTuning.perThread = GPU_PER_THREAD;
  });
  afterAll(() => {
    rowTuning.perThread = null;
    g?.destroy();
  });
  it.each(spec('softmax').cases.filter((c) => !c.large).map((c) => c.name))('%s', async (c) => {
    const seed = freshSeed();
    const r = await checkOp(g, 'softmax', c, seed);
    if (!r.ok) console.error(`softmax / ${c} (GPU layout, Dawn) failed with seed ${seed}:`, r.errors);
    expect(r.ok).toBe(true);
  });
});
