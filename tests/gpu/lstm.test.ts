// lstm in headless Chromium (WebGPU), forward and BPTT backward, against the float64 reference, on fresh
// random inputs with NaN-poisoned outputs; then its shape errors and the model API (tests/gpu/recurrent.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { casesOf, check, openHarness } from './page.ts';
import { recurrentExtraTests } from './recurrent.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe.each(['lstm'])('%s', (op) => {
  it.each(casesOf(op))('%s', async (c) => {
    const r = await check(host, op, c);
    expect(Object.keys(r.errors)).toContain('grad_weight_hh_l0');
    expect(r.ok).toBe(true);
  });
});

recurrentExtraTests('lstm');
