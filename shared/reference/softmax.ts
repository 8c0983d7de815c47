// CPU reference (float64) for the softmax family: torch.softmax(x, dim=-1), max-subtracted.
// Mirrors shaders/softmax.wgsl. x is (..., C), viewed as (N, C) rows.
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { numel, shapeStr, toF64, type HostTensor } from '../tensor.ts';

/** out (N, C) = exp(x - max) / Σ exp(x - max), per row */
export function softmaxForward(x: Float64Array, N: number, C: number): Float64Array {
  const out = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, x[o + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(x[o + c] - m);
    for (let c = 0; c < C; c++) out[o + c] = Math.exp(x[o + c] - m) / s;
  }
  return out;
}

/** dx (N, C) = y ⊙ (dy − Σ dy⊙y), per row, from the forward's output y */
export function softmaxBackward(y: Float64Array, dy: Float64Array, N: number, C: number): Float64Array {
  const dx = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let dot = 0;
    for (let c = 0; c < C; c++) dot += dy[o + c] * y[o + c];
    for (let c = 0; c < C; c++) dx[o + c] = y[o + c] * (dy[o + c] - dot);
  }
  return dx;
}

/** (N, C) of a (..., C) tensor; throws unless `dim` names the last dim */
export function softmaxRows(x: HostTensor | { shape: number[] }, dim: unknown, op = 'softmax'): { N: number; C: number } {
  const rank = x.shape.length;
  if (rank < 1) throw new Error(`${op}: x must have at least 1 dim, got a 0-dim tensor`);
  if (typeof dim !== 'number' || !Number.isInteger(dim)) throw new Error(`${op}: dim must be an integer, got ${JSON.stringify(dim)}`);
  if (dim !== -1 && dim !== rank - 1) {
    throw new Error(`${op}: dim=${dim} is not supported for x of shape ${shapeStr(x.shape)}: only the last dim (dim=-1 or ${rank - 1}) is`);
  }
  const C = x.shape[rank - 1];
  return { N: C === 0 ? 0 : numel(x.shape) / C, C };
}

const validate = (i: Tensors, o: OpOptions) => void softmaxRows(i.x, o.dim);

// Each output is exp(x - max) / s, where s sums C terms: per thread a strided run of ≤ max(256, C/256) terms
// (rowLaunch: ≤ 16 on a GPU, ≤ 256 on SwiftShader), then a ≤ 8-level tree, so its relative error is at most
// ~264 ulps (1.6e-5) and typically ~1e-6; exp adds a few ulps. Backward's row sum Σ dy⊙y has the same
// length, so its error, relative to max|dy|, is of the same order; y ⊙ (dy − dot) keeps it normwise.
const tolerance = {
  forward: 1e-4,
  backward: 1e-3,
  why: 'row sums in fp32 of ≤ max(256, C/256) sequential terms per thread plus a ≤ 8-level tree: ≤ ~264 ulps (1.6e-5) relative, ~1e-6 typical',
};

const cases: OpCase[] = [
  { name: 'tiny 3x5x7', dims: { B: 3, T: 5, C: 7 } },
  { name: 'odd 37x53x29', dims: { B: 37, T: 53, C: 29 } },
  { name: 'short rows 3000x3', dims: { T: 3000, C: 3 } },
  { name: 'single column 257x1', dims: { T: 257, C: 1 } },
  { name: 'long rows 5x5000', dims: { T: 5, C: 5000 } },
  { name: 'vector 50257', dims: { C: 50257 } },
  { name: 'dim 2 of 4x6x33', dims: { B: 4, T: 6, C: 33 }, options: { dim: 2 } },
  { name: 'large 4096x1024', dims: { T: 4096, C: 1024 }, large: true },
];

const shapeOf = (c: OpCase) => ['B', 'T', 'C'].filter((k) => k in c.dims).map((k) => c.dims[k]);
const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });

export const softmaxOps: OpSpec[] = [
  {
    name: 'softmax',
    family: 'softmax',
    torch: 'torch.softmax(x, dim=-1)',
    inputs: [{ name: 'x', aliases: ['input'], differentiable: true }],
    outputs: ['out'],
    defaults: { dim: -1 },
    hasBackward: true,
    validate,
    cases,
    makeInputs: (rng: Rng, c: OpCase) => {
      const shape = shapeOf(c);
      return { x: { shape, data: rng.normals(numel(shape), 3) } };
    },
    reference: {
      forward: (i, o) => {
        const { N, C } = softmaxRows(i.x, o.dim);
        return { out: f64(i.x.shape, softmaxForward(toF64(i.x), N, C)) };
      },
      backward: (i, o, g) => {
        const { N, C } = softmaxRows(i.x, o.dim);
        const y = softmaxForward(toF64(i.x), N, C);
        return { x: f64(i.x.shape, softmaxBackward(y, toF64(g.out), N, C)) };
      },
    },
    tolerance,
  },
];
