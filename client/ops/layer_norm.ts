// GPU side of the layer_norm family (shaders/layer_norm.wgsl): F.layer_norm over the last dim, forward
// keeping mean and rstd, backward giving dx and (deterministically, without atomics) dw, db.
import source from '../../shaders/layer_norm.wgsl';
import { layerNormRows } from '../../shared/reference/layer_norm.ts';
import { shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';
import { ROW_WG, rowLaunch, rowsOf } from './softmax.ts';

function check(x: GpuTensor, w: GpuTensor | null, b: GpuTensor | null) {
  const { N, C } = rowsOf(x, 'layer_norm');
  for (const [name, t] of [['weight', w], ['bias', b]] as const) {
    if (t && shapeStr(t.shape) !== shapeStr([C])) throw new Error(`layer_norm: ${name} must be (${C}) for x of shape ${shapeStr(x.shape)}, got ${shapeStr(t.shape)}`);
  }
  return { N, C };
}

/** out (..., C) = (x − mean) · rstd · w + b over the last dim; mean, rstd (...) are kept for backward */
export function layerNorm(g: Gpu, x: GpuTensor, w: GpuTensor | null, b: GpuTensor | null, eps = 1e-5): { out: GpuTensor; mean: GpuTensor; rstd: GpuTensor } {
  const { N, C } = check(x, w, b);
  const lead = x.shape.slice(0, -1);
  const out = g.tensor(x.shape);
  const mean = g.tensor(lead);
  const rstd = g.tensor(lead);
  g.run({
    kernel: 'ln_fwd',
    ...rowLaunch(g, N, C),
    u32: [N, C, w ? 1 : 0, b ? 1 : 0, 0, 0, 0],
    f32: [eps],
    buffers: [x, w ?? x, b ?? x, out, mean, rstd],
  });
  return { out, mean, rstd };
}

export interface LayerNormGradTargets {
  /** write dw / db into these (C) tensors instead of new ones */
  dw?: GpuTensor;
  db?: GpuTensor;
  /** add into dw / db (+=) rather than overwrite them: sums over layers or steps without extra adds */
  accumulate?: boolean;
}

/**
 * dx (..., C), and dw, db (C) for the weight and bias that are present, from dout and the forward's mean and
 * rstd. dw, db: per-block partial sums over rows into a scratch buffer, then an in-order sum per column.
 */
export function layerNormBackward(
  g: Gpu,
  x: GpuTensor,
  w: GpuTensor | null,
  hasBias: boolean,
  mean: GpuTensor,
  rstd: GpuTensor,
  dout: GpuTensor,
  into: LayerNormGradTargets = {},
): { dx: GpuTensor; dw: GpuTensor | null; db: GpuTensor | null } {
  const { N, C } = check(x, w, null);
  const lead = x.shape.slice(0, -1);
  if (shapeStr(dout.shape) !== shapeStr(x.shape)) throw new Error(`layer_norm backward: dout is ${shapeStr(dout.shape)} but x is ${shapeStr(x.shape)}`);
  for (const [name, t] of [['mean', mean], ['rstd', rstd]] as const) {
    if (shapeStr(t.shape) !== shapeStr(lead)) throw new Error(`layer_norm backward: ${name} is ${shapeStr(t.shape)} but x is ${shapeStr(x.shape)}: it must be ${shapeStr(lead)}`);
  }
  for (const [name, t] of [['dw', into.dw], ['db', into.db]] as const) {
    if (t && shapeStr(t.shape) !== shapeStr([C])) throw new Error(`layer_norm backward: ${name} must be (${C}), got ${shapeStr(t.shape)}`);
  }
  if (into.accumulate && ((w && !into.dw) || (hasBias && !into.db))) {
    throw new Error('layer_norm backward: accumulate needs the dw (and db, with a bias) tensors to add into');
  }
  const dx = g.tensor(x.shape);
  const u = [N, C, w ? 1 : 0, hasBias ? 1 : 0];
  g.run({ kernel: 'ln_bwd_dx', ...rowLaunch(g, N, C), u32: [...u, 0, 0, 0], f32: [0], buffers: [x, w ?? x, mean, rstd, dout, dx] });
  if (!w && !hasBias) return { dx, dw: null, db: null };

  // ≤ 256 row blocks of ≥ 32 rows: enough workgroups to fill a GPU, a small scratch, short in-order sums
  const rowsPerBlock = Math.max(32, Math.ceil(N / 256));
  const blocks = Math.max(1, Math.ceil(N / rowsPerBlock));
  const partial = g.tensor([2, blocks, C]);
  const dw = w ? (into.dw ?? g.tensor([C])) : null;
  const db = hasBias ? (into.db ?? g.tensor([C])) : null;
  const unused = !dw || !db ? g.tensor([1]) : null;
  const params = { u32: [...u, rowsPerBlock, blocks, into.accumulate ? 1 : 0], f32: [0] };
  const colGroups = Math.ceil(C / ROW_WG);
  g.run({ kernel: 'ln_bwd_partial', ...params, buffers: [x, x, mean, rstd, dout, partial], workgroups: [colGroups, blocks] });
  g.run({ kernel: 'ln_bwd_reduce', ...params, buffers: [partial, (dw ?? unused)!, (db ?? unused)!], workgroups: [colGroups] });
  g.release(partial, unused ?? undefined);
  return { dx, dw, db };
}

const ops: GpuOp[] = [
  {
    name: 'layer_norm',
    forward: (g, i, o) => {
      const { eps } = layerNormRows(i.x, o, i.weight, i.bias);
      return layerNorm(g, i.x, i.weight ?? null, i.bias ?? null, eps);
    },
    backward: (g, i, o, outs, d) => {
      layerNormRows(i.x, o, i.weight, i.bias);
      const r = layerNormBackward(g, i.x, i.weight ?? null, !!i.bias, outs.mean, outs.rstd, d.out);
      const grads: Record<string, GpuTensor> = { x: r.dx };
      if (r.dw) grads.weight = r.dw;
      if (r.db) grads.bias = r.db;
      return grads;
    },
  },
];

export const layerNormFamily: OpFamily = {
  kernels: kernels('layer_norm.wgsl', source, {
    ln_fwd: ['read', 'read', 'read', 'rw', 'rw', 'rw'],
    ln_bwd_dx: ['read', 'read', 'read', 'read', 'read', 'rw'],
    ln_bwd_partial: ['read', 'read', 'read', 'read', 'read', 'rw'],
    ln_bwd_reduce: ['read', 'rw', 'rw'],
  }),
  ops,
};
