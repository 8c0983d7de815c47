// CPU reference (float64) for torch.nn.GRU(I, H, batch_first=True) with one layer: forward and BPTT.
// Mirrors shaders/gru.wgsl. Gate order as PyTorch: r, z, n (rows k·H .. (k+1)·H of the weights).
//   ai = W_ih x_t + b_ih,  ah = W_hh h_{t-1} + b_hh                          (3H each)
//   r = σ(ai_r + ah_r);  z = σ(ai_z + ah_z);  n = tanh(ai_n + r ⊙ ah_n)
//   h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
// Backward has two gate grads: dGi for the input side and dGh for the hidden side; they differ only in
// the n block (dGh_n = r ⊙ dGi_n), because r multiplies the hidden side's n part only.
// Shapes and names: shared/reference/recurrent.ts.
import type { OpSpec, Tensors } from '../ops.ts';
import { toF64 } from '../tensor.ts';
import { dimsOf, f64, gradOf, recurrentCases, recurrentInputs, recurrentMakeInputs, recurrentTolerance, sigmoid, stateOf, type RecurrentDims } from './recurrent.ts';

export interface GruWeights {
  wih: Float64Array; // (3H, I)
  whh: Float64Array; // (3H, H)
  bih: Float64Array; // (3H)
  bhh: Float64Array; // (3H)
}

export interface GruActs {
  out: Float64Array; // (B, T, H) h_t
  hprev: Float64Array; // (B, T, H) h_{t-1} (h0 at t = 0)
  gates: Float64Array; // (B, T, 4H) r, z, n and ah_n = (W_hh h_{t-1} + b_hh)_n
}

export function gruForward(x: Float64Array, h0: Float64Array, w: GruWeights, d: RecurrentDims): GruActs {
  const { B, T, I, H } = d;
  const G = 3 * H;
  const out = new Float64Array(B * T * H);
  const hprev = new Float64Array(B * T * H);
  const gates = new Float64Array(B * T * 4 * H);
  const ai = new Float64Array(G);
  const ah = new Float64Array(G);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const hp = hprev.subarray((b * T + t) * H, (b * T + t + 1) * H);
      if (t === 0) hp.set(h0.subarray(b * H, (b + 1) * H));
      else hp.set(out.subarray((b * T + t - 1) * H, (b * T + t) * H));
      const xt = x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      for (let m = 0; m < G; m++) {
        let si = w.bih[m];
        for (let k = 0; k < I; k++) si += w.wih[m * I + k] * xt[k];
        let sh = w.bhh[m];
        for (let k = 0; k < H; k++) sh += w.whh[m * H + k] * hp[k];
        ai[m] = si;
        ah[m] = sh;
      }
      const gt = gates.subarray((b * T + t) * 4 * H, (b * T + t + 1) * 4 * H);
      for (let j = 0; j < H; j++) {
        const r = sigmoid(ai[j] + ah[j]);
        const z = sigmoid(ai[H + j] + ah[H + j]);
        const n = Math.tanh(ai[2 * H + j] + r * ah[2 * H + j]);
        out[(b * T + t) * H + j] = (1 - z) * n + z * hp[j];
        gt[j] = r;
        gt[H + j] = z;
        gt[2 * H + j] = n;
        gt[3 * H + j] = ah[2 * H + j];
      }
    }
  }
  return { out, hprev, gates };
}

export interface GruGrads {
  x: Float64Array;
  h0: Float64Array;
  wih: Float64Array;
  whh: Float64Array;
  bih: Float64Array;
  bhh: Float64Array;
}

/** BPTT over the whole sequence given dout (B, T, H) and dhN (B, H); every grad is written (=) */
export function gruBackward(x: Float64Array, w: GruWeights, acts: GruActs, dout: Float64Array, dhN: Float64Array, d: RecurrentDims): GruGrads {
  const { B, T, I, H } = d;
  const G = 3 * H;
  const r: GruGrads = {
    x: new Float64Array(B * T * I),
    h0: new Float64Array(B * H),
    wih: new Float64Array(G * I),
    whh: new Float64Array(G * H),
    bih: new Float64Array(G),
    bhh: new Float64Array(G),
  };
  const dgi = new Float64Array(G); // grad of ai
  const dgh = new Float64Array(G); // grad of ah
  for (let b = 0; b < B; b++) {
    const dh = dhN.slice(b * H, (b + 1) * H); // running dL/dh_t (recurrent part)
    for (let t = T - 1; t >= 0; t--) {
      const gt = acts.gates.subarray((b * T + t) * 4 * H, (b * T + t + 1) * 4 * H);
      const hp = acts.hprev.subarray((b * T + t) * H, (b * T + t + 1) * H);
      for (let j = 0; j < H; j++) {
        const dht = dh[j] + dout[(b * T + t) * H + j];
        const [rr, z, n, ahn] = [gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j]];
        const dan = dht * (1 - z) * (1 - n * n);
        dgi[j] = dgh[j] = dan * ahn * rr * (1 - rr);
        dgi[H + j] = dgh[H + j] = dht * (hp[j] - n) * z * (1 - z);
        dgi[2 * H + j] = dan;
        dgh[2 * H + j] = dan * rr;
        dh[j] = dht * z; // the direct path h_{t-1} → h_t; the gates' part is added below
      }
      const xt = x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      const dx = r.x.subarray((b * T + t) * I, (b * T + t + 1) * I);
      for (let m = 0; m < G; m++) {
        r.bih[m] += dgi[m];
        r.bhh[m] += dgh[m];
        for (let k = 0; k < I; k++) {
          r.wih[m * I + k] += dgi[m] * xt[k];
          dx[k] += dgi[m] * w.wih[m * I + k];
        }
        for (let k = 0; k < H; k++) {
          r.whh[m * H + k] += dgh[m] * hp[k];
          dh[k] += dgh[m] * w.whh[m * H + k];
        }
      }
    }
    r.h0.set(dh, b * H);
  }
  return r;
}

const weightsOf = (i: Tensors): GruWeights => ({ wih: toF64(i.weight_ih_l0), whh: toF64(i.weight_hh_l0), bih: toF64(i.bias_ih_l0), bhh: toF64(i.bias_hh_l0) });

function run(i: Tensors) {
  const d = dimsOf('gru', 3, i);
  return { d, acts: gruForward(toF64(i.x), stateOf(i.h0, d.B * d.H), weightsOf(i), d) };
}

export const gruOps: OpSpec[] = [
  {
    name: 'gru',
    family: 'gru',
    torch: 'torch.nn.GRU(I, H, batch_first=True)(x, h0) → out, h_n',
    inputs: recurrentInputs(false),
    outputs: ['out', 'h_n'],
    defaults: {},
    hasBackward: true,
    validate: (i) => void dimsOf('gru', 3, i),
    cases: recurrentCases,
    makeInputs: recurrentMakeInputs(3, false),
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
        const r = gruBackward(toF64(i.x), weightsOf(i), acts, gradOf(g, 'out', B * T * H), gradOf(g, 'h_n', B * H), d);
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
