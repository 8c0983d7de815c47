// The kernel benchmark's table: one entry per op and size, expanded into a forward row and (where the op has
// one) a backward row. Each entry says what our op gets (inputs by canonical name, options), how much work a
// call does (flops for compute-bound ops, bytes moved for memory-bound ones), and the same computation written
// with @tensorflow/tfjs and @jax-js/jax. Peers appear here as types only, so the Node/Dawn bench (bench/gpu.ts)
// bundles this file without them.
import type * as TF from '@tensorflow/tfjs-core';
import type * as JAX from '@jax-js/jax';
import type { OpOptions } from '../shared/ops.ts';
import { Rng } from '../shared/rng.ts';
import type { HostTensor } from '../shared/tensor.ts';
import { numel } from '../shared/tensor.ts';

export type TfLib = typeof TF;
export type JaxLib = typeof JAX;
type JaxArray = JAX.Array;

/** quick ⊂ full (the browser default) ⊂ gpu (bench/gpu.ts on a real GPU: 4096³ and model-scale sizes) */
export type Tier = 'quick' | 'full' | 'gpu';
export type Pass = 'forward' | 'backward';

export interface InputDesc {
  shape: number[];
  /** integer input with values in [0, int) */
  int?: number;
  /** float values are uniform with standard deviation `scale` (default 1) */
  scale?: number;
  /** |value| (e.g. Adam's second moment) */
  nonneg?: boolean;
}

/** work per call: flops → GFLOPS (compute-bound), bytes → GB/s (memory-bound, minimal traffic) */
export type Work = { flops: number } | { bytes: number };

export interface BenchCase {
  /** GPU op name (GPU_OPS key); `--only` selects by it */
  op: string;
  size: string;
  /** what this row stands for, e.g. 'dA = dC·Bᵀ' for a matmul backward shape */
  note?: string;
  tier: Tier;
  inputs: Record<string, InputDesc>;
  options?: OpOptions;
  forward: Work;
  /** absent: no backward row */
  backward?: Work;
  /** inputs differentiated in the backward row (default: every float input) */
  diff?: string[];
  /** host constants only the tfjs version needs (its additive causal mask), passed with the inputs */
  tfjsConsts?: () => Record<string, HostTensor>;
  /** the op's main output through tfjs (a list for update rules); backward rows take its tf.grads */
  tfjs?: (tf: TfLib, x: Record<string, TF.Tensor>) => TF.Tensor | TF.Tensor[];
  /** the same through jax-js, called inside jit; inputs follow jax-js ownership (each used once, or .ref) */
  jax?: (jax: JaxLib, x: Record<string, JaxArray>) => JaxArray | JaxArray[];
}

export interface BenchRow extends BenchCase {
  pass: Pass;
  work: Work;
  /** unique, stable: names the row between Node and the page */
  key: string;
}

const f = (shape: number[], scale = 1): InputDesc => ({ shape, scale });
const SQRT_2_PI = Math.sqrt(2 / Math.PI);

// ---- matmul: out = op(a) @ op(b); backward shapes are matmuls with a transposed operand ----
function matmul(M: number, K: number, N: number, tier: Tier, backTier: Tier = tier): BenchCase[] {
  const flops = { flops: 2 * M * N * K };
  const size = `${M}×${K}×${N}`;
  return [
    {
      op: 'matmul', size, tier, inputs: { a: f([M, K]), b: f([K, N]) }, forward: flops,
      tfjs: (tf, x) => tf.matMul(x.a, x.b),
      jax: (jax, x) => jax.numpy.matmul(x.a, x.b),
    },
    {
      // dA (M, K) = dC (M, N) @ Bᵀ where B is (K, N)
      op: 'matmul', size, note: 'dA = dC·Bᵀ', tier: backTier, inputs: { a: f([M, N]), b: f([K, N]) }, options: { transpose_b: true }, forward: flops,
      tfjs: (tf, x) => tf.matMul(x.a, x.b, false, true),
      jax: (jax, x) => jax.numpy.matmul(x.a, jax.numpy.matrixTranspose(x.b)),
    },
    {
      // dB (K, N) = Aᵀ @ dC where A is (M, K), dC (M, N)
      op: 'matmul', size, note: 'dB = Aᵀ·dC', tier: backTier, inputs: { a: f([M, K]), b: f([M, N]) }, options: { transpose_a: true }, forward: flops,
      tfjs: (tf, x) => tf.matMul(x.a, x.b, true, false),
      jax: (jax, x) => jax.numpy.matmul(jax.numpy.matrixTranspose(x.a), x.b),
    },
  ];
}

// ---- elementwise (tanh-approximate gelu, residual add) ----
function gelu(R: number, C: number, tier: Tier): BenchCase {
  const n = R * C;
  return {
    op: 'gelu', size: `${R}×${C}`, tier, inputs: { x: f([R, C], 2) }, forward: { bytes: 8 * n }, backward: { bytes: 12 * n },
    // tfjs-core 4.22 has no gelu op: the formula, op by op, as a tfjs model would write it
    tfjs: (tf, x) => {
      const u = tf.mul(SQRT_2_PI, tf.add(x.x, tf.mul(0.044715, tf.pow(x.x, 3))));
      return tf.mul(tf.mul(0.5, x.x), tf.add(1, tf.tanh(u)));
    },
    jax: (jax, x) => jax.nn.gelu(x.x, { approximate: true }),
  };
}

function add(R: number, C: number, tier: Tier): BenchCase {
  return {
    op: 'add', size: `${R}×${C}`, tier, inputs: { input: f([R, C]), other: f([R, C]) }, forward: { bytes: 12 * R * C },
    tfjs: (tf, x) => tf.add(x.input, x.other),
    jax: (jax, x) => jax.numpy.add(x.input, x.other),
  };
}

// ---- reductions over the last dim ----
function softmax(R: number, C: number, tier: Tier): BenchCase {
  const n = R * C;
  return {
    op: 'softmax', size: `${R}×${C}`, tier, inputs: { x: f([R, C], 3) }, forward: { bytes: 8 * n }, backward: { bytes: 12 * n },
    tfjs: (tf, x) => tf.softmax(x.x),
    jax: (jax, x) => jax.nn.softmax(x.x, -1),
  };
}

function crossEntropy(N: number, V: number, tier: Tier): BenchCase {
  return {
    op: 'cross_entropy', size: `${N}×${V}`, tier, inputs: { logits: f([N, V], 2), target: { shape: [N], int: V } },
    forward: { bytes: 4 * N * V + 4 * N }, backward: { bytes: 8 * N * V + 8 * N }, diff: ['logits'],
    // mean over rows of -log softmax(logits)[target], as F.cross_entropy (no target is ignored here)
    tfjs: (tf, x) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(x.logits), tf.oneHot(x.target, V, 1, 0, 'float32')), -1))),
    jax: (jax, x) => jax.nn.logSoftmax(x.logits, -1).mul(jax.nn.oneHot(x.target, V)).sum(-1).mean().neg(),
  };
}

function layerNorm(R: number, C: number, tier: Tier): BenchCase {
  const n = R * C;
  return {
    op: 'layer_norm', size: `${R}×${C}`, tier, inputs: { x: f([R, C]), weight: f([C]), bias: f([C]) },
    forward: { bytes: 8 * n + 8 * C }, backward: { bytes: 12 * n + 16 * C },
    tfjs: (tf, x) => {
      const { mean, variance } = tf.moments(x.x, -1, true);
      return tf.add(tf.mul(tf.mul(tf.sub(x.x, mean), tf.rsqrt(tf.add(variance, 1e-5))), x.weight), x.bias);
    },
    jax: (jax, x) => jax.nn.standardize(x.x, -1, { epsilon: 1e-5 }).mul(x.weight).add(x.bias),
  };
}

// ---- embedding and the optimizer ----
function embedding(B: number, T: number, V: number, C: number, tier: Tier): BenchCase {
  const N = B * T;
  return {
    op: 'embedding', size: `${B}×${T} of ${V}×${C}`, tier, inputs: { idx: { shape: [B, T], int: V }, weight: f([V, C]) },
    forward: { bytes: 8 * N * C + 4 * N }, backward: { bytes: 4 * N * C + 4 * V * C + 4 * N }, diff: ['weight'],
    tfjs: (tf, x) => tf.gather(x.weight, x.idx),
    jax: (jax, x) => jax.numpy.take(x.weight, x.idx, 0),
  };
}

const ADAM = { lr: 1e-3, b1: 0.9, b2: 0.999, eps: 1e-8, wd: 1e-2, step: 10 };
function adamw(n: number, tier: Tier): BenchCase {
  const { lr, b1, b2, eps, wd, step } = ADAM;
  const bc1 = 1 - b1 ** step;
  const bc2 = Math.sqrt(1 - b2 ** step);
  return {
    op: 'adamw', size: `${n >= 1 << 20 ? `${n / (1 << 20)}M` : n} params`, tier,
    inputs: { param: f([n]), grad: f([n]), exp_avg: f([n], 0.1), exp_avg_sq: { shape: [n], scale: 0.01, nonneg: true } },
    options: { lr, betas: [b1, b2], eps, weight_decay: wd, step },
    forward: { bytes: 28 * n }, // read param, grad, m, v; write param, m, v
    tfjs: (tf, x) => {
      const m = tf.add(tf.mul(b1, x.exp_avg), tf.mul(1 - b1, x.grad));
      const v = tf.add(tf.mul(b2, x.exp_avg_sq), tf.mul(1 - b2, tf.square(x.grad)));
      const p = tf.sub(tf.mul(1 - lr * wd, x.param), tf.mul(lr / bc1, tf.div(m, tf.add(tf.div(tf.sqrt(v), bc2), eps))));
      return [p, m, v];
    },
    jax: (jax, x) => {
      const np = jax.numpy;
      const m = x.exp_avg.mul(b1).add(x.grad.ref.mul(1 - b1));
      const v = x.exp_avg_sq.mul(b2).add(np.square(x.grad).mul(1 - b2));
      const p = x.param.mul(1 - lr * wd).sub(m.ref.mul(lr / bc1).div(np.sqrt(v.ref).div(bc2).add(eps)));
      return [p, m, v];
    },
  };
}

// ---- attention: q, k, v (B, H, T, D), causal ----
function attention(B: number, H: number, T: number, D: number, tier: Tier): BenchCase {
  let pairs = 0; // (query, key) pairs left by the top-left causal mask, S = T
  for (let i = 0; i < T; i++) pairs += i + 1;
  return {
    op: 'attention', size: `B${B} H${H} T${T} D${D} causal`, tier, inputs: { q: f([B, H, T, D]), k: f([B, H, T, D]), v: f([B, H, T, D]) },
    options: { is_causal: true },
    // QKᵀ and PV over the unmasked pairs; backward: recomputed QKᵀ, dV, dP, dQ, dK
    forward: { flops: 4 * B * H * pairs * D }, backward: { flops: 10 * B * H * pairs * D },
    tfjsConsts: () => {
      const mask = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
      return { mask: { shape: [T, T], data: mask } };
    },
    tfjs: (tf, x) => {
      const scores = tf.add(tf.mul(tf.matMul(x.q, x.k, false, true), 1 / Math.sqrt(D)), x.mask);
      return tf.matMul(tf.softmax(scores), x.v);
    },
    // jax-js takes (B, T, H, D)
    jax: (jax, x) => {
      const bthd = (a: JaxArray) => a.transpose([0, 2, 1, 3]);
      return jax.nn.dotProductAttention(bthd(x.q), bthd(x.k), bthd(x.v), { isCausal: true }).transpose([0, 2, 1, 3]);
    },
  };
}

// ---- recurrent layers: x (B, T, I), h0 (1, B, H), PyTorch's gate order; peers unroll the time loop ----
type Cell = 'rnn' | 'lstm' | 'gru';
const GATES: Record<Cell, number> = { rnn: 1, lstm: 4, gru: 3 };

function recurrent(cell: Cell, B: number, T: number, I: number, H: number, tier: Tier): BenchCase {
  const G = GATES[cell];
  const s = 1 / Math.sqrt(H); // PyTorch's init range, so gates do not saturate
  const inputs: Record<string, InputDesc> = {
    x: f([B, T, I]), h0: f([1, B, H], 0.5),
    weight_ih_l0: f([G * H, I], s), weight_hh_l0: f([G * H, H], s), bias_ih_l0: f([G * H], s), bias_hh_l0: f([G * H], s),
  };
  if (cell === 'lstm') inputs.c0 = f([1, B, H], 0.5);
  const mm = 2 * B * T * G * H * (I + H);
  return {
    op: cell, size: `B${B} T${T} I${I} H${H}`, tier, inputs, forward: { flops: mm }, backward: { flops: 2 * mm },
    tfjs: (tf, x) => tfRecurrent(tf, cell, x, B, T, I, H),
    jax: (jax, x) => jaxRecurrent(jax, cell, x, B, T, I, H),
  };
}

/** the layer in tfjs ops, PyTorch's gate layout and order; also the tfjs side of `bench train` (bench/train-tfjs.ts) */
export function tfRecurrent(tf: TfLib, cell: Cell, x: Record<string, TF.Tensor>, B: number, T: number, I: number, H: number): TF.Tensor {
  const G = GATES[cell];
  // input projection for every step at once, then one small matmul per step
  const xp = tf.reshape(tf.add(tf.matMul(tf.reshape(x.x, [B * T, I]), x.weight_ih_l0, false, true), x.bias_ih_l0), [B, T, G * H]);
  const steps = tf.unstack(xp, 1);
  let h = tf.reshape(x.h0, [B, H]);
  let c = cell === 'lstm' ? tf.reshape(x.c0, [B, H]) : h;
  const outs: TF.Tensor[] = [];
  for (let t = 0; t < T; t++) {
    const hp = tf.add(tf.matMul(h, x.weight_hh_l0, false, true), x.bias_hh_l0);
    if (cell === 'rnn') h = tf.tanh(tf.add(steps[t], hp));
    else if (cell === 'lstm') {
      const [i, fg, g, o] = tf.split(tf.add(steps[t], hp), 4, 1);
      c = tf.add(tf.mul(tf.sigmoid(fg), c), tf.mul(tf.sigmoid(i), tf.tanh(g)));
      h = tf.mul(tf.sigmoid(o), tf.tanh(c));
    } else {
      const [xr, xz, xn] = tf.split(steps[t], 3, 1);
      const [hr, hz, hn] = tf.split(hp, 3, 1);
      const r = tf.sigmoid(tf.add(xr, hr));
      const z = tf.sigmoid(tf.add(xz, hz));
      const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
      h = tf.add(n, tf.mul(z, tf.sub(h, n)));
    }
    outs.push(h);
  }
  return tf.stack(outs, 1);
}

function jaxRecurrent(jax: JaxLib, cell: Cell, x: Record<string, JaxArray>, B: number, T: number, I: number, H: number): JaxArray {
  const np = jax.numpy;
  const G = GATES[cell];
  const xp = np.matmul(x.x.reshape([B * T, I]), np.matrixTranspose(x.weight_ih_l0)).add(x.bias_ih_l0).reshape([B, T, G * H]);
  const steps = np.unstack(xp, 1);
  const whhT = np.matrixTranspose(x.weight_hh_l0);
  let h = x.h0.reshape([B, H]);
  let c = cell === 'lstm' ? x.c0.reshape([B, H]) : null;
  const outs: JaxArray[] = [];
  for (let t = 0; t < T; t++) {
    const hp = np.matmul(h.ref, whhT.ref).add(x.bias_hh_l0.ref);
    if (cell === 'rnn') h.dispose(), (h = np.tanh(steps[t].add(hp)));
    else if (cell === 'lstm') {
      h.dispose();
      const [i, fg, g, o] = np.split(steps[t].add(hp), 4, 1);
      c = jax.nn.sigmoid(fg).mul(c!).add(jax.nn.sigmoid(i).mul(np.tanh(g)));
      h = jax.nn.sigmoid(o).mul(np.tanh(c.ref));
    } else {
      const [xr, xz, xn] = np.split(steps[t], 3, 1);
      const [hr, hz, hn] = np.split(hp, 3, 1);
      const r = jax.nn.sigmoid(xr.add(hr));
      const z = jax.nn.sigmoid(xz.add(hz));
      const n = np.tanh(xn.add(r.mul(hn)));
      h = n.ref.add(z.mul(h.sub(n)));
    }
    outs.push(h.ref);
  }
  h.dispose();
  c?.dispose();
  whhT.dispose();
  x.bias_hh_l0.dispose();
  return np.stack(outs, 1);
}

/** the whole table, in docs/kernels.md order */
export const CASES: BenchCase[] = [
  ...matmul(256, 256, 256, 'quick', 'full'),
  ...matmul(512, 512, 512, 'full'),
  ...matmul(1024, 1024, 1024, 'full', 'gpu'),
  ...matmul(2048, 128, 384, 'quick'),
  ...matmul(2048, 512, 128, 'full'),
  ...matmul(2048, 2048, 2048, 'gpu'),
  ...matmul(4096, 4096, 4096, 'gpu'),
  ...matmul(8192, 768, 3072, 'gpu'), // GPT-2 small MLP up-projection at B·T = 8192
  softmax(2048, 256, 'quick'),
  softmax(8192, 256, 'full'),
  softmax(16384, 1024, 'gpu'),
  crossEntropy(2048, 96, 'quick'),
  crossEntropy(2048, 8192, 'full'),
  crossEntropy(2048, 50257, 'gpu'),
  layerNorm(2048, 128, 'quick'),
  layerNorm(2048, 768, 'full'),
  layerNorm(8192, 768, 'gpu'),
  gelu(2048, 768, 'quick'),
  gelu(2048, 3072, 'full'),
  gelu(8192, 3072, 'gpu'),
  add(2048, 768, 'quick'),
  add(8192, 768, 'gpu'),
  embedding(8, 256, 96, 128, 'quick'),
  embedding(8, 256, 8192, 768, 'full'),
  embedding(8, 1024, 50257, 768, 'gpu'),
  attention(8, 4, 256, 32, 'quick'),
  attention(8, 12, 1024, 64, 'gpu'),
  recurrent('rnn', 8, 64, 256, 256, 'full'),
  recurrent('lstm', 8, 64, 48, 96, 'quick'),
  recurrent('lstm', 8, 64, 256, 256, 'full'),
  recurrent('lstm', 32, 128, 512, 512, 'gpu'),
  recurrent('gru', 8, 64, 256, 256, 'full'),
  adamw(1 << 20, 'quick'),
  adamw(1 << 22, 'full'),
  adamw(1 << 24, 'gpu'),
];

const TIERS: Record<Tier, Tier[]> = { quick: ['quick'], full: ['quick', 'full'], gpu: ['quick', 'full', 'gpu'] };

/** every row of the table: each case's forward, then its backward */
export const ROWS: BenchRow[] = CASES.flatMap((c) =>
  (c.backward ? (['forward', 'backward'] as const) : (['forward'] as const)).map((pass) => ({
    ...c,
    pass,
    work: pass === 'forward' ? c.forward : c.backward!,
    key: `${c.op} ${pass} ${c.size}${c.note ? ` ${c.note}` : ''}`,
  })),
);

/** rows up to `tier`, for the ops in `only` (all when empty) */
export function selectRows(tier: Tier, only: string[] = []): BenchRow[] {
  const known = new Set(CASES.map((c) => c.op));
  for (const o of only) if (!known.has(o)) throw new Error(`bench: no benchmark rows for op '${o}' (ops: ${[...known].join(', ')})`);
  return ROWS.filter((r) => TIERS[tier].includes(r.tier) && (only.length === 0 || only.includes(r.op)));
}

export function rowByKey(key: string): BenchRow {
  const r = ROWS.find((x) => x.key === key);
  if (!r) throw new Error(`bench: no row '${key}'`);
  return r;
}

/** fresh random inputs for a row (fp32 values; integers in range) from `seed` */
export function hostInputs(row: BenchRow, seed: number): Record<string, HostTensor> {
  const rng = new Rng(seed);
  const out: Record<string, HostTensor> = {};
  for (const [name, d] of Object.entries(row.inputs)) {
    const n = numel(d.shape);
    if (d.int) out[name] = { shape: d.shape, data: rng.ints(n, d.int) };
    else {
      const a = Math.sqrt(3) * (d.scale ?? 1); // uniform(-a, a) has standard deviation a/√3; cheaper than normals
      const data = rng.floats(n, -a, a);
      if (d.nonneg) for (let i = 0; i < n; i++) data[i] = Math.abs(data[i]);
      out[name] = { shape: d.shape, data };
    }
  }
  return out;
}

/** the upstream gradient of a backward row's main output, the same for every library */
export const gradOutput = (shape: number[], seed: number): HostTensor => ({ shape, data: new Rng(seed ^ 0x5bd1e995).floats(numel(shape)) });

/** float inputs a backward row differentiates */
export const diffInputs = (row: BenchRow): string[] => row.diff ?? Object.keys(row.inputs).filter((k) => !row.inputs[k].int);

export const isCompute = (w: Work): w is { flops: number } => 'flops' in w;
