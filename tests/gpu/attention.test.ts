// Fused scaled dot-product attention in headless Chromium (WebGPU), forward (out, lse) and backward (grad_q,
// grad_k, grad_v), against the float64 reference, on fresh random inputs with NaN-poisoned outputs. Through Dawn
// in Node: every case again with each backward variant forced, so both are checked whatever the adapter picks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { openNodeGpu } from '../../client/host/node-gpu.ts';
import { forceAttentionVariant, type AttentionVariant } from '../../client/ops/attention.ts';
import { checkOp, spec } from '../../client/runner.ts';
import type { Gpu } from '../../client/runtime/gpu.ts';
import { freshSeed } from '../../shared/rng.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe.each(['attention'])('%s', (op) => {
  it.each(casesOf(op))('%s', async (c) => {
    const r = await check(host, op, c);
    expect(Object.keys(r.errors).sort()).toEqual(['grad_k', 'grad_q', 'grad_v', 'lse', 'out']);
    expect(r.ok).toBe(true);
  });
});

// The backward's kernels differ by adapter (selectVariant in client/ops/attention.ts): SwiftShader gets rows in
// registers ('reg', D ≤ 64), a GPU rows in arrays ('array'). Cases with D > 64 run 'array' under either.
describe.each<AttentionVariant>(['array', 'reg'])('attention with the %s backward (Dawn)', (variant) => {
  let g: Gpu;
  beforeAll(async () => {
    g = await openNodeGpu();
    forceAttentionVariant(variant);
  });
  afterAll(() => {
    forceAttentionVariant(null);
    g?.destroy();
  });
  it.each(spec('attention').cases.filter((c) => !c.large).map((c) => c.name))('%s', async (c) => {
    const seed = freshSeed();
    const r = await checkOp(g, 'attention', c, seed);
    if (!r.ok) console.error(`attention / ${c} (${variant} backward, Dawn) failed with seed ${seed}:`, r.errors);
    expect(r.ok).toBe(true);
  });
});
