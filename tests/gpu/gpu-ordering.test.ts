// Recorded clears and copies run in order with the dispatches around them, inside one flush (Node/Dawn).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { add } from '../../client/ops/elementwise.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';

let g: Gpu;
beforeAll(async () => {
  g = await openNodeGpu();
});
afterAll(() => g?.destroy());

it('copy, clear and dispatches keep their recorded order', async () => {
  const rng = new Rng(freshSeed());
  const a = rng.floats(37);
  const x = g.upload({ shape: [37], data: a });
  const flat = g.tensor([100]);
  g.fill(flat, 7); // dispatch
  g.copy(x, 4, flat, 40, 36 * 4); // x[1..37) -> flat[10..46)
  const y = add(g, flat, flat); // dispatch reading the copy
  g.fill(flat, 0); // clear after the add has read flat
  g.copy(x, 0, flat, 0, 4); // flat[0] = x[0]
  const [fy, ff] = [await g.read(y), await g.read(flat)];
  for (let i = 0; i < 100; i++) {
    const want = i >= 10 && i < 46 ? 2 * a[i - 9] : 14;
    expect(fy[i]).toBeCloseTo(want, 5);
    expect(ff[i]).toBe(i === 0 ? a[0] : 0);
  }
  expect(() => g.copy(x, 2, flat, 0, 4)).toThrow(/multiples of 4 bytes/);
  g.release(x, flat, y);
});
