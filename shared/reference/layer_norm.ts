// CPU reference (float64) for the layer_norm family: F.layer_norm(x, (C,), weight, bias, eps), llm.c style.
// Mirrors shaders/layer_norm.wgsl. x is (..., C), viewed as (N, C) rows; weight and bias are optional.
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { numel, shapeStr, toF64, type HostTensor } from '../tensor.ts';

/** out (N, C) = (x − mean) · rstd · w + b per row; keeps mean (N) and rstd (N) = 1 / sqrt(var + eps) (biased var) */
export function layerNormForward(x: Float64Array, w: Float64Array | null, b: Float64Array | null, N: number, C: number, eps: number) {
  const out = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let m = 0;
    for (let c = 0; c < C; c++) m += x[o + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[o + c] - m) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + eps);
    for (let c = 0; c < C; c++) out[o + c] = (x[o + c] - m) * s * (w ? w[c] : 1) + (b ? b[c] : 0);
    mean[r] = m;
    rstd[r] = s;
  }
  return { out, mean, rstd };
}

/** dx (N, C), dw (C), db (C) from dout (N, C) and the forward's mean and rstd (dw, db null without w, b) */
export function layerNormBackward(dout: Float64Array, x: Float64Array, w: Float64Array | null, hasBias: boolean, mean: Float64Array, rstd: Float64Array, N: number, C: number) {
  const dx = new Float64Array(N * C);
  const dw = w ? new Float64Array(C) : null;
  const db = hasBias ? new Float64Array(C) : null;
  for (let r = 0; r < N; r++) {
    const o = r * C;
    // dnorm = dout · w; dx = rstd · (dnorm − mean(dnorm) − norm · mean(dnorm · norm))
    let dnormMean = 0;
    let dnormNormMean = 0;
    for (let c = 0; c < C; c++) {
      const norm = (x[o + c] - mean[r]) * rstd[r];
      const dnorm = dout[o + c] * (w ? w[c] : 1);
      dnormMean += dnorm;
      dnormNormMean += dnorm * norm;
    }
    dnormMean /= C;
    dnormNormMean /= C;
    for (let c = 0; c < C; c++) {
      const norm = (x[o + c] - mean[r]) * rstd[r];
      const dnorm = dout[o + c] * (w ? w[c] : 1);
      dx[o + c] = (dnorm - dnormMean - norm * dnormNormMean) * rstd[r];
      if (dw) dw[c] += dout[o + c] * norm;
      if (db) db[c] += dout[o + c];
    }
  }
  return { dx, dw, db };
}

/** (N, C) of x, with eps, normalized_shape, weight and bias checked; throws with a clear message */
export function layerNormRows(x: { shape: number[] }, o: OpOptions, w?: { shape: number[] }, b?: { shape: number[] }): { N: number; C: number; eps: number } {
  if (x.shape.length < 1) throw new Error('layer_norm: x must be (..., C), got a 0-dim tensor');
  const C = x.shape[x.shape.length - 1];
  const eps = o.eps;
  if (typeof eps !== 'number' || !(eps >= 0)) throw new Error(`layer_norm: eps must be a number ≥ 0, got ${JSON.stringify(eps)}`);
  const ns = o.normalized_shape;
  if (ns !== null && ns !== undefined) {
    const list = typeof ns === 'number' ? [ns] : ns;
    if (!Array.isArray(list) || list.length !== 1 || list[0] !== C) {
      throw new Error(
        `layer_norm: normalized_shape ${JSON.stringify(ns)} is not supported for x of shape ${shapeStr(x.shape)}: ` +
          `only the last dim is normalized (normalized_shape = [${C}] or null)`,
      );
    }
  }
  for (const [name, t] of [['weight', w], ['bias', b]] as const) {
    if (t && shapeStr(t.shape) !== shapeStr([C])) throw new Error(`layer_norm: ${name} must be (${C}) for x of shape ${shapeStr(x.shape)}, got ${shapeStr(t.shape)}`);
  }
  return { N: C === 0 ? 0 : numel(x.shape) / C, C, eps };
}

// Forward: mean and variance are two passes over a row of C in fp32 (≤ max(256, C/256) sequential terms per
// thread, then a tree): ≤ ~264 ulps each as a bound, ~1e-6 in practice; out adds a few ulps per element.
// Backward: dx uses two row sums of the same kind; dw, db sum N rows per column (≤ max(32, N/256)
// sequential rows per block, then ≤ 256 blocks in order), ~(N/256 + 256) ulps of Σ|terms| as a bound,
// ~1e-6 in practice.
const tolerance = {
  forward: 1e-4,
  backward: 1e-3,
  why: 'two-pass mean/variance over C in fp32 (≤ max(256, C/256) terms per thread + a tree); dw/db sum N rows in blocks of max(32, N/256), then ≤ 256 blocks in order',
};

const cases: OpCase[] = [
  { name: 'tiny 3x4x10', dims: { B: 3, T: 4, C: 10 } },
  { name: 'odd 37x53x29', dims: { B: 37, T: 53, C: 29 } },
  { name: 'odd no affine 37x53x29', dims: { B: 37, T: 53, C: 29, affine: 0 } },
  { name: 'weight only 61x47', dims: { T: 61, C: 47, affine: 1 } },
  { name: 'eps 0.1, offset 33x300', dims: { T: 33, C: 300, offset: 5 }, options: { eps: 0.1, normalized_shape: [300] } },
  { name: 'long rows 8x5000', dims: { T: 8, C: 5000 } },
  { name: 'large 4096x1024', dims: { T: 4096, C: 1024 }, large: true },
];

function makeInputs(rng: Rng, c: OpCase): Tensors {
  const shape = ['B', 'T', 'C'].filter((k) => k in c.dims).map((k) => c.dims[k]);
  const C = c.dims.C;
  const affine = c.dims.affine ?? 2; // 0: neither, 1: weight only, 2: both
  const x = rng.normals(numel(shape), 2);
  if (c.dims.offset) for (let i = 0; i < x.length; i++) x[i] += c.dims.offset;
  const t: Tensors = { x: { shape, data: x } };
  if (affine >= 1) t.weight = { shape: [C], data: rng.floats(C, 0.5, 1.5) };
  if (affine >= 2) t.bias = { shape: [C], data: rng.floats(C, -0.5, 0.5) };
  return t;
}

const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });
const maybe = (t: HostTensor | undefined) => (t ? toF64(t) : null);
const validate = (i: Tensors, o: OpOptions) => void layerNormRows(i.x, o, i.weight, i.bias);

export const layerNormOps: OpSpec[] = [
  {
    name: 'layer_norm',
    family: 'layer_norm',
    torch: 'F.layer_norm(x, (C,), weight, bias, eps=1e-5)',
    inputs: [
      { name: 'x', aliases: ['input'], differentiable: true },
      { name: 'weight', optional: true, differentiable: true },
      { name: 'bias', optional: true, differentiable: true },
    ],
    outputs: ['out'],
    saved: ['mean', 'rstd'],
    defaults: { eps: 1e-5, normalized_shape: null },
    hasBackward: true,
    validate,
    cases,
    makeInputs,
    reference: {
      forward: (i, o) => {
        const { N, C, eps } = layerNormRows(i.x, o, i.weight, i.bias);
        const r = layerNormForward(toF64(i.x), maybe(i.weight), maybe(i.bias), N, C, eps);
        const lead = i.x.shape.slice(0, -1);
        return { out: f64(i.x.shape, r.out), mean: f64(lead, r.mean), rstd: f64(lead, r.rstd) };
      },
      backward: (i, o, g) => {
        const { N, C, eps } = layerNormRows(i.x, o, i.weight, i.bias);
        const x = toF64(i.x);
        const w = maybe(i.weight);
        const f = layerNormForward(x, w, maybe(i.bias), N, C, eps);
        const r = layerNormBackward(toF64(g.out), x, w, !!i.bias, f.mean, f.rstd, N, C);
        const grads: Tensors = { x: f64(i.x.shape, r.dx) };
        if (r.dw) grads.weight = f64([C], r.dw);
        if (r.db) grads.bias = f64([C], r.db);
        return grads;
      },
    },
    tolerance,
  },
];
