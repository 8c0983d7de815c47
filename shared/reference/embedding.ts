// CPU reference (float64) for the embedding family: F.embedding(idx, weight, padding_idx). Mirrors
// shaders/embedding.wgsl. Shapes: idx (...) of ints in [0, V), weight (V, C), out (..., C).
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { shapeStr, toF64, type HostTensor } from '../tensor.ts';

/** padding_idx as a row number in [0, V), or -1 for none; negative values count from the end, as in PyTorch */
export function paddingRow(paddingIdx: unknown, V: number): number {
  if (paddingIdx === null || paddingIdx === undefined) return -1;
  const p = Number(paddingIdx);
  if (!Number.isInteger(p) || p < -V || p >= V) {
    throw new Error(`embedding: padding_idx ${JSON.stringify(paddingIdx)} must be an integer in [-${V}, ${V}) for a weight of ${V} rows`);
  }
  return p < 0 ? V + p : p;
}

/** position of flat element n in a tensor of `shape`, as PyTorch prints it: idx[1, 4] */
function where(shape: number[], n: number): string {
  const at: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    at.unshift(n % shape[d]);
    n = Math.floor(n / shape[d]);
  }
  return `idx[${at.join(', ')}]`;
}

export function embeddingValidate(idx: HostTensor, weight: HostTensor, options: OpOptions): void {
  if (weight.shape.length !== 2) throw new Error(`embedding: weight must be 2-D (V, C), got shape ${shapeStr(weight.shape)}`);
  const V = weight.shape[0];
  paddingRow(options.padding_idx, V);
  for (let n = 0; n < idx.data.length; n++) {
    const k = idx.data[n];
    if (!(k >= 0 && k < V)) {
      throw new Error(`embedding: index ${k} at ${where(idx.shape, n)} is out of range for a weight of ${V} rows (indices must be in [0, ${V}))`);
    }
  }
}

// out (N, C) = weight[idx] row by row
export function embeddingForward(out: Float64Array, idx: Int32Array, weight: Float64Array, N: number, C: number): void {
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) out[n * C + c] = weight[idx[n] * C + c];
}

// dweight (V, C) = Σ over positions n with idx[n] = v of dout[n]; the padding row gets none. Writes =, zeroing first.
export function embeddingBackward(dweight: Float64Array, idx: Int32Array, dout: Float64Array, N: number, C: number, pad: number): void {
  dweight.fill(0);
  for (let n = 0; n < N; n++) {
    const v = idx[n];
    if (v === pad) continue;
    for (let c = 0; c < C; c++) dweight[v * C + c] += dout[n * C + c];
  }
}

// Forward copies rows: exact. Backward sums each row's k uses in fp32, in an order fixed by idx (position order,
// with aligned runs of 64 pre-summed): the error is ≲ k·2^-24 of Σ|terms| at worst and ~sqrt(k)·2^-24 of the
// row sum for random signs, so ~1e-6 even when all 999 positions of a case hit one row: far below 1e-3.
const tolerance = {
  forward: 1e-4,
  backward: 1e-3,
  why: 'forward copies rows exactly; backward sums each row over its k uses in fp32 (fixed order), error ~sqrt(k)·6e-8 of the row sum',
};

// dims: B, T (idx shape), V, C, and K: indices are drawn from [0, K) so small K forces repeats
const cases: OpCase[] = [
  { name: 'tiny V=7 C=5 idx 2x3', dims: { B: 2, T: 3, V: 7, C: 5, K: 4 } },
  { name: 'odd V=53 C=29 idx 37x11', dims: { B: 37, T: 11, V: 53, C: 29, K: 53 } },
  { name: 'odd padding_idx=5', dims: { B: 37, T: 11, V: 53, C: 29, K: 9 }, options: { padding_idx: 5 } },
  { name: 'odd padding_idx=-1', dims: { B: 13, T: 7, V: 31, C: 3, K: 31 }, options: { padding_idx: -1 } },
  { name: 'odd one row used 1x999', dims: { B: 1, T: 999, V: 17, C: 33, K: 1 } },
  { name: 'large V=50257 C=64 N=4096', dims: { B: 4, T: 1024, V: 50257, C: 64, K: 50257 }, large: true },
  { name: 'large V=8192 C=768 N=4096', dims: { B: 4, T: 1024, V: 8192, C: 768, K: 8192 }, large: true },
];

export const embeddingOps: OpSpec[] = [
  {
    name: 'embedding',
    family: 'embedding',
    torch: 'F.embedding(idx, weight, padding_idx=None)',
    inputs: [
      { name: 'idx', aliases: ['input'], int: true, differentiable: false },
      { name: 'weight', differentiable: true },
    ],
    outputs: ['out'],
    defaults: { padding_idx: null },
    hasBackward: true,
    validate: (i: Tensors, o: OpOptions) => embeddingValidate(i.idx, i.weight, o),
    cases,
    makeInputs: (rng: Rng, c: OpCase) => {
      const { B, T, V, C, K } = c.dims;
      return { idx: { shape: [B, T], data: rng.ints(B * T, K) }, weight: { shape: [V, C], data: rng.normals(V * C) } };
    },
    reference: {
      forward: (i: Tensors) => {
        const C = i.weight.shape[1];
        const N = i.idx.data.length;
        const out = new Float64Array(N * C);
        embeddingForward(out, i.idx.data as Int32Array, toF64(i.weight), N, C);
        return { out: { shape: [...i.idx.shape, C], data: out } };
      },
      backward: (i: Tensors, o: OpOptions, g: Tensors) => {
        const [V, C] = i.weight.shape;
        const N = i.idx.data.length;
        const dweight = new Float64Array(V * C);
        embeddingBackward(dweight, i.idx.data as Int32Array, toF64(g.out), N, C, paddingRow(o.padding_idx, V));
        return { weight: { shape: [V, C], data: dweight } };
      },
    },
    tolerance,
  },
];
