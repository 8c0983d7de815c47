// Fused scaled dot-product attention in headless Chromium (WebGPU), forward (out, lse) and backward (grad_q,
// grad_k, grad_v), against the float64 reference, on fresh random inputs with NaN-poisoned outputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
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
