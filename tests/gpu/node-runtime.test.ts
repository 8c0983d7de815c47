// The Node runtime (npm package `webgpu`, Dawn on SwiftShader here): stable under repeated runs with
// readbacks and garbage collection (the crash in ../shared/ENVIRONMENT.md), NaN poisoning really poisons, and a
// lost device is reported in words instead of crashing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { checkOp } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { GpuLostError } from '../../client/runtime/gpu.ts';
import { freshSeed } from '../../shared/rng.ts';

let g: Gpu;
beforeAll(async () => {
  g = await openNodeGpu();
});
afterAll(() => g?.destroy());

describe('Node (Dawn) runtime', () => {
  it('poisons new tensors with NaN when asked, and zeros when asked', async () => {
    g.poison = true;
    const t = g.tensor([37]);
    const p = await g.read(t);
    g.poison = false;
    expect(p.every(Number.isNaN)).toBe(true);
    const z = g.zeros([37]);
    expect([...(await g.read(z))].every((v) => v === 0)).toBe(true);
    g.release(t, z);
  });

  it('survives many runs with readbacks and garbage collection', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    const seed = freshSeed();
    for (let i = 0; i < 40; i++) {
      const r = await checkOp(g, i % 2 ? 'gelu' : 'add', 'odd 37x53x29', seed + i);
      expect(r.ok, `run ${i}: ${JSON.stringify(r.errors)}`).toBe(true);
      // large allocations bring collections sooner; and force them (vitest.config.ts passes --expose-gc)
      new Float32Array(1 << 20).fill(i);
      gc?.();
    }
    expect(gc, 'vitest runs workers with --expose-gc').toBeTypeOf('function');
  });

  // the README says every op is checked in Node too: the elementwise ops the loop above leaves out
  it.each(['tanh', 'sigmoid'])('%s matches its reference, scalar and vec4 kernels', async (op) => {
    const seed = freshSeed();
    for (const c of ['odd 37x53x29', 'odd 4x9x5 (vec4)']) {
      const r = await checkOp(g, op, c, seed);
      expect(r.ok, `${op} / ${c} (seed ${seed}): ${JSON.stringify(r.errors)}`).toBe(true);
    }
  });

  it('reports a lost device in words and refuses further work', async () => {
    const lost = await openNodeGpu();
    lost.device.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(lost.lost).toMatch(/The GPU device was lost \(destroyed\)/);
    expect(() => {
      lost.fill(lost.tensor([4]), 1);
      lost.flush();
    }).toThrow(GpuLostError);
  });
});
