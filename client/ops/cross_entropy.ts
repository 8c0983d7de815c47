// GPU side of the cross_entropy family (shaders/cross_entropy.wgsl): softmax + negative log likelihood,
// fused, over logits (..., C) with integer targets (...).
import source from '../../shaders/cross_entropy.wgsl';
import { crossEntropyOptions, crossEntropyRows, type Reduction } from '../../shared/reference/cross_entropy.ts';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';
import { ROW_WG, rowLaunch } from './softmax.ts';

export interface CrossEntropyOptions {
  /** rows whose target equals this are left out of the loss and get zero grad (default -1) */
  ignoreIndex?: number;
  /** 'mean' over non-ignored rows (default), 'sum', or 'none' (one loss per row, 0 where ignored) */
  reduction?: Reduction;
}

const MODE: Record<Reduction, number> = { mean: 0, sum: 1, none: 2 };

function params(logits: GpuTensor, targets: GpuTensor, o: CrossEntropyOptions) {
  if (targets.dtype !== 'i32') throw new Error('cross_entropy: targets must be an i32 tensor of class indices');
  if (logits.dtype !== 'f32') throw new Error('cross_entropy: logits must be an f32 tensor');
  const { N, C } = crossEntropyRows(logits.shape, targets.shape);
  const reduction = o.reduction ?? 'mean';
  if (!(reduction in MODE)) throw new Error(`cross_entropy: reduction must be 'mean', 'sum' or 'none', got ${JSON.stringify(reduction)}`);
  const u32 = [N, C, (o.ignoreIndex ?? -1) >>> 0, MODE[reduction]];
  return { N, C, reduction, u32 };
}

/**
 * loss = F.cross_entropy(logits.view(-1, C), targets.view(-1)): a 0-dim tensor for 'mean' / 'sum' (NaN for a
 * mean with every row ignored), targets' shape for 'none'; lse (targets' shape) is what backward needs.
 * Targets are not range-checked on the GPU: an out-of-range, non-ignored target gives a NaN loss.
 */
export function crossEntropy(g: Gpu, logits: GpuTensor, targets: GpuTensor, o: CrossEntropyOptions = {}): { loss: GpuTensor; lse: GpuTensor } {
  const { N, C, reduction, u32 } = params(logits, targets, o);
  const lse = g.tensor(targets.shape);
  const rows = g.tensor(targets.shape);
  g.run({ kernel: 'ce_fwd', ...rowLaunch(g, N, C), u32, buffers: [logits, targets, lse, rows] });
  if (reduction === 'none') return { loss: rows, lse };
  const loss = g.tensor([]);
  g.run({ kernel: 'ce_reduce', u32, buffers: [rows, targets, loss], workgroups: [1] });
  g.release(rows);
  return { loss, lse };
}

/**
 * dlogits (..., C) = (softmax(logits) − onehot(targets)) · dloss / count ('mean'), · dloss ('sum'), or
 * · dloss[row] ('none'); zero on ignored rows. dloss stays on the GPU: 0-dim (or (1)) unless 'none'.
 */
export function crossEntropyBackward(
  g: Gpu,
  logits: GpuTensor,
  targets: GpuTensor,
  lse: GpuTensor,
  dloss: GpuTensor,
  o: CrossEntropyOptions = {},
): GpuTensor {
  const { N, C, reduction, u32 } = params(logits, targets, o);
  if (shapeStr(lse.shape) !== shapeStr(targets.shape)) throw new Error(`cross_entropy backward: lse is ${shapeStr(lse.shape)} but targets are ${shapeStr(targets.shape)}`);
  const want = reduction === 'none' ? targets.shape : [];
  if (reduction === 'none' ? shapeStr(dloss.shape) !== shapeStr(want) : numel(dloss.shape) !== 1) {
    throw new Error(`cross_entropy backward: dloss is ${shapeStr(dloss.shape)} but the '${reduction}' loss is ${shapeStr(want)}`);
  }
  let scale = dloss;
  if (reduction !== 'none') {
    scale = g.tensor([1]);
    g.run({ kernel: 'ce_bwd_scale', u32, buffers: [dloss, targets, scale], workgroups: [1] });
  }
  const dlogits = g.tensor(logits.shape);
  g.run({ kernel: 'ce_bwd', u32, buffers: [logits, targets, lse, scale, dlogits], workgroups: g.grid(Math.ceil((N * C) / ROW_WG)) });
  if (scale !== dloss) g.release(scale);
  return dlogits;
}

const ops: GpuOp[] = [
  {
    name: 'cross_entropy',
    forward: (g, i, opts) => {
      const { ignoreIndex, reduction } = crossEntropyOptions(opts);
      const { loss, lse } = crossEntropy(g, i.logits, i.target, { ignoreIndex, reduction });
      return { out: loss, lse };
    },
    backward: (g, i, opts, outs, d) => {
      const { ignoreIndex, reduction } = crossEntropyOptions(opts);
      return { logits: crossEntropyBackward(g, i.logits, i.target, outs.lse, d.out, { ignoreIndex, reduction }) };
    },
  },
];

export const crossEntropyFamily: OpFamily = {
  kernels: kernels('cross_entropy.wgsl', source, {
    ce_fwd: ['read', 'read', 'rw', 'rw'],
    ce_reduce: ['read', 'read', 'rw'],
    ce_bwd_scale: ['read', 'read', 'rw'],
    ce_bwd: ['read', 'read', 'read', 'read', 'rw'],
  }),
  ops,
};
