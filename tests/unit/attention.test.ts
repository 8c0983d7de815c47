// attention's host-side errors: the spec's validate (what `gradswarm op` and the runner check before any GPU
// work) and the GPU functions' own shape checks, which throw before recording anything.
import { describe, expect, it } from 'vitest';
import { attention, attentionBackward, forceAttentionVariant, selectVariant } from '../../client/ops/attention.ts';
import type { Gpu, GpuTensor } from '../../client/runtime/gpu.ts';
import { randomLike, resolveOptions, type OpOptions, type Tensors } from '../../shared/ops.ts';
import { attentionOps } from '../../shared/reference/attention.ts';
import { freshSeed, Rng } from '../../shared/rng.ts';

const spec = attentionOps[0];
const t = (...shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
const validate = (i: Tensors, o: OpOptions = {}) => spec.validate!(i, resolveOptions(spec, o));

describe('attention validate', () => {
  const ok = { q: t(1, 2, 3, 4), k: t(1, 2, 5, 4), v: t(1, 2, 5, 4) };
  it('accepts cross-attention shapes and explicit options', () => {
    expect(() => validate(ok, { is_causal: true, scale: 0.5 })).not.toThrow();
  });
  it.each([
    ['q not 4-D', { ...ok, q: t(2, 3, 4) }, {}, /q must be 4-D \(B, H, T, D\), got shape \(2, 3, 4\)/],
    ['k and v differ', { ...ok, v: t(1, 2, 6, 4) }, {}, /k is \(1, 2, 5, 4\) but v is \(1, 2, 6, 4\)/],
    ['heads differ', { ...ok, k: t(1, 3, 5, 4), v: t(1, 3, 5, 4) }, {}, /batch and head sizes \(B, H\) must match/],
    ['head sizes differ', { ...ok, k: t(1, 2, 5, 8), v: t(1, 2, 5, 8) }, {}, /head sizes D 4 and 8 differ/],
    ['D too large', { q: t(1, 1, 2, 129), k: t(1, 1, 2, 129), v: t(1, 1, 2, 129) }, {}, /D = 129 is outside 1\.\.128/],
    ['no keys', { ...ok, k: t(1, 2, 0, 4), v: t(1, 2, 0, 4) }, {}, /S = 0 keys/],
    ['is_causal not boolean', ok, { is_causal: 1 }, /is_causal must be true or false, got 1/],
    ['scale not a number', ok, { scale: 'big' }, /scale must be a finite number or null/],
  ])('%s', (_name, inputs, options, message) => {
    expect(() => validate(inputs as Tensors, options)).toThrow(message);
  });
  it.each(['attn_mask', 'dropout_p', 'enable_gqa'])('rejects the option %s', (name) => {
    expect(() => resolveOptions(spec, { [name]: 0 })).toThrow(`attention: unknown option '${name}' (known: is_causal, scale)`);
  });
});

describe('attention GPU host checks', () => {
  // the checks run before any buffer is made or dispatch recorded, so a stand-in Gpu is enough
  const g = { limits: { maxComputeWorkgroupsPerDimension: 65535 }, isFallback: true } as unknown as Gpu;
  const gt = (...shape: number[]) => ({ shape, dtype: 'f32', buffer: null }) as unknown as GpuTensor;
  it('forward names mismatched shapes', () => {
    expect(() => attention(g, gt(2, 4, 8, 16), gt(2, 4, 8, 32), gt(2, 4, 8, 32))).toThrow(/head sizes D 16 and 32 differ/);
  });
  it('backward checks out, dout and lse', () => {
    const q = gt(2, 4, 8, 16);
    const kv = gt(2, 4, 9, 16);
    expect(() => attentionBackward(g, q, kv, kv, gt(2, 4, 9, 16), gt(2, 4, 8), q)).toThrow('attentionBackward: out is (2, 4, 9, 16), expected (2, 4, 8, 16)');
    expect(() => attentionBackward(g, q, kv, kv, q, gt(2, 4, 8), gt(2, 4, 8, 15))).toThrow('attentionBackward: dout is (2, 4, 8, 15), expected (2, 4, 8, 16)');
    expect(() => attentionBackward(g, q, kv, kv, q, gt(2, 4, 9), q)).toThrow('attentionBackward: lse is (2, 4, 9), expected (2, 4, 8)');
  });
});

describe('attention backward variant', () => {
  const gpu = (isFallback: boolean, adapterName: string) => ({ isFallback, adapterName }) as unknown as Gpu;
  it('is rows in registers on SwiftShader up to D = 64, rows in arrays otherwise', () => {
    expect(selectVariant(gpu(true, 'google / swiftshader'), 32)).toBe('reg');
    expect(selectVariant(gpu(false, 'google / SwiftShader Device'), 64)).toBe('reg');
    expect(selectVariant(gpu(true, 'google / swiftshader'), 65)).toBe('array');
    expect(selectVariant(gpu(false, 'nvidia / hopper'), 32)).toBe('array');
  });
  it('can be forced, within what the variant supports', () => {
    try {
      forceAttentionVariant('reg');
      expect(selectVariant(gpu(false, 'nvidia / hopper'), 64)).toBe('reg');
      expect(selectVariant(gpu(false, 'nvidia / hopper'), 128)).toBe('array');
      forceAttentionVariant('array');
      expect(selectVariant(gpu(true, 'google / swiftshader'), 32)).toBe('array');
    } finally {
      forceAttentionVariant(null);
    }
  });
});

// The shared gradcheck probes only the first (causal, square) case; this one covers cross-attention, causal
// with T > S and T < S, and an explicit scale, by central differences of the reference's own forward.
describe('attention reference backward, more shapes', () => {
  const rng = new Rng(freshSeed());
  it.each([
    ['cross 5x7 D=3', { B: 1, H: 2, T: 5, S: 7, D: 3 }, {}],
    ['causal T > S, scale 0.3', { B: 1, H: 1, T: 6, S: 4, D: 5 }, { is_causal: true, scale: 0.3 }],
    ['causal T < S', { B: 2, H: 1, T: 3, S: 6, D: 2 }, { is_causal: true }],
  ])('%s', (_name, dims, options) => {
    const opts = resolveOptions(spec, options);
    const raw = spec.makeInputs(rng, { name: 'fd', dims });
    const inputs: Tensors = {};
    for (const [k, x] of Object.entries(raw)) inputs[k] = { shape: x.shape, data: Float64Array.from(x.data) };
    const g = randomLike(rng, spec.reference.forward(inputs, opts).out);
    const loss = () => {
      const out = spec.reference.forward(inputs, opts).out.data;
      let l = 0;
      for (let i = 0; i < out.length; i++) l += out[i] * g.data[i];
      return l;
    };
    const grads = spec.reference.backward!(inputs, opts, { out: g });
    for (const name of ['q', 'k', 'v']) {
      const x = inputs[name].data as Float64Array;
      for (let i = 0; i < x.length; i++) {
        const keep = x[i];
        x[i] = keep + 1e-5;
        const up = loss();
        x[i] = keep - 1e-5;
        const down = loss();
        x[i] = keep;
        const fd = (up - down) / 2e-5;
        expect(Math.abs(fd - grads[name].data[i]), `d${name}[${i}]`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(fd)));
      }
    }
  });
});
