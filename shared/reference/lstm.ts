// CPU reference (float64) for torch.nn.LSTM(I, H, batch_first=True) with one layer: forward and BPTT.
// Mirrors shaders/lstm.wgsl. Gate order as PyTorch: i, f, g, o (rows k·H .. (k+1)·H of the weights).
//   a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                      (4H)
//   i, f, o = σ(a_i), σ(a_f), σ(a_o);  g = tanh(a_g)
//   c_t = f ⊙ c_{t-1} + i ⊙ g;  h_t = o ⊙ tanh(c_t)
// Shapes and names: shared/reference/recurrent.ts.
import type { OpSpec, Tensors } from '../ops.ts';
import { toF64 } from '../tensor.ts';
import { dimsOf, f64, gradOf, recurrentCases, recurrentInputs, recurrentMakeInputs, recurrentTolerance, sigmoid, stateOf, type RecurrentDims } from './recurrent.ts';

export interface LstmWeights {
  wih: Float64Array; // (4H, I)
  whh: Float64Array; // (4H, H)
  bih: Float64Array; // (4H)
  bhh: Float64Array; // (4H)
}

/** what forward keeps for backward, besides its outputs */
export interface LstmActs {
  out: Float64Array; // (B, T, H) h_t
  hprev: Float64Array; // (B, T, H) h_{t-1} (h0 at t = 0)
  cs: Float64Array; // (B, T+1, H) c_{t-1} at t, so c0 at 0 and c_n at T
  gates: Float64Array; // (B, T, 4H) activated i, f, g, o
}

export function lstmForward(x: Float64Array, h0: Float64Array, c0: Float64Array, w: LstmWeights, d: RecurrentDims): LstmActs {
  const { B, T, I, H } = d;
  const G = 4 * H;
  const out = new Float64Array(B * T * H);
  const hprev = new Float64Array(B * T * H);
  const cs = new Float64Array(B * (T + 1) * H);
  const gates = new Float64Array(B * T * G);
  const a = new Float64Array(G);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < H; j++) cs[b * (T + 1) * H + j] = c0[b * H + j];
    for (let t = 0; t < T; t++) {
      const hp = hprev.subarray((b * T + t) * H, (b * T + t + 1) * H);
      if (t === 0) hp.set(h0.subarray(b * H, (b + 1) * H));
      else hp.set(out.subarray((b * T + t - 1) * H, (b * T + t) * H));
      const xt = x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      for (let m = 0; m < G; m++) {
        let acc = w.bih[m] + w.bhh[m];
        for (let k = 0; k < I; k++) acc += w.wih[m * I + k] * xt[k];
        for (let k = 0; k < H; k++) acc += w.whh[m * H + k] * hp[k];
        a[m] = acc;
      }
      const gt = gates.subarray((b * T + t) * G, (b * T + t + 1) * G);
      for (let j = 0; j < H; j++) {
        const i = sigmoid(a[j]);
        const f = sigmoid(a[H + j]);
        const g = Math.tanh(a[2 * H + j]);
        const o = sigmoid(a[3 * H + j]);
        const c = f * cs[(b * (T + 1) + t) * H + j] + i * g;
        cs[(b * (T + 1) + t + 1) * H + j] = c;
        out[(b * T + t) * H + j] = o * Math.tanh(c);
        gt[j] = i;
        gt[H + j] = f;
        gt[2 * H + j] = g;
        gt[3 * H + j] = o;
      }
    }
  }
  return { out, hprev, cs, gates };
}

export interface LstmGrads {
  x: Float64Array;
  h0: Float64Array;
  c0: Float64Array;
  wih: Float64Array;
  whh: Float64Array;
  bih: Float64Array;
  bhh: Float64Array;
}

/** BPTT over the whole sequence given dout (B, T, H), dhN and dcN (B, H); every grad is written (=) */
export function lstmBackward(x: Float64Array, w: LstmWeights, acts: LstmActs, dout: Float64Array, dhN: Float64Array, dcN: Float64Array, d: RecurrentDims): LstmGrads {
  const { B, T, I, H } = d;
  const G = 4 * H;
  const r: LstmGrads = {
    x: new Float64Array(B * T * I),
    h0: new Float64Array(B * H),
    c0: new Float64Array(B * H),
    wih: new Float64Array(G * I),
    whh: new Float64Array(G * H),
    bih: new Float64Array(G),
    bhh: new Float64Array(G),
  };
  const da = new Float64Array(G); // grad of the gates' pre-activations a_t
  for (let b = 0; b < B; b++) {
    const dh = dhN.slice(b * H, (b + 1) * H); // running dL/dh_t (recurrent part)
    const dc = dcN.slice(b * H, (b + 1) * H); // running dL/dc_t
    for (let t = T - 1; t >= 0; t--) {
      const gt = acts.gates.subarray((b * T + t) * G, (b * T + t + 1) * G);
      for (let j = 0; j < H; j++) {
        const dht = dh[j] + dout[(b * T + t) * H + j];
        const [i, f, g, o] = [gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j]];
        const tc = Math.tanh(acts.cs[(b * (T + 1) + t + 1) * H + j]);
        const dct = dc[j] + dht * o * (1 - tc * tc);
        da[j] = dct * g * i * (1 - i);
        da[H + j] = dct * acts.cs[(b * (T + 1) + t) * H + j] * f * (1 - f);
        da[2 * H + j] = dct * i * (1 - g * g);
        da[3 * H + j] = dht * tc * o * (1 - o);
        dc[j] = dct * f;
      }
      const xt = x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      const hp = acts.hprev.subarray((b * T + t) * H, (b * T + t + 1) * H);
      const dx = r.x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      dh.fill(0);
      for (let m = 0; m < G; m++) {
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
    r.c0.set(dc, b * H);
  }
  return r;
}

const weightsOf = (i: Tensors): LstmWeights => ({ wih: toF64(i.weight_ih_l0), whh: toF64(i.weight_hh_l0), bih: toF64(i.bias_ih_l0), bhh: toF64(i.bias_hh_l0) });

function run(i: Tensors) {
  const d = dimsOf('lstm', 4, i);
  const acts = lstmForward(toF64(i.x), stateOf(i.h0, d.B * d.H), stateOf(i.c0, d.B * d.H), weightsOf(i), d);
  return { d, acts };
}

export const lstmOps: OpSpec[] = [
  {
    name: 'lstm',
    family: 'lstm',
    torch: 'torch.nn.LSTM(I, H, batch_first=True)(x, (h0, c0)) → out, (h_n, c_n)',
    inputs: recurrentInputs(true),
    outputs: ['out', 'h_n', 'c_n'],
    defaults: {},
    hasBackward: true,
    validate: (i) => void dimsOf('lstm', 4, i),
    cases: recurrentCases,
    makeInputs: recurrentMakeInputs(4, true),
    reference: {
      forward(i) {
        const { d, acts } = run(i);
        const { B, T, H } = d;
        const hN = new Float64Array(B * H);
        const cN = new Float64Array(B * H);
        for (let b = 0; b < B; b++) {
          hN.set(acts.out.subarray((b * T + T - 1) * H, (b * T + T) * H), b * H);
          cN.set(acts.cs.subarray((b * (T + 1) + T) * H, (b * (T + 1) + T + 1) * H), b * H);
        }
        return { out: f64([B, T, H], acts.out), h_n: f64([1, B, H], hN), c_n: f64([1, B, H], cN) };
      },
      backward(i, _o, g) {
        const { d, acts } = run(i);
        const { B, T, H } = d;
        const r = lstmBackward(toF64(i.x), weightsOf(i), acts, gradOf(g, 'out', B * T * H), gradOf(g, 'h_n', B * H), gradOf(g, 'c_n', B * H), d);
        const grads: Tensors = {
          x: f64(i.x.shape, r.x),
          weight_ih_l0: f64(i.weight_ih_l0.shape, r.wih),
          weight_hh_l0: f64(i.weight_hh_l0.shape, r.whh),
          bias_ih_l0: f64(i.bias_ih_l0.shape, r.bih),
          bias_hh_l0: f64(i.bias_hh_l0.shape, r.bhh),
        };
        if (i.h0) grads.h0 = f64(i.h0.shape, r.h0);
        if (i.c0) grads.c0 = f64(i.c0.shape, r.c0);
        return grads;
      },
    },
    tolerance: recurrentTolerance,
  },
];
