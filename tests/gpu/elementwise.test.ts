// gelu, tanh, sigmoid and the residual add in headless Chromium (WebGPU), forward and backward, against the
// float64 references, on fresh random inputs with NaN-poisoned outputs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpHost } from '../../client/host/op-host.ts';
import { casesOf, check, openHarness } from './page.ts';

let host: OpHost;
beforeAll(async () => {
  host = await openHarness();
});
afterAll(() => host?.close());

describe.each(['gelu', 'tanh', 'sigmoid', 'add'])('%s', (op) => {
  it.each(casesOf(op))('%s', async (c) => {
    const r = await check(host, op, c);
    expect(Object.keys(r.errors)).toContain(op === 'add' ? 'grad_other' : 'grad_x');
    expect(r.ok).toBe(true);
  });
});
