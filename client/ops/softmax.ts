// GPU side of the softmax family (shaders/softmax.wgsl): softmax over the last dim, forward and backward.
// Also home of `rowLaunch`, the row-per-segment layout shared with cross_entropy and layer_norm.
import source from '../../shaders/softmax.wgsl';
import { softmaxRows } from '../../shared/reference/softmax.ts';
import { numel, shapeStr } from '../../shared/tensor.ts';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';

/** threads per workgroup of every row kernel (the shaders' `override WG`) */
export const ROW_WG = 256;

/** elements per thread on a GPU: best or within 10% of best for every row kernel on an H200 (Dawn/Vulkan),
 * of 2..64 tried: softmax 16384x1024 at 1.8 TB/s forward, 3.0 TB/s backward; layer_norm 16384x1024 1.5 TB/s */
export const GPU_PER_THREAD = 16;
/** elements per thread on a software adapter (SwiftShader): see rowLaunch */
export const FALLBACK_PER_THREAD = 256;
/** set `perThread` to force one layout on any adapter (tests run the GPU layout on SwiftShader; benchmarks) */
export const rowTuning: { perThread: number | null } = { perThread: null };

/**
 * Launch shape of a row kernel over N rows of C: TPR threads per row, the smallest power of two (≤ ROW_WG)
 * giving each thread at most `perThread` elements, and ROW_WG / TPR rows per workgroup, so a row of 3 gets
 * one thread while a row of 50257 gets the whole workgroup. A software adapter (SwiftShader) runs a workgroup
 * that uses barriers as one fiber per few threads, so there the cost follows the thread count more than the
 * work: few, busy threads win (256 elements each: 2-8x less CPU than 8 at 4096x1024). The kernels are the
 * same on both; only TPR differs.
 */
export function rowLaunch(g: Gpu, N: number, C: number, perThread = rowTuning.perThread ?? (g.isFallback ? FALLBACK_PER_THREAD : GPU_PER_THREAD)) {
  let tpr = 1;
  while (tpr < ROW_WG && tpr * perThread < C) tpr *= 2;
  return { constants: { WG: ROW_WG, TPR: tpr }, workgroups: g.grid(Math.ceil(N / (ROW_WG / tpr))) };
}

/** (N, C) of a (..., C) tensor */
export function rowsOf(t: GpuTensor, op: string): { N: number; C: number } {
  if (t.shape.length < 1) throw new Error(`${op}: expected a tensor of shape (..., C), got a 0-dim tensor`);
  const C = t.shape[t.shape.length - 1];
  return { N: C === 0 ? 0 : numel(t.shape) / C, C };
}

/** y (..., C) = softmax(x) over the last dim */
export function softmax(g: Gpu, x: GpuTensor): GpuTensor {
  const { N, C } = rowsOf(x, 'softmax');
  const out = g.tensor(x.shape);
  g.run({ kernel: 'softmax_fwd', ...rowLaunch(g, N, C), u32: [N, C], buffers: [x, x, out] });
  return out;
}

/** dx (..., C) = y ⊙ (dy − Σ dy⊙y) from softmax's output y and the upstream grad dy */
export function softmaxBackward(g: Gpu, y: GpuTensor, dy: GpuTensor): GpuTensor {
  if (shapeStr(y.shape) !== shapeStr(dy.shape)) throw new Error(`softmax backward: y is ${shapeStr(y.shape)} but dy is ${shapeStr(dy.shape)}`);
  const { N, C } = rowsOf(y, 'softmax backward');
  const dx = g.tensor(y.shape);
  g.run({ kernel: 'softmax_bwd', ...rowLaunch(g, N, C), u32: [N, C], buffers: [y, dy, dx] });
  return dx;
}

const ops: GpuOp[] = [
  {
    name: 'softmax',
    forward: (g, i, o) => {
      softmaxRows(i.x, o.dim);
      return { out: softmax(g, i.x) };
    },
    backward: (g, _i, _o, out, d) => ({ x: softmaxBackward(g, out.out, d.out) }),
  },
];

export const softmaxFamily: OpFamily = {
  kernels: kernels('softmax.wgsl', source, {
    softmax_fwd: ['read', 'read', 'rw'],
    softmax_bwd: ['read', 'read', 'rw'],
  }),
  ops,
};
