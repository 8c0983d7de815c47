// CPU reference (float64) for torch.nn.RNN(I, H, nonlinearity='tanh', batch_first=True) with one layer:
// forward and BPTT. Mirrors shaders/rnn.wgsl.
//   h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
// Shapes and names: shared/reference/recurrent.ts.
import type { OpSpec, Tensors } from '../ops.ts';
import { toF64 } from '../tensor.ts';
import { dimsOf, f64, gradOf, recurrentCases, recurrentInputs, recurrentMakeInputs, recurrentTolerance, stateOf, type RecurrentDims } from './recurrent.ts';

export interface RnnWeights {
  wih: Float64Array; // (H, I)
  whh: Float64Array; // (H, H)
  bih: Float64Array; // (H)
  bhh: Float64Array; // (H)
}

export interface RnnActs {
  out: Float64Array; // (B, T, H) h_t
  hprev: Float64Array; // (B, T, H) h_{t-1} (h0 at t = 0)
}

export function rnnForward(x: Float64Array, h0: Float64Array, w: RnnWeights, d: RecurrentDims): RnnActs {
  const { B, T, I, H } = d;
  const out = new Float64Array(B * T * H);
  const hprev = new Float64Array(B * T * H);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const hp = hprev.subarray((b * T + t) * H, (b * T + t + 1) * H);
      if (t === 0) hp.set(h0.subarray(b * H, (b + 1) * H));
      else hp.set(out.subarray((b * T + t - 1) * H, (b * T + t) * H));
      const xt = x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      for (let j = 0; j < H; j++) {
        let acc = w.bih[j] + w.bhh[j];
        for (let k = 0; k < I; k++) acc += w.wih[j * I + k] * xt[k];
        for (let k = 0; k < H; k++) acc += w.whh[j * H + k] * hp[k];
        out[(b * T + t) * H + j] = Math.tanh(acc);
      }
    }
  }
  return { out, hprev };
}

export interface RnnGrads {
  x: Float64Array;
  h0: Float64Array;
  wih: Float64Array;
  whh: Float64Array;
  bih: Float64Array;
  bhh: Float64Array;
}

/** BPTT over the whole sequence given dout (B, T, H) and dhN (B, H); every grad is written (=) */
export function rnnBackward(x: Float64Array, w: RnnWeights, acts: RnnActs, dout: Float64Array, dhN: Float64Array, d: RecurrentDims): RnnGrads {
  const { B, T, I, H } = d;
  const r: RnnGrads = {
    x: new Float64Array(B * T * I),
    h0: new Float64Array(B * H),
    wih: new Float64Array(H * I),
    whh: new Float64Array(H * H),
    bih: new Float64Array(H),
    bhh: new Float64Array(H),
  };
  const da = new Float64Array(H); // grad of the pre-activation
  for (let b = 0; b < B; b++) {
    const dh = dhN.slice(b * H, (b + 1) * H); // running dL/dh_t (recurrent part)
    for (let t = T - 1; t >= 0; t--) {
      for (let j = 0; j < H; j++) {
        const h = acts.out[(b * T + t) * H + j];
        da[j] = (dh[j] + dout[(b * T + t) * H + j]) * (1 - h * h);
      }
      const xt = x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      const hp = acts.hprev.subarray((b * T + t) * H, (b * T + t + 1) * H);
      const dx = r.x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      dh.fill(0);
      for (let m = 0; m < H; m++) {
        r.bih[m] += da[m];
        r.bhh[m] += da[m];
        for (let k = 0; k < I; k++) {
          r.wih[m * I + k] += da[m] * xt[k];
          dx[k] += da[m] * w.wih[m * I + k];
        }
        for (let k = 0; k < H; k++) {
          r.whh[m * H + k] += da[m] * hp[k];
          dh[k] += da[m] * w.whh[m * H + k];
        }
      }
    }
    r.h0.set(dh, b * H);
  }
  return r;
}

const weightsOf = (i: Tensors): RnnWeights => ({ wih: toF64(i.weight_ih_l0), whh: toF64(i.weight_hh_l0), bih: toF64(i.bias_ih_l0), bhh: toF64(i.bias_hh_l0) });

function run(i: Tensors) {
  const d = dimsOf('rnn', 1, i);
  return { d, acts: rnnForward(toF64(i.x), stateOf(i.h0, d.B * d.H), weightsOf(i), d) };
}

export const rnnOps: OpSpec[] = [
  {
    name: 'rnn',
    family: 'rnn',
    torch: "torch.nn.RNN(I, H, nonlinearity='tanh', batch_first=True)(x, h0) → out, h_n",
    inputs: recurrentInputs(false),
    outputs: ['out', 'h_n'],
    defaults: {},
    hasBackward: true,
    validate: (i) => void dimsOf('rnn', 1, i),
    cases: recurrentCases,
    makeInputs: recurrentMakeInputs(1, false),
    reference: {
      forward(i) {
        const { d, acts } = run(i);
        const { B, T, H } = d;
        const hN = new Float64Array(B * H);
        for (let b = 0; b < B; b++) hN.set(acts.out.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
        return { out: f64([B, T, H], acts.out), h_n: f64([1, B, H], hN) };
      },
      backward(i, _o, g) {
        const { d, acts } = run(i);
        const { B, T, H } = d;
        const r = rnnBackward(toF64(i.x), weightsOf(i), acts, gradOf(g, 'out', B * T * H), gradOf(g, 'h_n', B * H), d);
        const grads: Tensors = {
          x: f64(i.x.shape, r.x),
          weight_ih_l0: f64(i.weight_ih_l0.shape, r.wih),
          weight_hh_l0: f64(i.weight_hh_l0.shape, r.whh),
          bias_ih_l0: f64(i.bias_ih_l0.shape, r.bih),
          bias_hh_l0: f64(i.bias_hh_l0.shape, r.bhh),
        };
        if (i.h0) grads.h0 = f64(i.h0.shape, r.h0);
        return grads;
      },
    },
    tolerance: recurrentTolerance,
  },
];
