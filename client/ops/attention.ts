// GPU side of the attention family (shaders/attention.wgsl): fused scaled dot-product attention,
// F.scaled_dot_product_attention(q, k, v, is_causal, scale). Forward is one dispatch, backward two
// (dQ with delta, then dK and dV), whatever B, H, T, S. `selectVariant` is the one place the backward's kernels
// are chosen.
import source from '../../shaders/attention.wgsl';
import { attentionScale, attentionShapes } from '../../shared/reference/attention.ts';
import { shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';

const WG = 64; // rows (threads) per workgroup
const MAX_TILE = 32; // TMAX in the shader
// Workgroup memory for the streamed tiles: 4 KiB (e.g. 8 rows of k and v at D = 64), for every adapter, so the
// pipelines the tests run on SwiftShader are the ones a GPU runs. Wider tiles bought nothing on an H200 (16 KiB
// and 4 KiB within 5% at GPT shapes), while SwiftShader's compile time grows with workgroup memory (it
// zero-initialises it element by element: ~1.5 s of CPU per kernel at 16 KiB, ~0.5 s at 4 KiB).
const WG_MEMORY = 4096;

/**
 * Backward kernels: 'array' keeps a thread's rows in private arrays (any D ≤ 128); 'reg' keeps them in named
 * mat4x4f chunks of 16 columns (D ≤ 64), for SwiftShader, where an array indexed in a loop is gathered from
 * memory lane by lane: on B8 H4 T256 D32 causal (2 shared cores) dQ went from 250 to 140 ms and dK/dV from
 * 390 to 190. Real GPUs keep 'array', the design measured on the H200.
 */
export type AttentionVariant = 'array' | 'reg';
const REG_MAX_D = 64;

const isSwiftShader = (g: Gpu) => g.isFallback || /swiftshader/i.test(g.adapterName);

/** variant override for tests: every variant must be correct on every adapter ('reg' only where D ≤ 64) */
let forced: AttentionVariant | null = null;
export function forceAttentionVariant(v: AttentionVariant | null): void {
  forced = v;
}

/** the backward's variant for head size D on this adapter */
export function selectVariant(g: Gpu, D: number): AttentionVariant {
  const v = forced ?? (isSwiftShader(g) ? 'reg' : 'array');
  return v === 'reg' && D <= REG_MAX_D ? 'reg' : 'array';
}

export interface AttentionOptions {
  isCausal?: boolean;
  /** null or undefined: 1 / sqrt(D), as PyTorch */
  scale?: number | null;
}

/** streamed rows per tile: two tiles of D4 vec4s per row, plus `extra` f32 arrays of MAX_TILE (dK/dV: lse, delta) */
function tileRows(d4: number, extra: number): number {
  return Math.max(1, Math.min(MAX_TILE, Math.floor((WG_MEMORY - 4 * MAX_TILE * extra) / (2 * 16 * d4))));
}

function plan(g: Gpu, q: GpuTensor, k: GpuTensor, v: GpuTensor, o: AttentionOptions) {
  const { B, H, T, S, D } = attentionShapes(q.shape, k.shape, v.shape);
  const BH = B * H;
  const max = g.limits.maxComputeWorkgroupsPerDimension;
  const y = Math.max(1, Math.min(BH, max));
  const heads: [number, number] = [y, Math.ceil(BH / y)]; // the shader wraps heads past 65535 into z
  const D4 = Math.ceil(D / 4);
  const scale = attentionScale(o.scale, D);
  return { B, H, T, S, D, BH, D4, heads, params: { u32: [BH, T, S, D, o.isCausal ? 1 : 0], f32: [scale] } };
}

function expectShape(what: string, t: GpuTensor, shape: number[]) {
  if (shapeStr(t.shape) !== shapeStr(shape)) throw new Error(`attentionBackward: ${what} is ${shapeStr(t.shape)}, expected ${shapeStr(shape)}`);
}

// out (B, H, T, D) = softmax(scale q kᵀ + mask) v ; lse (B, H, T) kept for the backward. One dispatch.
export function attention(g: Gpu, q: GpuTensor, k: GpuTensor, v: GpuTensor, o: AttentionOptions = {}): { out: GpuTensor; lse: GpuTensor } {
  const s = plan(g, q, k, v, o);
  const out = g.tensor([s.B, s.H, s.T, s.D]);
  const lse = g.tensor([s.B, s.H, s.T]);
  g.run({
    kernel: 'attention_fwd',
    constants: { WG, D4: s.D4, TILE: tileRows(s.D4, 0) },
    ...s.params,
    buffers: [q, k, v, out, lse],
    workgroups: [Math.ceil(s.T / WG), ...s.heads],
  });
  return { out, lse };
}

// grads of q, k, v given the forward's out and lse and the upstream grad dout. Two dispatches: dQ (which also
// writes delta_i = dout_i · out_i) and dK/dV (which reads it), of the variant selectVariant picks.
export function attentionBackward(
  g: Gpu,
  q: GpuTensor,
  k: GpuTensor,
  v: GpuTensor,
  out: GpuTensor,
  lse: GpuTensor,
  dout: GpuTensor,
  o: AttentionOptions = {},
): { dq: GpuTensor; dk: GpuTensor; dv: GpuTensor } {
  const s = plan(g, q, k, v, o);
  expectShape('out', out, q.shape);
  expectShape('dout', dout, q.shape);
  expectShape('lse', lse, [s.B, s.H, s.T]);
  const dq = g.tensor(q.shape);
  const dk = g.tensor(k.shape);
  const dv = g.tensor(v.shape);
  const delta = g.tensor([s.B, s.H, s.T]);
  const reg = selectVariant(g, s.D) === 'reg';
  const suffix = reg ? '_reg' : '';
  const D4 = reg ? 4 * Math.ceil(s.D4 / 4) : s.D4; // 'reg': whole chunks of 4 vec4s, the padding zeroed
  g.run({
    kernel: `attention_bwd_dq${suffix}`,
    constants: { WG, D4, TILE: tileRows(D4, 0) },
    ...s.params,
    buffers: [q, k, v, lse, dout, out, dq, delta],
    workgroups: [Math.ceil(s.T / WG), ...s.heads],
  });
  g.run({
    kernel: `attention_bwd_dkdv${suffix}`,
    constants: { WG, D4, TILE: tileRows(D4, 2) },
    ...s.params,
    buffers: [q, k, v, lse, dout, delta, dk, dv],
    workgroups: [Math.ceil(s.S / WG), ...s.heads],
  });
  g.release(delta);
  return { dq, dk, dv };
}

const opts = (o: Record<string, unknown>): AttentionOptions => ({ isCausal: o.is_causal as boolean, scale: o.scale as number | null });

const ops: GpuOp[] = [
  {
    name: 'attention',
    forward: (g, i, o) => attention(g, i.q, i.k, i.v, opts(o)),
    backward: (g, i, o, out, d) => {
      const r = attentionBackward(g, i.q, i.k, i.v, out.out, out.lse, d.out, opts(o));
      return { q: r.dq, k: r.dk, v: r.dv };
    },
  },
];

export const attentionFamily: OpFamily = {
  kernels: kernels('attention.wgsl', source, {
    attention_fwd: ['read', 'read', 'read', 'rw', 'rw'],
    attention_bwd_dq: ['read', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'],
    attention_bwd_dkdv: ['read', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'],
    attention_bwd_dq_reg: ['read', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'],
    attention_bwd_dkdv_reg: ['read', 'read', 'read', 'read', 'read', 'read', 'rw', 'rw'],
  }),
  ops,
};
