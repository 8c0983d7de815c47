// CPU reference (float64) for the cross_entropy family: F.cross_entropy(logits, target, ignore_index=-1),
// softmax fused in. Mirrors shaders/cross_entropy.wgsl. logits (..., C) are viewed as (N, C) rows and
// target (...) as (N,), as F.cross_entropy(logits.view(-1, C), target.view(-1)).
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { numel, shapeStr, toF64, type HostTensor } from '../tensor.ts';

export type Reduction = 'mean' | 'sum' | 'none';
const REDUCTIONS: readonly string[] = ['mean', 'sum', 'none'];

/**
 * lse (N) = log Σ exp(logits) per row; loss = lse − logits[target] per row (0 where target is ignored);
 * out = their mean over the rows not ignored (NaN, 0/0, when every row is), their sum, or the rows themselves.
 */
export function crossEntropyForward(logits: Float64Array, target: Int32Array, N: number, C: number, ignoreIndex: number, reduction: Reduction) {
  const lse = new Float64Array(N);
  const loss = new Float64Array(N);
  let sum = 0;
  let count = 0;
  for (let r = 0; r < N; r++) {
    const o = r * C;
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[o + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += Math.exp(logits[o + c] - m);
    lse[r] = m + Math.log(s);
    if (target[r] === ignoreIndex) continue;
    loss[r] = lse[r] - logits[o + target[r]];
    sum += loss[r];
    count++;
  }
  const out = reduction === 'none' ? loss : Float64Array.of(reduction === 'sum' ? sum : sum / count);
  return { out, lse };
}

/** dlogits (N, C) = (softmax − onehot(target)) · dout / count (dout per row for 'none'); 0 on ignored rows */
export function crossEntropyBackward(
  logits: Float64Array,
  target: Int32Array,
  lse: Float64Array,
  dout: Float64Array,
  N: number,
  C: number,
  ignoreIndex: number,
  reduction: Reduction,
): Float64Array {
  const dlogits = new Float64Array(N * C);
  let count = 0;
  for (let r = 0; r < N; r++) if (target[r] !== ignoreIndex) count++;
  for (let r = 0; r < N; r++) {
    if (target[r] === ignoreIndex) continue;
    const scale = reduction === 'none' ? dout[r] : reduction === 'sum' ? dout[0] : dout[0] / count;
    const o = r * C;
    for (let c = 0; c < C; c++) dlogits[o + c] = (Math.exp(logits[o + c] - lse[r]) - (c === target[r] ? 1 : 0)) * scale;
  }
  return dlogits;
}

/** options checked and typed; throws with the option's name */
export function crossEntropyOptions(o: OpOptions): { ignoreIndex: number; reduction: Reduction } {
  const ii = o.ignore_index;
  if (typeof ii !== 'number' || !Number.isInteger(ii) || ii < -(2 ** 31) || ii >= 2 ** 31) {
    throw new Error(`cross_entropy: ignore_index must be a 32-bit integer, got ${JSON.stringify(ii)}`);
  }
  if (typeof o.reduction !== 'string' || !REDUCTIONS.includes(o.reduction)) {
    throw new Error(`cross_entropy: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(o.reduction)}`);
  }
  return { ignoreIndex: ii, reduction: o.reduction as Reduction };
}

/** (N, C) from logits (..., C) and target (...), with their shapes checked against each other */
export function crossEntropyRows(logitsShape: number[], targetShape: number[]): { N: number; C: number } {
  if (logitsShape.length < 1) throw new Error('cross_entropy: logits must be (..., C), got a 0-dim tensor');
  const lead = logitsShape.slice(0, -1);
  if (shapeStr(lead) !== shapeStr(targetShape)) {
    throw new Error(
      `cross_entropy: logits are ${shapeStr(logitsShape)} so target must be ${shapeStr(lead)} (one class index per row), ` +
        `got ${shapeStr(targetShape)}`,
    );
  }
  const C = logitsShape[logitsShape.length - 1];
  return { N: numel(lead), C };
}

function validate(i: Tensors, o: OpOptions): void {
  const { ignoreIndex } = crossEntropyOptions(o);
  const { C } = crossEntropyRows(i.logits.shape, i.target.shape);
  const t = i.target.data;
  for (let r = 0; r < t.length; r++) {
    if ((t[r] < 0 || t[r] >= C) && t[r] !== ignoreIndex) {
      const pos = i.target.shape.length > 1 ? ` at index ${shapeStr(unravel(r, i.target.shape))}` : ` at index ${r}`;
      throw new Error(`cross_entropy: target value ${t[r]}${pos} is out of range: class indices must be in [0, ${C}) or equal ignore_index (${ignoreIndex})`);
    }
  }
}

function unravel(flat: number, shape: number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

// Forward: lse per row sums C exps (per thread ≤ max(256, C/256) sequential terms, then a tree), so lse is
// within ~264 ulps of the sum's log, i.e. ~1e-5 absolute at most; loss = lse − x[t] is a difference of
// O(log C + |x|) numbers, far inside 1e-4 of a loss of order log C; the mean adds ≤ N/256 + 8 ulps
// (sequential per thread, then a tree). Backward is elementwise given lse: exp(x − lse) inherits lse's error.
const tolerance = {
  forward: 1e-4,
  backward: 1e-3,
  why: 'lse per row sums C exps in fp32 (≤ max(256, C/256) sequential terms + a tree); the mean over N rows adds ≤ N/256 + 8 ulps; backward is elementwise given lse',
};

const cases: OpCase[] = [
  { name: 'tiny 6x7 some ignored', dims: { T: 6, C: 7, ignored: 0.3 } },
  { name: 'odd 37x53 rows of 29', dims: { B: 37, T: 53, C: 29, ignored: 0.1 } },
  { name: 'ignore_index -100, 97x31', dims: { T: 97, C: 31, ignored: 0.4, ignore: -100 }, options: { ignore_index: -100 } },
  { name: 'sum 64x100', dims: { T: 64, C: 100, ignored: 0.2 }, options: { reduction: 'sum' } },
  { name: 'none 5x8x40', dims: { B: 5, T: 8, C: 40, ignored: 0.2 }, options: { reduction: 'none' } },
  { name: 'char vocab 2048x65', dims: { T: 2048, C: 65, ignored: 0 } },
  { name: 'gpt2 vocab 4x50257', dims: { T: 4, C: 50257, ignored: 0 } },
  { name: 'large 2048x2048', dims: { T: 2048, C: 2048, ignored: 0.05 }, large: true },
];

function makeInputs(rng: Rng, c: OpCase): Tensors {
  const lead = ['B', 'T'].filter((k) => k in c.dims).map((k) => c.dims[k]);
  const { C } = c.dims;
  const N = numel(lead);
  const target = rng.ints(N, C);
  const ignore = c.dims.ignore ?? -1;
  // ignored rows at random, but never all of them (an all-ignored mean is NaN, tested on its own)
  for (let r = 1; r < N; r++) if (rng.next() < c.dims.ignored) target[r] = ignore;
  return { logits: { shape: [...lead, C], data: rng.normals(N * C, 2) }, target: { shape: lead, data: target } };
}

const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });

export const crossEntropyOps: OpSpec[] = [
  {
    name: 'cross_entropy',
    family: 'cross_entropy',
    torch: 'F.cross_entropy(logits.view(-1, C), target.view(-1), ignore_index=-1, reduction=...)',
    inputs: [
      { name: 'logits', aliases: ['input'], differentiable: true },
      { name: 'target', aliases: ['targets'], int: true, differentiable: false },
    ],
    outputs: ['out'],
    saved: ['lse'],
    defaults: { ignore_index: -1, reduction: 'mean' },
    hasBackward: true,
    validate,
    cases,
    makeInputs,
    reference: {
      forward: (i, o) => {
        const { ignoreIndex, reduction } = crossEntropyOptions(o);
        const { N, C } = crossEntropyRows(i.logits.shape, i.target.shape);
        const r = crossEntropyForward(toF64(i.logits), i.target.data as Int32Array, N, C, ignoreIndex, reduction);
        return { out: f64(reduction === 'none' ? i.target.shape : [], r.out), lse: f64(i.target.shape, r.lse) };
      },
      backward: (i, o, g) => {
        const { ignoreIndex, reduction } = crossEntropyOptions(o);
        const { N, C } = crossEntropyRows(i.logits.shape, i.target.shape);
        const logits = toF64(i.logits);
        const target = i.target.data as Int32Array;
        const { lse } = crossEntropyForward(logits, target, N, C, ignoreIndex, reduction);
        return { logits: f64(i.logits.shape, crossEntropyBackward(logits, target, lse, toF64(g.out), N, C, ignoreIndex, reduction)) };
      },
    },
    tolerance,
  },
];
