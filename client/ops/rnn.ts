// GPU side of the rnn family (shaders/rnn.wgsl): torch.nn.RNN (tanh), one layer, batch_first.
// Forward: 1 matmul (input projection for all timesteps) + transpose of W_hh + start + T steps + finish.
// Backward: T steps + dh0, then 3 matmuls and 2 row sums for dx and the weight grads (recurrent.ts).
import source from '../../shaders/rnn.wgsl';
import type { Gpu, GpuTensor } from '../runtime/gpu.ts';
import { kernels } from '../runtime/kernel.ts';
import type { GpuOp, OpFamily } from './op.ts';
import {
  elementGrid,
  gpuDims,
  inputProjection,
  SAVED,
  stepGrid,
  STEP_WG,
  stepVariant,
  variantGrid,
  weightGrads,
  weightsOf,
  type RecurrentBackwardOptions,
  type RecurrentDims,
  type RecurrentWeightGrads,
  type RecurrentWeights,
} from './recurrent.ts';

/** what rnnForward keeps for rnnBackward besides `out`; release with releaseRnnSaved once backward is recorded */
export interface RnnSaved {
  d: RecurrentDims;
  x: GpuTensor; // (B, T, I), the caller's: not released here
  hprev: GpuTensor; // (B, T, H) h_{t-1}
  out: GpuTensor; // (B, T, H) h_t: forward's output, owned by the caller (not released here)
}

const constants = { WG: STEP_WG };

/** out (B, T, H) and h_n (1, B, H); h0 ((1, B, H) or (B, H)) defaults to zeros */
export function rnnForward(g: Gpu, x: GpuTensor, h0: GpuTensor | undefined, w: RecurrentWeights) {
  const d = gpuDims('rnn', 1, x, w, h0);
  const { B, T, H } = d;
  const u = [B, T, H];
  const xp = inputProjection(g, x, w, d);
  const wt = g.tensor([H, H]);
  g.run({ kernel: 'rnn_transpose', u32: [...u, 0, 0], buffers: [w.whh, wt], workgroups: elementGrid(g, H * H) });
  const hprev = g.tensor([B, T, H]);
  const out = g.tensor([B, T, H]);
  g.run({ kernel: 'rnn_start', u32: [...u, 0, h0 ? 1 : 0], buffers: [h0 ?? x, hprev], workgroups: elementGrid(g, B * H) });
  const v = stepVariant(g);
  for (let t = 0; t < T; t++) {
    g.run({ kernel: 'rnn_step', constants: { ...v }, u32: [...u, t, 0], buffers: [xp, wt, w.bhh, hprev, out], workgroups: variantGrid(v, d) });
  }
  const hN = g.tensor([1, B, H]);
  g.run({ kernel: 'rnn_finish', u32: [...u, 0, 0], buffers: [out, hN], workgroups: elementGrid(g, B * H) });
  g.release(xp, wt);
  const saved: RnnSaved = { d, x, hprev, out };
  return { out, hN, saved };
}

export const releaseRnnSaved = (g: Gpu, s: RnnSaved) => g.release(s.hprev);

/**
 * BPTT over the whole sequence. dOut (B, T, H) and dhN ((1, B, H) or (B, H)) may each be left out (zeros).
 * dh0 comes back as (B, H); weight grads as the weights (into / accumulate: RecurrentBackwardOptions).
 */
export function rnnBackward(
  g: Gpu,
  w: RecurrentWeights,
  s: RnnSaved,
  dOut: GpuTensor | undefined,
  dhN: GpuTensor | undefined,
  opts: RecurrentBackwardOptions = {},
): RecurrentWeightGrads & { dx: GpuTensor; dh0: GpuTensor } {
  const { d } = s;
  const { B, T, H } = d;
  const u = [B, T, H];
  const dg = g.tensor([B, T, H]);
  const flags = (dOut ? 1 : 0) | (dhN ? 2 : 0);
  const none = w.whh; // bound in place of a grad left out, never read
  const v = stepVariant(g);
  for (let t = T - 1; t >= 0; t--) {
    g.run({ kernel: 'rnn_step_bwd', constants: { ...v }, u32: [...u, t, flags], buffers: [dg, w.whh, s.out, dOut ?? none, dhN ?? none], workgroups: variantGrid(v, d) });
  }
  const dh0 = g.tensor([B, H]);
  g.run({ kernel: 'rnn_dh0', constants, u32: [...u, 0, 0], buffers: [dg, w.whh, dh0], workgroups: stepGrid(d) });
  const grads = weightGrads(g, d, s.x, s.hprev, dg, dg, w, opts);
  g.release(dg);
  return { ...grads, dh0 };
}

const ops: GpuOp[] = [
  {
    name: 'rnn',
    forward(g, i) {
      const { out, hN, saved } = rnnForward(g, i.x, i.h0, weightsOf(i));
      return { out, h_n: hN, [SAVED.hprev]: saved.hprev };
    },
    backward(g, i, _o, o, dy) {
      const w = weightsOf(i);
      const saved: RnnSaved = { d: gpuDims('rnn', 1, i.x, w, i.h0), x: i.x, hprev: o[SAVED.hprev], out: o.out };
      const r = rnnBackward(g, w, saved, dy.out, dy.h_n);
      const grads: Record<string, GpuTensor> = { x: r.dx, weight_ih_l0: r.dWih, weight_hh_l0: r.dWhh, bias_ih_l0: r.dbih, bias_hh_l0: r.dbhh };
      if (i.h0) grads.h0 = { ...r.dh0, shape: [...i.h0.shape] };
      else g.release(r.dh0);
      return grads;
    },
  },
];

export const rnnFamily: OpFamily = {
  kernels: kernels('rnn.wgsl', source, {
    rnn_transpose: ['read', 'rw'],
    rnn_start: ['read', 'rw'],
    rnn_step: ['read', 'read', 'read', 'rw', 'rw'],
    rnn_finish: ['read', 'rw'],
    rnn_step_bwd: ['rw', 'read', 'read', 'read', 'read'],
    rnn_dh0: ['read', 'read', 'rw'],
  }),
  ops,
};
