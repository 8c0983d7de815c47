// GPU side of the adamw family (shaders/adamw.wgsl): one AdamW step in place, on a whole flat buffer or a segment.
import source from '../../shaders/adamw.wgsl';
import { adamwHyper, checkHyper, type AdamWHyper } from '../../shared/reference/adamw.ts';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';

const WG = 256;

export interface AdamWOptions extends AdamWHyper {
  /** multiplies grad before the update (clipping, accumulation averaging); 1 by default */
  gradScale?: number;
  /** the segment [offset, offset + count) to update; the whole buffer by default */
  offset?: number;
  count?: number;
}

/**
 * One torch.optim.AdamW step, in place: param, m (exp_avg) and v (exp_avg_sq) are updated on
 * [offset, offset + count) only. Records one dispatch; nothing is allocated.
 */
export function adamw(g: Gpu, param: GpuTensor, grad: GpuTensor, m: GpuTensor, v: GpuTensor, o: AdamWOptions): void {
  checkHyper(o);
  const n = numel(param.shape);
  for (const [name, t] of [['grad', grad], ['exp_avg', m], ['exp_avg_sq', v]] as const) {
    if (numel(t.shape) !== n) throw new Error(`adamw: ${name} has shape ${shapeStr(t.shape)} but param has shape ${shapeStr(param.shape)}`);
  }
  const offset = o.offset ?? 0;
  const count = o.count ?? n - offset;
  if (!(Number.isInteger(offset) && Number.isInteger(count) && offset >= 0 && count >= 0 && offset + count <= n)) {
    throw new Error(`adamw: segment offset ${offset}, count ${count} does not lie within the ${n} elements of param`);
  }
  const gradScale = o.gradScale ?? 1;
  if (!Number.isFinite(gradScale)) throw new Error(`adamw: gradScale ${gradScale} is not finite`);
  const f32 = [
    1 - o.lr * o.weightDecay,
    o.beta1,
    o.beta2,
    1 - o.beta1,
    1 - o.beta2,
    o.eps,
    o.lr / (1 - o.beta1 ** o.step),
    Math.sqrt(1 - o.beta2 ** o.step),
    gradScale,
  ];
  g.run({ kernel: 'adamw_step', u32: [offset, count], f32, buffers: [param, grad, m, v], workgroups: g.grid(Math.ceil(count / WG)) });
}

const ops: GpuOp[] = [
  {
    name: 'adamw',
    // in place: the outputs are the input buffers themselves
    forward: (g, i, o) => {
      adamw(g, i.param, i.grad, i.exp_avg, i.exp_avg_sq, adamwHyper(o));
      return { param: i.param, exp_avg: i.exp_avg, exp_avg_sq: i.exp_avg_sq };
    },
  },
];

export const adamwFamily: OpFamily = {
  kernels: kernels('adamw.wgsl', source, { adamw_step: ['rw', 'read', 'rw', 'rw'] }),
  ops,
};
