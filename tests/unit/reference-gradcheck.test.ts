// Every CPU reference's backward against central finite differences of its own forward, in float64.
// The loss is L = Σ_outputs Σ out · g with fixed random g, so dL/dinput is exactly what backward returns.
// Each op's first case is its tiny one; for each differentiable input up to 40 random elements are probed.
import { describe, expect, it } from 'vitest';
import { randomLike, resolveOptions, type Tensors } from '../../shared/ops.ts';
import { SPECS } from '../../shared/reference/index.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';

const H = 1e-5;

describe.each(SPECS.filter((s) => s.hasBackward).map((s) => [s.name, s] as const))('%s reference backward', (_name, s) => {
  it(`matches finite differences (${s.cases[0].name})`, () => {
    const seed = freshSeed();
    const rng = new Rng(seed);
    const c = s.cases[0];
    const opts = resolveOptions(s, c.options);
    const raw = s.makeInputs(rng, c);
    const inputs: Tensors = {};
    for (const [k, t] of Object.entries(raw)) inputs[k] = { shape: t.shape, data: t.data instanceof Int32Array ? t.data : Float64Array.from(t.data) };
    const out0 = s.reference.forward(inputs, opts);
    const g: Tensors = {};
    for (const k of s.outputs) g[k] = randomLike(rng, out0[k]);
    const loss = () => {
      const out = s.reference.forward(inputs, opts);
      let l = 0;
      for (const k of s.outputs) for (let i = 0; i < out[k].data.length; i++) l += out[k].data[i] * g[k].data[i];
      return l;
    };
    const grads = s.reference.backward!(inputs, opts, g);
    let probed = 0;
    for (const inp of s.inputs.filter((i) => i.differentiable && inputs[i.name])) {
      const x = inputs[inp.name].data as Float64Array;
      expect(grads[inp.name], `grad for '${inp.name}'`).toBeDefined();
      expect(grads[inp.name].data.length).toBe(x.length);
      for (let probe = 0; probe < Math.min(40, x.length); probe++) {
        const i = rng.int(x.length);
        const keep = x[i];
        x[i] = keep + H;
        const up = loss();
        x[i] = keep - H;
        const down = loss();
        x[i] = keep;
        const fd = (up - down) / (2 * H);
        const an = grads[inp.name].data[i];
        expect(Math.abs(fd - an), `d${inp.name}[${i}]: finite difference ${fd}, backward ${an} (seed ${seed})`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(fd)));
        probed++;
      }
    }
    expect(probed).toBeGreaterThan(0);
  });
});
