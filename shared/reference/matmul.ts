// CPU reference (float64) for the matmul family: torch.matmul(op(a), op(b)) + bias, batched, where op
// transposes the last two dims when transpose_a / transpose_b is set. Mirrors shaders/matmul.wgsl.
//
// Shapes (M, K, N as in out (..., M, N) = op(a) (..., M, K) @ op(b) (..., K, N)):
//   a     (..., M, K), or (..., K, M) with transpose_a
//   b     (..., K, N), or (..., N, K) with transpose_b
//   bias  (N,), optional
// Either a or b may be 2-D while the other is batched: the 2-D one is shared by every batch (as torch
// broadcasts a weight), and its gradient is summed over the batch. Batch dims must match when both are batched.
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { numel, shapeStr, toF64, type HostTensor } from '../tensor.ts';

export interface MatmulShape {
  /** batch dims of the output: those of whichever operand is batched (both match when both are) */
  batch: number[];
  B: number;
  M: number;
  K: number;
  N: number;
  /** whether a / b carry the batch (false: 2-D, shared by every batch) */
  aBatched: boolean;
  bBatched: boolean;
}

/** shapes of op(a) @ op(b) (+ bias), with the clear errors the GPU op throws too */
export function matmulShape(aShape: readonly number[], bShape: readonly number[], transA: boolean, transB: boolean, biasShape?: readonly number[]): MatmulShape {
  const as = shapeStr(aShape);
  const bs = shapeStr(bShape);
  if (aShape.length < 2) throw new Error(`matmul: a is ${as} but must have at least 2 dims (1-D inputs are not supported: reshape to (1, K) or (K, 1))`);
  if (bShape.length < 2) throw new Error(`matmul: b is ${bs} but must have at least 2 dims (1-D inputs are not supported: reshape to (K, 1) or (1, K))`);
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const [M, Ka] = transA ? [ac, ar] : [ar, ac];
  const [Kb, N] = transB ? [bc, br] : [br, bc];
  if (Ka !== Kb) {
    const how = `${transA ? 'transpose_a' : ''}${transA && transB ? ', ' : ''}${transB ? 'transpose_b' : ''}`;
    throw new Error(`matmul: a is ${as} but b is ${bs}${how ? ` (with ${how})` : ''}: inner sizes ${Ka} and ${Kb} differ`);
  }
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const aBatched = aBatch.length > 0;
  const bBatched = bBatch.length > 0;
  if (aBatched && bBatched && shapeStr(aBatch) !== shapeStr(bBatch)) {
    throw new Error(`matmul: a is ${as} but b is ${bs}: batch dims ${shapeStr(aBatch)} and ${shapeStr(bBatch)} differ (one of them may be 2-D instead)`);
  }
  if (biasShape && (biasShape.length !== 1 || biasShape[0] !== N)) {
    throw new Error(`matmul: bias is ${shapeStr(biasShape)} but must be (${N},): one value per output column`);
  }
  const batch = aBatched ? aBatch : bBatch;
  return { batch: [...batch], B: numel(batch), M, K: Ka, N, aBatched, bBatched };
}

const opts = (o: OpOptions) => ({ transA: !!o.transpose_a, transB: !!o.transpose_b });

/** out (B, M, N) = op(a) @ op(b) + bias, plainly, in float64 */
export function matmulForward(out: Float64Array, a: Float64Array, b: Float64Array, bias: Float64Array | null, s: MatmulShape, transA: boolean, transB: boolean): void {
  const { B, M, K, N } = s;
  for (let z = 0; z < B; z++) {
    const ao = s.aBatched ? z * M * K : 0;
    const bo = s.bBatched ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = bias ? bias[n] : 0;
        for (let k = 0; k < K; k++) {
          const av = transA ? a[ao + k * M + m] : a[ao + m * K + k];
          const bv = transB ? b[bo + n * K + k] : b[bo + k * N + n];
          acc += av * bv;
        }
        out[(z * M + m) * N + n] = acc;
      }
    }
  }
}

/**
 * grads given dout (B, M, N): da = dout @ op(b)^T (laid out as a: transposed back with transpose_a),
 * db = op(a)^T @ dout (laid out as b), each summed over the batch when its operand is shared; dbias = Σ rows.
 * Every grad is written (=), never accumulated into.
 */
export function matmulBackward(da: Float64Array, db: Float64Array, dbias: Float64Array | null, dout: Float64Array, a: Float64Array, b: Float64Array, s: MatmulShape, transA: boolean, transB: boolean): void {
  const { B, M, K, N } = s;
  da.fill(0);
  db.fill(0);
  dbias?.fill(0);
  for (let z = 0; z < B; z++) {
    const ao = s.aBatched ? z * M * K : 0;
    const bo = s.bBatched ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        const d = dout[(z * M + m) * N + n];
        if (dbias) dbias[n] += d;
        for (let k = 0; k < K; k++) {
          const ai = transA ? ao + k * M + m : ao + m * K + k;
          const bi = transB ? bo + n * K + k : bo + k * N + n;
          da[ai] += d * b[bi];
          db[bi] += d * a[ai];
        }
      }
    }
  }
}

const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });

function shapeOf(i: Tensors, o: OpOptions): MatmulShape {
  const { transA, transB } = opts(o);
  return matmulShape(i.a.shape, i.b.shape, transA, transB, i.bias?.shape);
}

function forward(i: Tensors, o: OpOptions): Tensors {
  const s = shapeOf(i, o);
  const { transA, transB } = opts(o);
  const out = new Float64Array(s.B * s.M * s.N);
  matmulForward(out, toF64(i.a), toF64(i.b), i.bias ? toF64(i.bias) : null, s, transA, transB);
  return { out: f64([...s.batch, s.M, s.N], out) };
}

function backward(i: Tensors, o: OpOptions, g: Tensors): Tensors {
  const s = shapeOf(i, o);
  const { transA, transB } = opts(o);
  const da = new Float64Array(i.a.data.length);
  const db = new Float64Array(i.b.data.length);
  const dbias = i.bias ? new Float64Array(s.N) : null;
  matmulBackward(da, db, dbias, toF64(g.out), toF64(i.a), toF64(i.b), s, transA, transB);
  const grads: Tensors = { a: f64(i.a.shape, da), b: f64(i.b.shape, db) };
  if (dbias) grads.bias = f64([s.N], dbias);
  return grads;
}

// dims: M, K, N; B > 0 batches the operands except a shared one (shared: 1 for b, 2 for a); bias: 1 adds one.
const cases: OpCase[] = [
  { name: 'tiny 3x5x4 bias', dims: { M: 3, K: 5, N: 4, bias: 1 } },
  { name: 'tiny 2x3x5x4 transposed', dims: { B: 2, M: 3, K: 5, N: 4 }, options: { transpose_a: true, transpose_b: true } },
  { name: 'odd 37x53x29', dims: { M: 37, K: 53, N: 29 } },
  { name: 'odd 37x53x29 trans_a', dims: { M: 37, K: 53, N: 29 }, options: { transpose_a: true } },
  { name: 'odd 37x53x29 trans_b', dims: { M: 37, K: 53, N: 29 }, options: { transpose_b: true } },
  { name: 'odd 37x53x29 both+bias', dims: { M: 37, K: 53, N: 29, bias: 1 }, options: { transpose_a: true, transpose_b: true } },
  // b 2-D and shared by every batch (a weight), so grad_b sums over the batch
  { name: 'odd 3x37x53x29 b2d bias', dims: { B: 3, M: 37, K: 53, N: 29, shared: 1, bias: 1 } },
  { name: 'odd 3x37x53x29 b2d trans', dims: { B: 3, M: 37, K: 53, N: 29, shared: 1 }, options: { transpose_a: true, transpose_b: true } },
  { name: 'odd 3x37x53x29 a2d tr_a', dims: { B: 3, M: 37, K: 53, N: 29, shared: 2 }, options: { transpose_a: true } },
  { name: 'odd 5x13x7x11 trans_b', dims: { B: 5, M: 13, K: 7, N: 11 }, options: { transpose_b: true } },
  { name: 'odd 1x300x5 bias', dims: { M: 1, K: 300, N: 5, bias: 1 } },
  // transformer-like: the qkv projection (B*T, C) @ (C, 3C) for C = 128, and per-head attention scores
  { name: 'skinny 2048x128x384 bias', dims: { M: 2048, K: 128, N: 384, bias: 1 } },
  { name: 'skinny 8x256x64x256 tr_b', dims: { B: 8, M: 256, K: 64, N: 256 }, options: { transpose_b: true } },
  { name: 'large 512x512x512', dims: { M: 512, K: 512, N: 512 }, large: true },
];

function makeInputs(rng: Rng, c: OpCase): Tensors {
  const { M, K, N, B = 0, shared = 0, bias = 0 } = c.dims;
  const { transA, transB } = opts({ ...c.options });
  const aBatch = B && shared !== 2 ? [B] : [];
  const bBatch = B && shared !== 1 ? [B] : [];
  const t: Tensors = {
    a: { shape: [...aBatch, ...(transA ? [K, M] : [M, K])], data: rng.floats(numel(aBatch) * M * K) },
    b: { shape: [...bBatch, ...(transB ? [N, K] : [K, N])], data: rng.floats(numel(bBatch) * K * N) },
  };
  if (bias) t.bias = { shape: [N], data: rng.floats(N) };
  return t;
}

export const matmulOps: OpSpec[] = [
  {
    name: 'matmul',
    family: 'matmul',
    torch: 'torch.matmul(a.mT if transpose_a else a, b.mT if transpose_b else b) + bias',
    inputs: [
      { name: 'a', aliases: ['input'], differentiable: true },
      { name: 'b', aliases: ['other', 'mat2'], differentiable: true },
      { name: 'bias', optional: true, differentiable: true },
    ],
    outputs: ['out'],
    defaults: { transpose_a: false, transpose_b: false },
    hasBackward: true,
    validate: (i, o) => void shapeOf(i, o),
    cases,
    makeInputs,
    reference: { forward, backward },
    tolerance: {
      forward: 1e-4,
      backward: 1e-3,
      why:
        'each element is a length-K dot product (K ≤ 2048 in the cases; ≤ B·M for a shared operand\'s grad) ' +
        'accumulated in fp32: the normwise error grows like √K·2⁻²⁴ on random data, ~1e-6 here',
    },
  },
];
