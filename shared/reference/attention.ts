// CPU reference (float64) for the attention family: F.scaled_dot_product_attention(q, k, v, is_causal, scale),
// written as the plain math (scores, mask, softmax, weighted sum) and its backward. Mirrors shaders/attention.wgsl.
// Shapes: q (B, H, T, D); k, v (B, H, S, D); out (B, H, T, D); lse (B, H, T). S may differ from T (cross-attention).
// Causal mask as PyTorch's torch.ones(T, S).tril(0): query i sees keys j <= i (top-left aligned), so row i
// always sees key 0 and no row is empty.
import type { OpCase, OpOptions, OpSpec, Tensors } from '../ops.ts';
import type { Rng } from '../rng.ts';
import { shapeStr, toF64, type HostTensor } from '../tensor.ts';

/** the largest head size the GPU kernels hold in registers (shaders/attention.wgsl: DMAX4 = 32 vec4) */
export const ATTENTION_MAX_D = 128;

export interface AttentionDims {
  B: number;
  H: number;
  T: number;
  S: number;
  D: number;
}

/** PyTorch's default: scale = None means 1 / sqrt(D) */
export const attentionScale = (scale: unknown, D: number): number => (scale === null || scale === undefined ? 1 / Math.sqrt(D) : Number(scale));

/** softmax weights of one query row over its visible keys: p (S), and the row's logsumexp */
function rowProbs(q: Float64Array, k: Float64Array, qOff: number, kOff: number, i: number, d: AttentionDims, causal: boolean, scale: number) {
  const { S, D } = d;
  const n = causal ? Math.min(S, i + 1) : S; // keys 0..n-1 are visible
  const p = new Float64Array(S);
  let m = -Infinity;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let c = 0; c < D; c++) s += q[qOff + i * D + c] * k[kOff + j * D + c];
    p[j] = s * scale;
    m = Math.max(m, p[j]);
  }
  let sum = 0;
  for (let j = 0; j < n; j++) {
    p[j] = Math.exp(p[j] - m);
    sum += p[j];
  }
  for (let j = 0; j < n; j++) p[j] /= sum;
  return { p, n, lse: m + Math.log(sum) };
}

// out = softmax(scale q kᵀ + mask) v ; lse = logsumexp of each row of scale q kᵀ + mask
export function attentionForward(out: Float64Array, lse: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, d: AttentionDims, causal: boolean, scale: number) {
  const { B, H, T, S, D } = d;
  for (let bh = 0; bh < B * H; bh++) {
    const qOff = bh * T * D;
    const kOff = bh * S * D;
    for (let i = 0; i < T; i++) {
      const r = rowProbs(q, k, qOff, kOff, i, d, causal, scale);
      lse[bh * T + i] = r.lse;
      for (let c = 0; c < D; c++) {
        let acc = 0;
        for (let j = 0; j < r.n; j++) acc += r.p[j] * v[kOff + j * D + c];
        out[qOff + i * D + c] = acc;
      }
    }
  }
}

// With P the softmax weights: dV = Pᵀ dO ; dP = dO Vᵀ ; dS = P ∘ (dP − rowsum(P ∘ dP)) ; dQ = scale dS K ; dK = scale dSᵀ Q.
// Grads are written (=), every element.
export function attentionBackward(dq: Float64Array, dk: Float64Array, dv: Float64Array, dout: Float64Array, q: Float64Array, k: Float64Array, v: Float64Array, d: AttentionDims, causal: boolean, scale: number) {
  const { B, H, T, S, D } = d;
  dq.fill(0);
  dk.fill(0);
  dv.fill(0);
  const dp = new Float64Array(S);
  for (let bh = 0; bh < B * H; bh++) {
    const qOff = bh * T * D;
    const kOff = bh * S * D;
    for (let i = 0; i < T; i++) {
      const { p, n } = rowProbs(q, k, qOff, kOff, i, d, causal, scale);
      let rowDot = 0; // Σ_j P_ij dP_ij (= dO_i · O_i)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let c = 0; c < D; c++) s += dout[qOff + i * D + c] * v[kOff + j * D + c];
        dp[j] = s;
        rowDot += p[j] * s;
      }
      for (let j = 0; j < n; j++) {
        const ds = p[j] * (dp[j] - rowDot) * scale;
        for (let c = 0; c < D; c++) {
          dv[kOff + j * D + c] += p[j] * dout[qOff + i * D + c];
          dq[qOff + i * D + c] += ds * k[kOff + j * D + c];
          dk[kOff + j * D + c] += ds * q[qOff + i * D + c];
        }
      }
    }
  }
}

/** q (B, H, T, D), k and v (B, H, S, D): the sizes, or an error that names the offending shapes */
export function attentionShapes(q: readonly number[], k: readonly number[], v: readonly number[]): AttentionDims {
  for (const [name, s] of [['q', q], ['k', k], ['v', v]] as const) {
    if (s.length !== 4) throw new Error(`attention: ${name} must be 4-D (B, H, ${name === 'q' ? 'T' : 'S'}, D), got shape ${shapeStr(s)}`);
  }
  const [B, H, T, D] = q;
  const [Bk, Hk, S, Dk] = k;
  if (shapeStr(k) !== shapeStr(v)) throw new Error(`attention: k is ${shapeStr(k)} but v is ${shapeStr(v)}: k and v must have the same shape (B, H, S, D)`);
  if (Bk !== B || Hk !== H) throw new Error(`attention: q is ${shapeStr(q)} but k is ${shapeStr(k)}: batch and head sizes (B, H) must match`);
  if (Dk !== D) throw new Error(`attention: q is ${shapeStr(q)} but k is ${shapeStr(k)}: head sizes D ${D} and ${Dk} differ`);
  if (D < 1 || D > ATTENTION_MAX_D) throw new Error(`attention: head size D = ${D} is outside 1..${ATTENTION_MAX_D} (the kernels keep a head row in registers)`);
  if (S < 1) throw new Error(`attention: k and v have S = 0 keys: every query row needs at least one key`);
  return { B, H, T, S, D };
}

/** shapes and options checked on the host, with messages that name the offending sizes and values */
export function attentionDims(i: Tensors, o: OpOptions): AttentionDims {
  const d = attentionShapes(i.q.shape, i.k.shape, i.v.shape);
  if (typeof o.is_causal !== 'boolean') throw new Error(`attention: is_causal must be true or false, got ${JSON.stringify(o.is_causal)}`);
  if (o.scale !== null && o.scale !== undefined && !(typeof o.scale === 'number' && Number.isFinite(o.scale))) {
    throw new Error(`attention: scale must be a finite number or null (null: 1/sqrt(D)), got ${JSON.stringify(o.scale)}`);
  }
  return d;
}

const f64 = (shape: number[], data: Float64Array): HostTensor => ({ shape: [...shape], data });

function forward(i: Tensors, o: OpOptions): Tensors {
  const d = attentionDims(i, o);
  const out = new Float64Array(d.B * d.H * d.T * d.D);
  const lse = new Float64Array(d.B * d.H * d.T);
  attentionForward(out, lse, toF64(i.q), toF64(i.k), toF64(i.v), d, o.is_causal as boolean, attentionScale(o.scale, d.D));
  return { out: f64(i.q.shape, out), lse: f64([d.B, d.H, d.T], lse) };
}

function backward(i: Tensors, o: OpOptions, g: Tensors): Tensors {
  const d = attentionDims(i, o);
  const dq = new Float64Array(i.q.data.length);
  const dk = new Float64Array(i.k.data.length);
  const dv = new Float64Array(i.v.data.length);
  attentionBackward(dq, dk, dv, toF64(g.out), toF64(i.q), toF64(i.k), toF64(i.v), d, o.is_causal as boolean, attentionScale(o.scale, d.D));
  return { q: f64(i.q.shape, dq), k: f64(i.k.shape, dk), v: f64(i.v.shape, dv) };
}

const cases: OpCase[] = [
  { name: 'tiny causal 1x2x3x3x4', dims: { B: 1, H: 2, T: 3, S: 3, D: 4 }, options: { is_causal: true } },
  { name: 'small cross 5x7 D=3', dims: { B: 1, H: 2, T: 5, S: 7, D: 3 } },
  { name: 'odd causal 37 D=29', dims: { B: 2, H: 3, T: 37, S: 37, D: 29 }, options: { is_causal: true } },
  { name: 'odd cross 37x53 D=29', dims: { B: 2, H: 3, T: 37, S: 53, D: 29 } },
  { name: 'odd causal 37x133 D=29', dims: { B: 2, H: 3, T: 37, S: 133, D: 29 }, options: { is_causal: true } },
  { name: 'odd causal 101x37 s=0.3', dims: { B: 1, H: 3, T: 101, S: 37, D: 29 }, options: { is_causal: true, scale: 0.3 } },
  { name: 'odd causal 45 D=128', dims: { B: 1, H: 2, T: 45, S: 45, D: 128 }, options: { is_causal: true } },
  { name: 'odd D=1 70x3', dims: { B: 1, H: 1, T: 70, S: 3, D: 1 } },
  { name: 'large causal 256 D=64', dims: { B: 2, H: 4, T: 256, S: 256, D: 64 }, options: { is_causal: true }, large: true },
];

function makeInputs(rng: Rng, c: OpCase): Tensors {
  const { B, H, T, S, D } = c.dims;
  return {
    q: { shape: [B, H, T, D], data: rng.normals(B * H * T * D) },
    k: { shape: [B, H, S, D], data: rng.normals(B * H * S * D) },
    v: { shape: [B, H, S, D], data: rng.normals(B * H * S * D) },
  };
}

export const attentionOps: OpSpec[] = [
  {
    name: 'attention',
    family: 'attention',
    torch: 'F.scaled_dot_product_attention(query, key, value, is_causal=is_causal, scale=scale)',
    inputs: [
      { name: 'q', aliases: ['query'], differentiable: true },
      { name: 'k', aliases: ['key'], differentiable: true },
      { name: 'v', aliases: ['value'], differentiable: true },
    ],
    outputs: ['out'],
    saved: ['lse'],
    defaults: { is_causal: false, scale: null },
    hasBackward: true,
    validate: (i, o) => void attentionDims(i, o),
    cases,
    makeInputs,
    reference: { forward, backward },
    // Scores are fp32 dot products of length D (≤ 128), softmax is computed online in fp32 with exact exp
    // rescaling, and every output is a convex combination (forward) or a sum over ≤ max(T, S) rows of
    // products of O(1) terms (backward), accumulated in fp32: the errors measured are ≲ 1e-6 forward and
    // ≲ 1e-5 backward, well inside the bounds.
    tolerance: {
      forward: 1e-4,
      backward: 1e-3,
      why: 'fp32 dot products of length D ≤ 128 and fp32 online-softmax accumulation over ≤ max(T, S) keys (normwise)',
    },
  },
];
