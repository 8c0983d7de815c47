// GPU side of the lstm family (shaders/lstm.wgsl): torch.nn.LSTM, one layer, batch_first.
// Forward: 1 matmul (input projection for all timesteps) + transpose of W_hh + start + T steps + finish.
// Backward: T steps + dh0, then 3 matmuls and 2 row sums for dx and the weight grads (recurrent.ts).
import source from '../../shaders/lstm.wgsl';
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

/** what lstmForward keeps for lstmBackward; release with releaseLstmSaved once backward is recorded */
export interface LstmSaved {
  d: RecurrentDims;
  x: GpuTensor; // (B, T, I), the caller's: not released here
  hprev: GpuTensor; // (B, T, H) h_{t-1}
  cs: GpuTensor; // (B, T+1, H) c_{t-1} at t
  gates: GpuTensor; // (B, T, 4H) activated i, f, g, o
}

const constants = { WG: STEP_WG };

/** out (B, T, H), h_n and c_n (1, B, H); h0 / c0 ((1, B, H) or (B, H)) default to zeros */
export function lstmForward(g: Gpu, x: GpuTensor, h0: GpuTensor | undefined, c0: GpuTensor | undefined, w: RecurrentWeights) {
  const d = gpuDims('lstm', 4, x, w, h0, c0);
  const { B, T, H } = d;
  const u = [B, T, H];
  const xp = inputProjection(g, x, w, d);
  const wt = g.tensor([H, 4 * H]);
  g.run({ kernel: 'lstm_transpose', u32: [...u, 0, 0], buffers: [w.whh, wt], workgroups: elementGrid(g, 4 * H * H) });
  const hprev = g.tensor([B, T, H]);
  const cs = g.tensor([B, T + 1, H]);
  const gates = g.tensor([B, T, 4 * H]);
  const out = g.tensor([B, T, H]);
  const flags = (h0 ? 1 : 0) | (c0 ? 2 : 0);
  g.run({ kernel: 'lstm_start', u32: [...u, 0, flags], buffers: [h0 ?? x, c0 ?? x, hprev, cs], workgroups: elementGrid(g, B * H) });
  const v = stepVariant(g);
  for (let t = 0; t < T; t++) {
    g.run({ kernel: 'lstm_step', constants: { ...v }, u32: [...u, t, 0], buffers: [xp, wt, w.bhh, hprev, cs, gates, out], workgroups: variantGrid(v, d) });
  }
  const hN = g.tensor([1, B, H]);
  const cN = g.tensor([1, B, H]);
  g.run({ kernel: 'lstm_finish', u32: [...u, 0, 0], buffers: [out, cs, hN, cN], workgroups: elementGrid(g, B * H) });
  g.release(xp, wt);
  const saved: LstmSaved = { d, x, hprev, cs, gates };
  return { out, hN, cN, saved };
}

export const releaseLstmSaved = (g: Gpu, s: LstmSaved) => g.release(s.hprev, s.cs, s.gates);

/**
 * BPTT over the whole sequence. dOut (B, T, H), dhN, dcN ((1, B, H) or (B, H)) may each be left out (zeros).
 * dh0, dc0 come back as (B, H); weight grads as the weights (into / accumulate: RecurrentBackwardOptions).
 */
export function lstmBackward(
  g: Gpu,
  w: RecurrentWeights,
  s: LstmSaved,
  dOut: GpuTensor | undefined,
  dhN: GpuTensor | undefined,
  dcN: GpuTensor | undefined,
  opts: RecurrentBackwardOptions = {},
): RecurrentWeightGrads & { dx: GpuTensor; dh0: GpuTensor; dc0: GpuTensor } {
  const { d } = s;
  const { B, T, H } = d;
  const u = [B, T, H];
  const dg = g.tensor([B, T, 4 * H]);
  const dc = g.tensor([B, H]);
  const flags = (dOut ? 1 : 0) | (dhN ? 2 : 0) | (dcN ? 4 : 0);
  const none = w.whh; // bound in place of a grad left out, never read
  const v = stepVariant(g);
  for (let t = T - 1; t >= 0; t--) {
    g.run({
      kernel: 'lstm_step_bwd',
      constants: { ...v },
      u32: [...u, t, flags],
      buffers: [dg, w.whh, s.gates, s.cs, dOut ?? none, dhN ?? none, dcN ?? none, dc],
      workgroups: variantGrid(v, d),
    });
  }
  const dh0 = g.tensor([B, H]);
  g.run({ kernel: 'lstm_dh0', constants, u32: [...u, 0, 0], buffers: [dg, w.whh, dh0], workgroups: stepGrid(d) });
  const grads = weightGrads(g, d, s.x, s.hprev, dg, dg, w, opts);
  g.release(dg);
  return { ...grads, dh0, dc0: dc };
}

const ops: GpuOp[] = [
  {
    name: 'lstm',
    forward(g, i) {
      const { out, hN, cN, saved } = lstmForward(g, i.x, i.h0, i.c0, weightsOf(i));
      return { out, h_n: hN, c_n: cN, [SAVED.hprev]: saved.hprev, [SAVED.cs]: saved.cs, [SAVED.gates]: saved.gates };
    },
    backward(g, i, _o, o, dy) {
      const w = weightsOf(i);
      const saved: LstmSaved = { d: gpuDims('lstm', 4, i.x, w, i.h0, i.c0), x: i.x, hprev: o[SAVED.hprev], cs: o[SAVED.cs], gates: o[SAVED.gates] };
      const r = lstmBackward(g, w, saved, dy.out, dy.h_n, dy.c_n);
      const grads: Record<string, GpuTensor> = { x: r.dx, weight_ih_l0: r.dWih, weight_hh_l0: r.dWhh, bias_ih_l0: r.dbih, bias_hh_l0: r.dbhh };
      if (i.h0) grads.h0 = { ...r.dh0, shape: [...i.h0.shape] };
      if (i.c0) grads.c0 = { ...r.dc0, shape: [...i.c0.shape] };
      // unused state grads are still owned by us: hand them back to the pool
      if (!i.h0) g.release(r.dh0);
      if (!i.c0) g.release(r.dc0);
      return grads;
    },
  },
];

export const lstmFamily: OpFamily = {
  kernels: kernels('lstm.wgsl', source, {
    lstm_transpose: ['read', 'rw'],
    lstm_start: ['read', 'read', 'rw', 'rw'],
    lstm_step: ['read', 'read', 'read', 'rw', 'rw', 'rw', 'rw'],
    lstm_finish: ['read', 'read', 'rw', 'rw'],
    lstm_step_bwd: ['rw', 'read', 'read', 'read', 'read', 'read', 'read', 'rw'],
    lstm_dh0: ['read', 'read', 'rw'],
  }),
  ops,
};
