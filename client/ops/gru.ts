// GPU side of the gru family (shaders/gru.wgsl): torch.nn.GRU, one layer, batch_first.
// Forward: 1 matmul (input projection for all timesteps) + transpose of W_hh + start + T steps + finish.
// Backward: T steps + dh0, then 3 matmuls and 2 row sums for dx and the weight grads (recurrent.ts).
import source from '../../shaders/gru.wgsl';
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

/** what gruForward keeps for gruBackward; release with releaseGruSaved once backward is recorded */
export interface GruSaved {
  d: RecurrentDims;
  x: GpuTensor; // (B, T, I), the caller's: not released here
  hprev: GpuTensor; // (B, T, H) h_{t-1}
  gates: GpuTensor; // (B, T, 4H) r, z, n, (h_{t-1} W_hhᵀ + b_hh)_n
}

const constants = { WG: STEP_WG };

/** out (B, T, H) and h_n (1, B, H); h0 ((1, B, H) or (B, H)) defaults to zeros */
export function gruForward(g: Gpu, x: GpuTensor, h0: GpuTensor | undefined, w: RecurrentWeights) {
  const d = gpuDims('gru', 3, x, w, h0);
  const { B, T, H } = d;
  const u = [B, T, H];
  const xp = inputProjection(g, x, w, d);
  const wt = g.tensor([H, 3 * H]);
  g.run({ kernel: 'gru_transpose', u32: [...u, 0, 0], buffers: [w.whh, wt], workgroups: elementGrid(g, 3 * H * H) });
  const hprev = g.tensor([B, T, H]);
  const out = g.tensor([B, T, H]);
  const gates = g.tensor([B, T, 4 * H]);
  g.run({ kernel: 'gru_start', u32: [...u, 0, h0 ? 1 : 0], buffers: [h0 ?? x, hprev], workgroups: elementGrid(g, B * H) });
  const v = stepVariant(g);
  for (let t = 0; t < T; t++) {
    g.run({ kernel: 'gru_step', constants: { ...v }, u32: [...u, t, 0], buffers: [xp, wt, w.bhh, hprev, out, gates], workgroups: variantGrid(v, d) });
  }
  const hN = g.tensor([1, B, H]);
  g.run({ kernel: 'gru_finish', u32: [...u, 0, 0], buffers: [out, hN], workgroups: elementGrid(g, B * H) });
  g.release(xp, wt);
  const saved: GruSaved = { d, x, hprev, gates };
  return { out, hN, saved };
}

export const releaseGruSaved = (g: Gpu, s: GruSaved) => g.release(s.hprev, s.gates);

/**
 * BPTT over the whole sequence. dOut (B, T, H) and dhN ((1, B, H) or (B, H)) may each be left out (zeros).
 * dh0 comes back as (B, H); weight grads as the weights (into / accumulate: RecurrentBackwardOptions).
 */
export function gruBackward(
  g: Gpu,
  w: RecurrentWeights,
  s: GruSaved,
  dOut: GpuTensor | undefined,
  dhN: GpuTensor | undefined,
  opts: RecurrentBackwardOptions = {},
): RecurrentWeightGrads & { dx: GpuTensor; dh0: GpuTensor } {
  const { d } = s;
  const { B, T, H } = d;
  const u = [B, T, H];
  const dgi = g.tensor([B, T, 3 * H]);
  const dgh = g.tensor([B, T, 3 * H]);
  const carry = g.tensor([B, H]);
  const flags = (dOut ? 1 : 0) | (dhN ? 2 : 0);
  const none = w.whh; // bound in place of a grad left out, never read
  const v = stepVariant(g);
  for (let t = T - 1; t >= 0; t--) {
    g.run({
      kernel: 'gru_step_bwd',
      constants: { ...v },
      u32: [...u, t, flags],
      buffers: [dgi, dgh, w.whh, s.gates, s.hprev, dOut ?? none, dhN ?? none, carry],
      workgroups: variantGrid(v, d),
    });
  }
  const dh0 = g.tensor([B, H]);
  g.run({ kernel: 'gru_dh0', constants, u32: [...u, 0, 0], buffers: [dgh, w.whh, carry, dh0], workgroups: stepGrid(d) });
  const grads = weightGrads(g, d, s.x, s.hprev, dgi, dgh, w, opts);
  g.release(dgi, dgh, carry);
  return { ...grads, dh0 };
}

const ops: GpuOp[] = [
  {
    name: 'gru',
    forward(g, i) {
      const { out, hN, saved } = gruForward(g, i.x, i.h0, weightsOf(i));
      return { out, h_n: hN, [SAVED.hprev]: saved.hprev, [SAVED.gates]: saved.gates };
    },
    backward(g, i, _o, o, dy) {
      const w = weightsOf(i);
      const saved: GruSaved = { d: gpuDims('gru', 3, i.x, w, i.h0), x: i.x, hprev: o[SAVED.hprev], gates: o[SAVED.gates] };
      const r = gruBackward(g, w, saved, dy.out, dy.h_n);
      const grads: Record<string, GpuTensor> = { x: r.dx, weight_ih_l0: r.dWih, weight_hh_l0: r.dWhh, bias_ih_l0: r.dbih, bias_hh_l0: r.dbhh };
      if (i.h0) grads.h0 = { ...r.dh0, shape: [...i.h0.shape] };
      else g.release(r.dh0);
      return grads;
    },
  },
];

export const gruFamily: OpFamily = {
  kernels: kernels('gru.wgsl', source, {
    gru_transpose: ['read', 'rw'],
    gru_start: ['read', 'rw'],
    gru_step: ['read', 'read', 'read', 'rw', 'rw', 'rw'],
    gru_finish: ['read', 'rw'],
    gru_step_bwd: ['rw', 'rw', 'read', 'read', 'read', 'read', 'read', 'rw'],
    gru_dh0: ['read', 'read', 'read', 'rw'],
  }),
  ops,
};
